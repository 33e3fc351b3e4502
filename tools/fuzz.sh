#!/usr/bin/env bash
# Builds the libFuzzer targets for the model-file, fingerprint-file, ONNX and Keras readers and
# the label-API (Open Inference Protocol) body readers in a
# separate clang build (build/fuzz: CPU only, ASan + UBSan + libFuzzer) and runs each
# structure-aware target for a bounded time from its seed corpus and the generated
# seeds (make_fuzz_seeds: byte flips of sealed files, retyped attributes; written to
# build/fuzz/seeds/, tests/fuzz/README.md).
# Exits non-zero on any finding (crash, sanitizer report, leak, timeout, huge allocation),
# leaving the reproducer in build/fuzz/findings/<target>/.
#   tools/fuzz.sh [--seconds N] [--jobs J] [--raw] [--build-only]
#     --seconds N   run each target N seconds (default 60)
#     --jobs J      build parallelism, and how many targets fuzz at once (each is one
#                   process on one core; default: number of cores)
#     --raw         also run the raw-bytes target fuzz_raw_file (not in CI: it mostly
#                   fuzzes libhdf5's own parser)
#     --build-only  configure and build, run nothing
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
jobs=$(nproc)
raw=0
build_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --jobs=*) jobs="${1#*=}"; shift ;;
    --raw) raw=1; shift ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: --seconds needs a whole number" >&2; exit 2 ;; esac
case "$jobs" in ''|0|*[!0-9]*) echo "fuzz.sh: --jobs needs a whole number above 0" >&2; exit 2 ;; esac

build=build/fuzz
start=$(date +%s)
tools/install-deps.sh  # clang, libclang-rt-14-dev (libFuzzer), libomp-dev
targets=(fuzz_model_file fuzz_fingerprint_file fuzz_onnx_file fuzz_oip_body fuzz_keras_file)
[ "$raw" -eq 1 ] && targets+=(fuzz_raw_file)

# -O1 with line tables, as libFuzzer and AddressSanitizer recommend: enough for stack
# traces, and the build takes less time than the fuzzing (it was -O2 -g).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DIPG_CUDA=OFF -DIPG_FUZZ=ON -DIPG_BUILD_TESTS=OFF -DIPG_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --parallel "$jobs" --target fuzz_model_file fuzz_fingerprint_file fuzz_raw_file fuzz_onnx_file fuzz_oip_body fuzz_keras_file make_fuzz_seeds
built=$(date +%s)
echo "fuzz.sh: built in $((built - start)) s"
[ "$build_only" -eq 1 ] && exit 0

# A small quarantine and no malloc filling: HDF5 callocs megabytes per open file, and
# with the defaults page faults on fresh memory take most of the time.
export ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16:max_malloc_fill_size=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# One OpenMP thread per fuzzer: the targets run side by side, one per core.
export OMP_NUM_THREADS=1
# Seeds generated from the harness itself, so they always mean what their names say (the
# generator checks each one and fails if the harness changed under it).
generated="$build/seeds"
rm -rf "$generated"
ASAN_OPTIONS="$ASAN_OPTIONS" "$build/tests/fuzz/make_fuzz_seeds" "$generated"
# Runs one target for $seconds; its exit status goes to $build/<target>.rc.
fuzz_one() {
  local t="$1" seeds max_len asan work findings log rc
  case "$t" in
    fuzz_model_file) seeds="tests/fuzz/corpus/model $generated/model"; max_len=1024 ;;
    fuzz_fingerprint_file) seeds="tests/fuzz/corpus/fingerprint $generated/fingerprint"; max_len=1024 ;;
    fuzz_raw_file) seeds=tests/fuzz/corpus/raw; max_len=8192 ;;
    fuzz_onnx_file) seeds=tests/fuzz/corpus/onnx; max_len=8192 ;;
    fuzz_oip_body) seeds=tests/fuzz/corpus/oip; max_len=4096 ;;
    fuzz_keras_file) seeds=tests/fuzz/corpus/keras; max_len=1024 ;;
  esac
  asan="$ASAN_OPTIONS"
  # libhdf5 leaks on some corrupt object headers (inside H5C_protect): not ours to fix.
  [ "$t" = fuzz_raw_file ] && asan="${asan/detect_leaks=1/detect_leaks=0}"
  # Inputs found in this run go to a scratch corpus: the committed seeds stay as they are.
  work="$build/corpus/$t"
  findings="$build/findings/$t"
  rm -rf "$findings"
  mkdir -p "$work" "$findings"
  log="$build/$t.log"
  echo "== $t: ${seconds} s from $seeds"
  rc=0
  # shellcheck disable=SC2086  # $seeds: one or two folders
  ASAN_OPTIONS="$asan" "$build/tests/fuzz/$t" "$work" $seeds \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -max_len="$max_len" -len_control=0 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1 || rc=$?
  echo "$rc" >"$build/$t.rc"
}

# Each target is one single-threaded process: $jobs of them at once, one per core, so
# every target still gets its $seconds of a core (5 targets on 2 cores: 3 rounds, not 5).
running=0
for t in "${targets[@]}"; do
  rm -f "$build/$t.rc"
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait || true

# The summary in the targets' order, whatever order they finished in.
failed=()
for t in "${targets[@]}"; do
  log="$build/$t.log"
  rc=$(cat "$build/$t.rc" 2>/dev/null || echo "?")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  echo "   $t: ${execs:-?} executions, ${rate:-?} exec/s, ${cov:-cov: ?}, exit $rc"
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    echo "   FINDING in $t (reproducer in $build/findings/$t/; full log $log):"
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==|Test unit written" "$log" | head -20 | sed 's/^/   /'
  fi
done
echo "fuzz.sh: done in $(( $(date +%s) - start )) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]}; reproduce with $build/tests/fuzz/<target> <file>" >&2
  exit 1
fi
