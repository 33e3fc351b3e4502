# ONNX models end to end (issue 14): `ipguard info`, `extract --model x.onnx` and
# `verify --suspect` of its HDF5 twin (the same weights, exported by
# tests/golden/make_onnx_golden.py): the twin labels every point as the ONNX model does
# (matching rate 1), and the fingerprint records the ONNX file's SHA-256 as the model
# digest. Then the same fingerprint against the ONNX model as a suspect, and a broken
# ONNX file refused with one line.
# Run by ctest as: cmake -DIPGUARD=<path> -DREPO=<source dir> -P cli_onnx.cmake
set(WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_onnx_work)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)

set(ONNX ${REPO}/tests/data/onnx/lenet5-fashion-mnist.onnx)
set(H5 ${REPO}/weights/lenet5-fashion-mnist.h5)

expect_exit(0 --json info ${ONNX})
if(NOT last_out MATCHES "\"arch\": \"onnx\"" OR NOT last_out MATCHES "\"classes\": 10")
  message(FATAL_ERROR "info of an ONNX model:\n${last_out}")
endif()

expect_exit(0 --device cpu --seed 3 --json extract --model ${ONNX} --out ${WORK}/fp.h5
            --init random --n 20 --iters 300)
file(SHA256 ${ONNX} onnx_sha)
expect_exit(0 --device cpu --json verify --fingerprint ${WORK}/fp.h5 --suspect ${H5})
if(NOT last_out MATCHES "\"matching_rate\": 1(\\.0)?[,\n]")
  message(FATAL_ERROR "verify of the HDF5 twin of the ONNX target:\n${last_out}")
endif()
expect_exit(0 --device cpu --json verify --fingerprint ${WORK}/fp.h5 --suspect ${ONNX})
if(NOT last_out MATCHES "\"matching_rate\": 1(\\.0)?[,\n]" OR NOT last_out MATCHES "\"same_file_as_target\": true")
  message(FATAL_ERROR "verify of the ONNX target itself (digest ${onnx_sha}):\n${last_out}")
endif()

# A truncated ONNX file: one clear line, exit 1.
execute_process(COMMAND bash -c "head -c 3000 '${REPO}/tests/data/onnx/mobilenet.onnx' > '${WORK}/cut.onnx'")
expect_exit(1 --device cpu verify --fingerprint ${WORK}/fp.h5 --suspect ${WORK}/cut.onnx)
if(NOT last_err MATCHES "cut.onnx: ")
  message(FATAL_ERROR "a truncated ONNX suspect gave:\n${last_err}")
endif()
