# CLI smoke test: help, version, usage errors and the doctor's end-to-end check.
# Run by ctest as: cmake -DIPGUARD=<path> -P cli_smoke.cmake
set(WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_smoke_work)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)

expect_exit(0 --help)
if(NOT last_out MATCHES "doctor" OR NOT last_out MATCHES "extract")
  message(FATAL_ERROR "--help does not list the subcommands:\n${last_out}")
endif()
expect_exit(0 --version)
if(NOT last_out MATCHES "^ipguard [0-9]+\\.[0-9]+\\.[0-9]+")
  message(FATAL_ERROR "--version printed: ${last_out}")
endif()
# cuBLAS is opened on first use (kernels/cuda/cublas_library.h), not at start: its
# libcublasLt's initializers cost every process ~0.3 s. The loader's own log says which
# libraries a CPU doctor run opened.
if(IPG_HAS_CUDA)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env LD_DEBUG=files ${IPGUARD} --device cpu doctor
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE ld_log)
  if(NOT rc EQUAL 0 OR NOT ld_log MATCHES "libcudart")
    message(FATAL_ERROR "LD_DEBUG=files ipguard --device cpu doctor: exit ${rc}, or no loader "
                        "log naming libcudart:\n${ld_log}")
  endif()
  if(ld_log MATCHES "libcublas")
    message(FATAL_ERROR "a CPU run loaded cuBLAS at start (it is meant to be opened on first "
                        "use)")
  endif()
endif()
expect_exit(2)                       # no subcommand
expect_exit(2 --no-such-flag doctor)
# A usage error is one line naming the command, like every later error.
function(expect_one_usage_line what pattern)
  string(STRIP "${last_err}" e)
  if(e MATCHES "\n" OR NOT e MATCHES "${pattern}")
    message(FATAL_ERROR "${what}: expected one line matching '${pattern}', got:\n${last_err}")
  endif()
endfunction()
expect_one_usage_line("--no-such-flag" "^ipguard( doctor)?: .*--no-such-flag")
expect_exit(2 --seed 3 nosuch)
expect_one_usage_line("unknown subcommand" "^ipguard: unknown subcommand 'nosuch'")
expect_exit(2 extract --n 0 --model m.h5 --out fp.h5)
expect_one_usage_line("extract --n 0" "^ipguard extract: --n must be at least 1, not 0 \\(see --help\\)$")
expect_exit(2 --device)              # option without its value
expect_exit(2 --device gpu0 doctor)  # unknown device: a usage error, one line
if(NOT last_err MATCHES "unknown device")
  message(FATAL_ERROR "bad --device gave: ${last_err}")
endif()
expect_exit(0 --device cpu --json doctor)
if(NOT last_out MATCHES "\"ok\": true")
  message(FATAL_ERROR "doctor --json did not report ok:\n${last_out}")
endif()
expect_exit(0 --device auto doctor)
# The global options after the subcommand too (serve --help speaks of "--json" there).
expect_exit(0 doctor --device cpu --json)
if(NOT last_out MATCHES "^{.*\"ok\": true")
  message(FATAL_ERROR "doctor --device cpu --json did not print JSON:\n${last_out}")
endif()
expect_exit(2 doctor --no-such-flag)
expect_exit(2 --seed 1 doctor --seed 2)  # one value, not two
# Memory no machine has (10^11 points of 28x28: above a 47-bit address space, whatever
# the overcommit policy): one line that says so, not "std::bad_alloc". Under
# AddressSanitizer (its preset sets ASAN_OPTIONS) a failed operator new is its own fatal
# report, not an exception: skipped there, visibly.
if(DEFINED ENV{ASAN_OPTIONS})
  message(NOTICE "cli_smoke: SKIPPED the out-of-memory case (AddressSanitizer reports a failed "
                 "allocation itself)")
else()
  expect_exit(1 --device cpu extract --model ${CMAKE_CURRENT_LIST_DIR}/../weights/lenet5-fashion-mnist.h5
              --init random --n 100000000000 --iters 1 --out ${WORK}/huge.h5)
  if(NOT last_err MATCHES "^ipguard extract: error: out of memory: " OR EXISTS ${WORK}/huge.h5)
    message(FATAL_ERROR "extract of 10^11 points gave:\n${last_err}")
  endif()
endif()
expect_exit(2 zoo --out ${WORK}/z)   # --target missing: usage error
expect_exit(2 train --arch lenet5)   # --out missing: usage error
expect_exit(2 train --arch nonet --epochs 1 --limit 10 --out ${WORK}/x.h5)
if(NOT last_err MATCHES "unknown architecture")
  message(FATAL_ERROR "unknown --arch gave: ${last_err}")
endif()
expect_exit(1 info ${WORK}/missing.h5)
expect_exit(1 eval --model ${CMAKE_CURRENT_LIST_FILE})  # not HDF5
expect_exit(2 train --arch lenet5 --data cifar10 --out ${WORK}/x.h5)  # no folder given
# A tiny real run end to end: train, info, eval, and no temp files left behind.
expect_exit(0 --device cpu --json train --arch lenet5 --epochs 1 --limit 512 --batch 64 --out ${WORK}/tiny.h5)
# Every command that writes a file names it as "out" in its --json result.
if(NOT last_out MATCHES "\"out\": \"[^\"]*/tiny\\.h5\"")
  message(FATAL_ERROR "train --json does not name its output as \"out\": ${last_out}")
endif()
expect_exit(0 --json info ${WORK}/tiny.h5)
if(NOT last_out MATCHES "\"arch\": \"lenet5\"")
  message(FATAL_ERROR "info --json: ${last_out}")
endif()
expect_exit(0 --device cpu --json eval --model ${WORK}/tiny.h5)
if(NOT last_out MATCHES "\"accuracy\": 0\\.[0-9]+")
  message(FATAL_ERROR "eval --json: ${last_out}")
endif()
# Post-processing through train --init: filter pruning + re-initialized last layer; and
# the options that only make sense together are refused.
expect_exit(0 --device cpu train --init ${WORK}/tiny.h5 --prune-filters 0.25 --reinit-last --epochs 1 --limit 256 --batch 64 --out ${WORK}/post.h5)
expect_exit(0 info ${WORK}/post.h5)
if(NOT last_out MATCHES "filters pruned" OR NOT last_out MATCHES "re-initialized")
  message(FATAL_ERROR "info of a post-processed model: ${last_out}")
endif()
expect_exit(0 --device cpu postprocess --model ${WORK}/tiny.h5 --attack rtll --epochs 1 --limit 256 --out ${WORK}/rtll.h5)
expect_exit(0 info ${WORK}/rtll.h5)
if(NOT last_out MATCHES "re-initialized" OR NOT last_out MATCHES "last layer only")
  message(FATAL_ERROR "info of an RTLL suspect: ${last_out}")
endif()
expect_exit(2 postprocess --model ${WORK}/tiny.h5 --attack wp:2 --out ${WORK}/x.h5)
expect_exit(2 postprocess --model ${WORK}/tiny.h5 --attack xyz --out ${WORK}/x.h5)
expect_exit(2 train --init ${WORK}/tiny.h5 --arch lenet5 --out ${WORK}/x.h5)
expect_exit(2 train --arch lenet5 --prune-weights 1.5 --out ${WORK}/x.h5)
# A random forest: train, info, eval through the same commands.
expect_exit(0 --device cpu --json train --arch rf --trees 2 --limit 500 --out ${WORK}/rf.h5)
if(NOT last_out MATCHES "\"out\": \"[^\"]*/rf\\.h5\"")
  message(FATAL_ERROR "train --arch rf --json does not name its output as \"out\": ${last_out}")
endif()
expect_exit(0 --json info ${WORK}/rf.h5)
if(NOT last_out MATCHES "\"trees\": 2")
  message(FATAL_ERROR "info --json of a forest: ${last_out}")
endif()
expect_exit(0 --device cpu eval --model ${WORK}/rf.h5)
expect_exit(2 train --arch rf --init ${WORK}/tiny.h5 --out ${WORK}/x.h5)
# Fingerprints: extract from the tiny model, verify it and the forest against it.
expect_exit(0 --device cpu --seed 3 --json extract --model ${WORK}/tiny.h5 --n 8 --iters 50 --out ${WORK}/fp.h5)
if(NOT last_out MATCHES "\"out\": \"[^\"]*/fp\\.h5\"")
  message(FATAL_ERROR "extract --json does not name its output as \"out\": ${last_out}")
endif()
expect_exit(0 --device cpu --json verify --fingerprint ${WORK}/fp.h5 --suspect ${WORK}/tiny.h5)
if(NOT last_out MATCHES "\"matching_rate\": 1" OR NOT last_out MATCHES "\"same_file_as_target\": true")
  message(FATAL_ERROR "verify of the target itself: ${last_out}")
endif()
expect_exit(0 --device cpu verify --fingerprint ${WORK}/fp.h5 --suspect ${WORK}/rf.h5)
expect_exit(0 --device cpu --seed 3 extract --model ${WORK}/tiny.h5 --method igsm --init random --n 4 --iters 20 --out ${WORK}/fp_igsm.h5)
# compare: a fingerprint against a re-extraction with the same seed (the same bits) and
# against another method's (different points, shape mismatch: n differs).
expect_exit(0 --device cpu --seed 3 extract --model ${WORK}/tiny.h5 --n 8 --iters 50 --out ${WORK}/fp_again.h5)
expect_exit(0 --json compare ${WORK}/fp.h5 ${WORK}/fp_again.h5 --min-agreement 1)
if(NOT last_out MATCHES "\"identical_points\": 8" OR NOT last_out MATCHES "\"label_agreement\": 1")
  message(FATAL_ERROR "compare of two same-seed extractions: ${last_out}")
endif()
# Another seed: other points, and labels that agree less than --min-agreement 1 asks; the
# exit 1 comes with a line saying so, and the JSON result says it too.
expect_exit(0 --device cpu --seed 4 extract --model ${WORK}/tiny.h5 --n 8 --iters 50 --out ${WORK}/fp_seed4.h5)
expect_exit(1 compare ${WORK}/fp.h5 ${WORK}/fp_seed4.h5 --min-agreement 1)
if(NOT last_err MATCHES "compare: labels agree on [0-7] of 8 points \\(0?\\.?[0-9]+\\), below --min-agreement 1\n")
  message(FATAL_ERROR "compare below --min-agreement: ${last_err}")
endif()
expect_exit(1 --json compare ${WORK}/fp.h5 ${WORK}/fp_seed4.h5 --min-agreement 1)
string(JSON meets GET "${last_out}" meets_min_agreement)
string(JSON min GET "${last_out}" min_agreement)
if(meets OR NOT min EQUAL 1 OR NOT last_err MATCHES "below --min-agreement 1")
  message(FATAL_ERROR "compare --json below --min-agreement: ${last_out}\n${last_err}")
endif()
expect_exit(1 compare ${WORK}/fp.h5 ${WORK}/fp_igsm.h5)   # 8 points against 4
expect_exit(1 compare ${WORK}/fp.h5 ${WORK}/tiny.h5)      # not a fingerprint
expect_exit(2 compare ${WORK}/fp.h5)
expect_exit(2 extract --model ${WORK}/tiny.h5 --method nosuch --out ${WORK}/x.h5)
expect_exit(1 extract --model ${WORK}/rf.h5 --out ${WORK}/x.h5)      # a forest has no gradient
expect_exit(1 verify --fingerprint ${WORK}/tiny.h5 --suspect ${WORK}/tiny.h5)  # not a fingerprint
expect_exit(1 verify --fingerprint ${WORK}/missing.h5 --suspect ${WORK}/tiny.h5)
if(EXISTS ${WORK}/x.h5)
  message(FATAL_ERROR "a failed extract left ${WORK}/x.h5")
endif()
# An experiment over a small zoo folder: the tiny model as target, its post-processed
# copies as positives, the forest and an unrelated LeNet-5 as negatives.
file(MAKE_DIRECTORY ${WORK}/zoo/positive ${WORK}/zoo/negative)
file(COPY_FILE ${WORK}/tiny.h5 ${WORK}/zoo/target.h5)
file(COPY_FILE ${WORK}/rtll.h5 ${WORK}/zoo/positive/rtll.h5)
file(COPY_FILE ${WORK}/post.h5 ${WORK}/zoo/positive/post.h5)
file(COPY_FILE ${WORK}/rf.h5 ${WORK}/zoo/negative/rf.h5)
expect_exit(0 --device cpu --seed 1 train --arch lenet5 --epochs 1 --limit 256 --batch 64 --out ${WORK}/zoo/negative/other.h5)
expect_exit(0 --device cpu --json experiment --zoo ${WORK}/zoo
            --grid "ipguard:k=0.1:iters=30 fgsm:eps=0.1 random" --modes RL --n 8 --out ${WORK}/exp)
if(NOT last_out MATCHES "\"aruc\"" OR NOT last_out MATCHES "\"sha256\"")
  message(FATAL_ERROR "experiment --json: ${last_out}")
endif()
foreach(f results.json report.html fingerprints/ipguard_k0p1_RL.h5 fingerprints/random_RL.h5)
  if(NOT EXISTS ${WORK}/exp/${f})
    message(FATAL_ERROR "experiment --out did not write ${f}")
  endif()
endforeach()
file(READ ${WORK}/exp/report.html html)
if(NOT html MATCHES "^<!DOCTYPE html>" OR NOT html MATCHES "<svg" OR NOT html MATCHES "</html>")
  message(FATAL_ERROR "experiment wrote report.html: ${html}")
endif()
# Run again into the same folder: refused without --resume; with it, nothing is redone and
# the tables come out on stdout.
expect_exit(2 --device cpu experiment --zoo ${WORK}/zoo --grid "ipguard:k=0.1:iters=30 fgsm:eps=0.1 random"
            --modes RL --n 8 --out ${WORK}/exp)
if(NOT last_err MATCHES "--resume")
  message(FATAL_ERROR "experiment into an earlier run's folder: ${last_err}")
endif()
expect_exit(0 --device cpu experiment --zoo ${WORK}/zoo --grid "ipguard:k=0.1:iters=30 fgsm:eps=0.1 random"
            --modes RL --n 8 --out ${WORK}/exp --resume)
string(REGEX MATCHALL "resumed: done in the earlier run" resumed "${last_err}")
list(LENGTH resumed n_resumed)
if(NOT n_resumed EQUAL 3 OR NOT last_out MATCHES "Table 4" OR NOT last_out MATCHES "Table 8")
  message(FATAL_ERROR "experiment --resume: ${last_out}\n${last_err}")
endif()
expect_exit(1 experiment --zoo ${WORK}/zoo/positive)  # no target.h5
expect_exit(0 --device cpu zoo --target ${WORK}/tiny.h5 --out ${WORK}/zoo2 --positives ftll,wp:0.5 --negatives rf:1 --epochs 1 --limit 256)
foreach(f target.h5 positive/ftll.h5 positive/wp-0.5.h5 negative/rf-seed1.h5)
  if(NOT EXISTS ${WORK}/zoo2/${f})
    message(FATAL_ERROR "zoo did not write ${f}")
  endif()
endforeach()
expect_exit(2 zoo --target ${WORK}/tiny.h5 --out ${WORK}/zoo3 --positives nope)
if(EXISTS ${WORK}/zoo3)
  message(FATAL_ERROR "a refused zoo left ${WORK}/zoo3 behind")
endif()
expect_exit(2 experiment --zoo ${WORK}/zoo --methods nosuch)
# Keras import: a real h5py-written Keras file converts; a native model file is refused.
get_filename_component(REPO ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
expect_exit(0 convert --keras ${REPO}/tests/data/keras/lenet5_save_weights_fixed.h5 --arch lenet5 --out ${WORK}/k.h5)
expect_exit(0 info ${WORK}/k.h5)
expect_exit(1 convert --keras ${WORK}/tiny.h5 --arch lenet5 --out ${WORK}/k2.h5)
if(NOT last_err MATCHES "not a Keras weights file" OR EXISTS ${WORK}/k2.h5)
  message(FATAL_ERROR "convert of a non-Keras file: ${last_err}")
endif()
file(GLOB leftovers ${WORK}/*.tmp-*)
if(leftovers)
  message(FATAL_ERROR "temporary files left behind: ${leftovers}")
endif()
