# CLI smoke test: help, version, usage errors and the doctor's end-to-end check.
# Run by ctest as: cmake -DIPGUARD=<path> -P cli_smoke.cmake
set(WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_smoke_work)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(expect_exit code)
  execute_process(COMMAND ${IPGUARD} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL code)
    message(FATAL_ERROR "ipguard ${ARGN}: exit ${rc}, expected ${code}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()

expect_exit(0 --help)
if(NOT last_out MATCHES "doctor" OR NOT last_out MATCHES "extract")
  message(FATAL_ERROR "--help does not list the subcommands:\n${last_out}")
endif()
expect_exit(0 --version)
if(NOT last_out MATCHES "^ipguard [0-9]+\\.[0-9]+\\.[0-9]+")
  message(FATAL_ERROR "--version printed: ${last_out}")
endif()
expect_exit(2)                       # no subcommand
expect_exit(2 --no-such-flag doctor)
expect_exit(2 --device)              # option without its value
expect_exit(1 --device gpu0 doctor)  # unknown device: one error line
if(NOT last_err MATCHES "unknown device")
  message(FATAL_ERROR "bad --device gave: ${last_err}")
endif()
expect_exit(0 --device cpu --json doctor)
if(NOT last_out MATCHES "\"ok\": true")
  message(FATAL_ERROR "doctor --json did not report ok:\n${last_out}")
endif()
expect_exit(0 --device auto doctor)
expect_exit(1 zoo)                   # planned: says so, exits 1
expect_exit(2 train --arch lenet5)   # --out missing: usage error
expect_exit(1 train --arch nonet --epochs 1 --limit 10 --out ${WORK}/x.h5)
if(NOT last_err MATCHES "unknown architecture")
  message(FATAL_ERROR "unknown --arch gave: ${last_err}")
endif()
expect_exit(1 info ${WORK}/missing.h5)
expect_exit(1 eval --model ${CMAKE_CURRENT_LIST_FILE})  # not HDF5
expect_exit(1 train --arch lenet5 --data cifar10 --out ${WORK}/x.h5)  # no folder given
# A tiny real run end to end: train, info, eval, and no temp files left behind.
expect_exit(0 --device cpu train --arch lenet5 --epochs 1 --limit 512 --batch 64 --out ${WORK}/tiny.h5)
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
expect_exit(1 train --init ${WORK}/tiny.h5 --arch lenet5 --out ${WORK}/x.h5)
expect_exit(2 train --arch lenet5 --prune-weights 1.5 --out ${WORK}/x.h5)
# A random forest: train, info, eval through the same commands.
expect_exit(0 --device cpu train --arch rf --trees 2 --limit 500 --out ${WORK}/rf.h5)
expect_exit(0 --json info ${WORK}/rf.h5)
if(NOT last_out MATCHES "\"trees\": 2")
  message(FATAL_ERROR "info --json of a forest: ${last_out}")
endif()
expect_exit(0 --device cpu eval --model ${WORK}/rf.h5)
expect_exit(1 train --arch rf --init ${WORK}/tiny.h5 --out ${WORK}/x.h5)
# Fingerprints: extract from the tiny model, verify it and the forest against it.
expect_exit(0 --device cpu --seed 3 extract --model ${WORK}/tiny.h5 --n 8 --iters 50 --out ${WORK}/fp.h5)
expect_exit(0 --device cpu --json verify --fingerprint ${WORK}/fp.h5 --suspect ${WORK}/tiny.h5)
if(NOT last_out MATCHES "\"matching_rate\": 1" OR NOT last_out MATCHES "\"same_file_as_target\": true")
  message(FATAL_ERROR "verify of the target itself: ${last_out}")
endif()
expect_exit(0 --device cpu verify --fingerprint ${WORK}/fp.h5 --suspect ${WORK}/rf.h5)
expect_exit(0 --device cpu --seed 3 extract --model ${WORK}/tiny.h5 --method igsm --init random --n 4 --iters 20 --out ${WORK}/fp_igsm.h5)
expect_exit(2 extract --model ${WORK}/tiny.h5 --method nosuch --out ${WORK}/x.h5)
expect_exit(1 extract --model ${WORK}/rf.h5 --out ${WORK}/x.h5)      # a forest has no gradient
expect_exit(1 verify --fingerprint ${WORK}/tiny.h5 --suspect ${WORK}/tiny.h5)  # not a fingerprint
expect_exit(1 verify --fingerprint ${WORK}/missing.h5 --suspect ${WORK}/tiny.h5)
if(EXISTS ${WORK}/x.h5)
  message(FATAL_ERROR "a failed extract left ${WORK}/x.h5")
endif()
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
