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

# ONNX out: the shipped ResNet20 written as ONNX by `convert --to-onnx` labels the
# fingerprint as its HDF5 original does, and a byte flipped inside its weights is refused
# (the graph digest); --out equal to the input is refused before any work.
set(R20 ${REPO}/weights/resnet20-fashion-mnist.h5)
expect_exit(0 --json convert --to-onnx ${R20} --out ${WORK}/r20.onnx)
if(NOT last_out MATCHES "\"arch\": \"resnet20\"" OR NOT last_out MATCHES "\"out\": \"[^\"]*/r20\\.onnx\"")
  message(FATAL_ERROR "convert --to-onnx:\n${last_out}")
endif()
expect_exit(0 --device cpu --seed 4 extract --model ${R20} --out ${WORK}/fp-r20.h5
            --init random --n 20 --iters 200)
expect_exit(0 --device cpu --json verify --fingerprint ${WORK}/fp-r20.h5 --suspect ${WORK}/r20.onnx)
if(NOT last_out MATCHES "\"matching_rate\": 1(\\.0)?[,\n]")
  message(FATAL_ERROR "the ONNX export of the target does not match its fingerprint:\n${last_out}")
endif()
file(SIZE ${WORK}/r20.onnx onnx_size)
math(EXPR middle "${onnx_size} / 2")
# The byte's complement (never the byte itself).
execute_process(COMMAND bash -c "cp '${WORK}/r20.onnx' '${WORK}/flip.onnx' && b=$(od -An -tu1 -j ${middle} -N1 '${WORK}/flip.onnx') && printf \"\\\\$(printf %o $((255 - b)))\" | dd of='${WORK}/flip.onnx' bs=1 seek=${middle} conv=notrunc status=none")
expect_exit(1 --device cpu verify --fingerprint ${WORK}/fp-r20.h5 --suspect ${WORK}/flip.onnx)
if(NOT last_err MATCHES "flip.onnx: .*damaged")
  message(FATAL_ERROR "a flipped byte in an exported ONNX file gave:\n${last_err}")
endif()
expect_exit(2 convert --to-onnx ${WORK}/r20.onnx --out ${WORK}/r20.onnx)

# info --plan: whether the fingerprint loop runs a network fused, and why not. The ONNX
# LeNet-5 is planned whole; the ShuffleNet units' channel split (a slice) is not lowered (autodiff,
# named); a forest has no plan (usage error).
expect_exit(0 --device cpu info --plan ${ONNX})
if(NOT last_out MATCHES "plan        fused, 9 steps:\n    v1 = affine\\(v0\\)")
  message(FATAL_ERROR "info --plan of the ONNX LeNet-5:\n${last_out}")
endif()
expect_exit(0 --device cpu --json info --plan ${REPO}/tests/data/onnx/shuffle.onnx)
if(NOT last_out MATCHES "\"fused\": false" OR NOT last_out MATCHES "\"why\": \"'slice' \\(trace node")
  message(FATAL_ERROR "info --plan --json of the shuffle network:\n${last_out}")
endif()
file(GLOB forests ${REPO}/weights/zoo-lenet5-fashion-mnist/negative/rf-*.h5)
list(GET forests 0 forest)
expect_exit(2 --device cpu info --plan ${forest})
if(NOT last_err MATCHES "is a random forest; only networks have a plan")
  message(FATAL_ERROR "info --plan of a forest:\n${last_err}")
endif()
