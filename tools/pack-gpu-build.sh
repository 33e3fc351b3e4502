#!/usr/bin/env bash
# Builds ipguard for the GPU test machine (CUDA, sm_90, Release) and packs what it needs to
# run there into one tar.xz that a device call carries: the test, benchmark and CLI binaries
# and every shared library they load that the GPU machine lacks (oneDNN, HDF5 and its
# dependencies, Google Benchmark, libgomp, ...). The GPU machine has no GoogleTest, Google
# Benchmark, oneDNN or HDF5 development files, so building there cannot give the tests; it
# has a newer glibc, so Debian-built binaries run there. tools/gpu-check unpacks the result.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tools/pack-gpu-build.sh [--build-dir DIR] [--out FILE] [--jobs N] [--no-build]
                               [--python PY]

Configures DIR (default build-gpu) as a CUDA Release build for sm_90, builds every target,
and writes FILE (default DIR/gpu-pack.tar.xz) holding:
  gpu-pack/bin/        ipg_tests, ipguard, bench_* (unstripped: sanitizer reports name functions)
                       and the Python module when built for the GPU machine's Python (3.12)
  gpu-pack/lib/        the non-system shared libraries they load, under their sonames
  gpu-pack/lib/gcc/    this toolchain's libstdc++ and libgcc_s, used only where the GPU
                       machine's own are older (tools/gpu-check decides)
  gpu-pack/mpi/        Open MPI's mpirun with its plugins and PMIx, relocatable (when the
                       binaries use MPI), for gpu-check's ranks-on-the-GPU step
  gpu-pack/MANIFEST.json  commit, build settings, packed libraries, and the CUDA libraries
                       the binaries expect to find on the GPU machine (not packed)
glibc, the CUDA driver and the CUDA/cuBLAS/cuDNN libraries are not packed: the GPU machine
has its own (CUDA toolkit, PyTorch's nvidia/ wheels). A device call carries at most 64 MiB,
the working tree and the pack together: the script says how much of it they take, and
fails when they do not fit.

  --build-dir DIR   build folder (default build-gpu; created if missing)
  --out FILE        the pack (default DIR/gpu-pack.tar.xz)
  --jobs N          parallel build jobs (default 2)
  --no-build        pack what DIR already holds
  --python PY       the interpreter to build the Python module for: one of the GPU
                    machine's version (3.12), with its headers (default: \$IPG_PACK_PYTHON,
                    python3.12 on PATH, or a pyenv 3.12); without one the pack has no module
  -h, --help        this text
EOF
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$REPO/build-gpu
OUT_FILE=
JOBS=2
DO_BUILD=1
GPU_PYTHON_VERSION=3.12  # the GPU machine's Python (/work/shared/gpu.md)
PY=${IPG_PACK_PYTHON:-}
while [[ $# -gt 0 ]]; do
  case $1 in
    --python) PY=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$(realpath -m "$2"); shift 2 ;;
    --out) OUT_FILE=$(realpath -m "$2"); shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "pack-gpu-build: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
OUT_FILE=${OUT_FILE:-$BUILD_DIR/gpu-pack.tar.xz}
MAX_MIB=60  # the device call's 64 MiB, less the working tree

# An interpreter of the GPU machine's Python version, with its headers, to build the Python
# module for it (a module loads only into the Python it was built for): --python, else
# $IPG_PACK_PYTHON, else python3.$minor on PATH or a pyenv version of it. None: no module.
find_gpu_python() {
  local want=$GPU_PYTHON_VERSION py v
  is_it() { "$1" -c "import sys, sysconfig, os; assert '%d.%d' % sys.version_info[:2] == '$want'; \
assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" 2>/dev/null; }
  for py in "python$want" "/usr/bin/python$want"; do
    is_it "$py" && { command -v "$py"; return; }
  done
  if command -v pyenv >/dev/null; then
    for v in $(pyenv versions --bare 2>/dev/null | grep "^$want\." || true); do
      py=$(PYENV_VERSION=$v pyenv which "python$want" 2>/dev/null) && is_it "$py" && { echo "$py"; return; }
    done
  fi
  return 0
}
[[ -n $PY ]] || PY=$(find_gpu_python)
PY_ARGS=(-DIPG_PYTHON=OFF)
if [[ -n $PY ]]; then
  PY_ARGS=(-DIPG_PYTHON=ON "-DPython3_EXECUTABLE=$PY")
  PY_SUFFIX=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  echo "pack-gpu-build: the Python module is built for $PY (ipguard$PY_SUFFIX)"
else
  PY_SUFFIX=
  echo "pack-gpu-build: no Python $GPU_PYTHON_VERSION with headers here (--python): the pack" \
    "has no Python module, and gpu-check skips the Python tests"
fi

if [[ $DO_BUILD == 1 ]]; then
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIPG_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DIPG_BUILD_TESTS=ON -DIPG_BUILD_BENCH=ON "${PY_ARGS[@]}"
  cmake --build "$BUILD_DIR" -j "$JOBS"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/ipg-pack.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PACK=$STAGE/gpu-pack
mkdir -p "$PACK/bin" "$PACK/lib/gcc"

# The binaries: every executable the build made outside CMake's own folders.
mapfile -t BINARIES < <(find "$BUILD_DIR/tests" "$BUILD_DIR/bench" "$BUILD_DIR/tools" \
  -path '*/CMakeFiles' -prune -o -type f -perm -u+x -print 2>/dev/null | sort)
[[ ${#BINARIES[@]} -gt 0 ]] || { echo "pack-gpu-build: no binaries in $BUILD_DIR" >&2; exit 1; }
for b in "${BINARIES[@]}"; do
  # The Python module only when built for the GPU machine's Python: another cannot load
  # there, and would only take room the device call does not have.
  if [[ $(basename "$b") == *.cpython-* ]]; then
    [[ -n $PY_SUFFIX && $(basename "$b") == "ipguard$PY_SUFFIX" ]] || continue
  fi
  file -b "$b" | grep -q '^ELF' && cp "$b" "$PACK/bin/"
done

# Sorts each library ldd resolves: glibc (the GPU machine's own, newer), CUDA (found there
# and recorded), the GCC runtime (lib/gcc) or everything else (lib/).
is_glibc() { [[ $1 =~ ^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libmvec\.so) ]]; }
is_cuda() { [[ $1 =~ ^lib(cuda|cudart|cublas|cublasLt|cudnn|nvrtc|nvJitLink|cufft|curand|cusparse|cusolver|nccl|nvToolsExt)[._] ]]; }
declare -A PACKED EXTERNAL
# cuBLAS is opened with dlopen on first use (kernels/cuda/cublas_library.h), so ldd does
# not show it; the GPU machine must still have it.
EXTERNAL[libcublas.so.13]=1
for b in "$PACK"/bin/*; do
  while read -r soname _ path _; do
    [[ -n $soname ]] || continue
    if is_glibc "$soname"; then continue; fi
    if is_cuda "$soname"; then EXTERNAL[$soname]=1; continue; fi
    if [[ $path == "not" || ! -e $path ]]; then
      echo "pack-gpu-build: $b needs $soname, which is not found here" >&2; exit 1
    fi
    dest=$PACK/lib
    [[ $soname =~ ^lib(stdc\+\+|gcc_s)\. ]] && dest=$PACK/lib/gcc
    [[ -e $dest/$soname ]] || cp -L "$path" "$dest/$soname"
    PACKED[$soname]=1
  done < <(ldd "$b" | sed -n 's/^\s*\(\S*\) => \(\S*\).*/\1 x \2 x/p')
done

# Open MPI's launcher, relocated (gpu-pack/mpi, used with OPAL_PREFIX and
# PMIX_INSTALL_PREFIX): the GPU machine has no MPI, and ipguard's ranks (docs/mpi.md) bind
# to GPUs there only under mpirun. Its binaries, MCA plugins and help files keep their
# paths relative to Open MPI's prefix; PMIx (Open MPI's process-management library) its
# own; the libraries they load that the GPU machine lacks go to mpi/lib.
MPI_PACKED=0
if [[ -n ${PACKED[libmpi.so.40]:-} ]] && command -v ompi_info >/dev/null && command -v orterun >/dev/null; then
  ompi_path() { ompi_info --path "$1" --parsable 2>/dev/null | sed -n "s/^path:$1://p"; }
  prefix=$(ompi_path prefix) pkglibdir=$(ompi_path pkglibdir) pkgdatadir=$(ompi_path pkgdatadir)
  M=$PACK/mpi
  mkdir -p "$M/bin" "$M/lib" "$M${pkglibdir#"$prefix"}" "$M${pkgdatadir#"$prefix"}"
  cp "$(command -v orterun)" "$(command -v orted)" "$M/bin/"
  ln -s orterun "$M/bin/mpirun"
  cp "$pkglibdir"/*.so "$M${pkglibdir#"$prefix"}/"
  cp -r "$pkgdatadir"/. "$M${pkgdatadir#"$prefix"}/"
  read -r pmix_soname pmix_lib < <(ldd "$pkglibdir"/mca_pmix_ext3x.so 2>/dev/null |
    awk '$1 ~ /^libpmix/ {print $1, $3}') || true
  if [[ -n ${pmix_lib:-} ]]; then
    pmix_lib=$(realpath "$pmix_lib")  # through Debian's links: PMIx's own prefix
    pmix_prefix=$(dirname "$(dirname "$pmix_lib")")
    mkdir -p "$M/pmix/lib"
    cp -L "$pmix_lib" "$M/pmix/lib/$pmix_soname"
    cp -r "$pmix_prefix/lib/pmix" "$M/pmix/lib/"
    [[ -d $pmix_prefix/share ]] && cp -r "$pmix_prefix/share" "$M/pmix/"
  fi
  # One node's launch needs shared memory and TCP, not the fabrics (InfiniBand, OFI, UCX,
  # PSM), OpenSHMEM or MPI-IO: their plugins and the libraries only they load stay here
  # (Open MPI skips a plugin it does not find), which keeps the pack inside the device
  # call's size.
  not_needed='^lib(fabric|uc[pstm]|ibverbs|rdmacm|psm|infinipath|efa|nl-|oshmem)'
  for f in "$M${pkglibdir#"$prefix"}"/*.so "$M"/pmix/lib/pmix/*.so; do
    name=$(basename "$f" .so)
    if [[ $name =~ ^mca_(spml|sshmem|atomic|scoll|memheap|io|fs|fbtl|fcoll|sharedfp)_ ]] ||
      ldd "$f" 2>/dev/null | awk '{print $1}' | grep -qE "$not_needed"; then
      rm -f "$f"
    fi
  done
  for f in "$M"/bin/* "$M${pkglibdir#"$prefix"}"/*.so "$M"/pmix/lib/pmix/*.so; do
    while read -r soname _ path _; do
      [[ -n $soname && $path != "not" && -e $path ]] || continue
      if is_glibc "$soname" || is_cuda "$soname" || [[ -n ${PACKED[$soname]:-} ]]; then continue; fi
      [[ $soname =~ ^libpmix\. ]] && continue  # in mpi/pmix/lib
      [[ -e $M/lib/$soname ]] || cp -L "$path" "$M/lib/$soname"
    done < <(ldd "$f" 2>/dev/null | sed -n 's/^\s*\(\S*\) => \(\S*\).*/\1 x \2 x/p')
  done
  MPI_PACKED=1
  echo "pack-gpu-build: Open MPI's launcher packed ($(du -sh "$M" | cut -f1))"
fi

COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)
CUDNN_H=$(grep -rl CUDNN_MAJOR /usr/local/cuda/include/cudnn_version*.h 2>/dev/null | head -1 || true)
CUDNN_VERSION=
if [[ -n $CUDNN_H ]]; then
  CUDNN_VERSION=$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s%s", sep, $3; sep="."}' "$CUDNN_H")
fi
NVCC_VERSION=$(/usr/local/cuda/bin/nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
python3 - "$PACK/MANIFEST.json" <<EOF
import json, os, sys
json.dump({
    "format": "ipguard-gpu-pack", "version": 1,
    "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "host": "$(hostname)",
    "commit": "$COMMIT", "uncommitted_files": $DIRTY,
    "source_dir": "$REPO", "build_dir": "$BUILD_DIR",
    "build": {"type": "Release", "cuda_architectures": "90", "nvcc": "$NVCC_VERSION",
              "cudnn_headers": "$CUDNN_VERSION",
              "glibc": "$(ldd --version | head -1 | awk '{print $NF}')"},
    "binaries": sorted(os.listdir("$PACK/bin")),
    "packed_libraries": sorted("${!PACKED[*]}".split()),
    "external_libraries": sorted("${!EXTERNAL[*]}".split()),
    "mpi": bool($MPI_PACKED),
}, open(sys.argv[1], "w"), indent=1)
EOF

mkdir -p "$(dirname "$OUT_FILE")"
XZ_OPT="-9 -T${JOBS}" tar -C "$STAGE" -cJf "$OUT_FILE" gpu-pack
SIZE_MIB=$(($(stat -c %s "$OUT_FILE") / 1048576))
# What a device call carries: the working tree (tracked files and untracked ones git does
# not ignore) and the pack, 64 MiB together.
TREE_BYTES=$(cd "$REPO" && git ls-files -z --cached --others --exclude-standard 2>/dev/null |
  xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
CARRY_MIB=$(((TREE_BYTES + $(stat -c %s "$OUT_FILE")) / 1048576))
echo "pack-gpu-build: $OUT_FILE: ${SIZE_MIB} MiB ($(du -sh "$PACK" | cut -f1) unpacked);" \
  "binaries: $(ls "$PACK/bin" | tr '\n' ' ')"
echo "pack-gpu-build: expects on the GPU machine: ${!EXTERNAL[*]}"
echo "pack-gpu-build: a device call carries ${CARRY_MIB} MiB of 64 (working tree $((TREE_BYTES / 1048576)) MiB + this pack)"
if [[ $SIZE_MIB -gt $MAX_MIB || $CARRY_MIB -ge 64 ]]; then
  echo "pack-gpu-build: the working tree and the pack are over 64 MiB together: a device" \
    "call cannot carry them (make the tree smaller, or the pack)" >&2
  exit 1
fi
