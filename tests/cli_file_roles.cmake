# Files a command cannot use in the part it is given, refused before any work with one line
# naming the file: an output that exists as a device, pipe or socket (the output is written
# to a temporary name and renamed over it, which would replace /dev/null with a plain
# file), and a training start or teacher that is an ONNX model or a random forest (found
# before the dataset loads, not after an epoch), also as a zoo's target; a forest or an
# inexpressible network given to convert --to-onnx; a fingerprint whose points a suspect
# cannot take, a dataset whose images a model cannot take. Nothing here measures time.
# Run by ctest as: cmake -DIPGUARD=<path> -DREPO=<source dir> -P cli_file_roles.cmake
set(WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_file_roles_work)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)

# Exit `code`, one line on stderr matching `pattern`, nothing started, nothing written.
function(expect_refused code pattern)
  expect_exit(${code} --device cpu ${ARGN})
  string(STRIP "${last_err}" err)
  if(NOT err MATCHES "${pattern}" OR err MATCHES "\n")
    message(FATAL_ERROR "ipguard ${ARGN}: expected one line matching '${pattern}', got:\n${last_err}")
  endif()
  if(last_err MATCHES "epoch|training |fine-tuning |points [0-9]" OR last_out MATCHES "saved ")
    message(FATAL_ERROR "ipguard ${ARGN}: the work started before the refusal:\n${last_err}")
  endif()
endfunction()

file(COPY_FILE ${REPO}/weights/lenet5-fashion-mnist.h5 ${WORK}/m.h5)
set(onnx ${REPO}/tests/data/onnx/lenet5-fashion-mnist.onnx)

# ---- an output that is a pipe, or a symlink to one: it stays a pipe ----
execute_process(COMMAND mkfifo ${WORK}/pipe RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mkfifo ${WORK}/pipe failed")
endif()
file(CREATE_LINK ${WORK}/pipe ${WORK}/pipe_link SYMBOLIC)
foreach(out pipe pipe_link)
  expect_refused(2 "--out .*${out} is not a regular file" extract --model ${WORK}/m.h5 --n 2
                 --iters 5 --init random --out ${WORK}/${out})
  expect_refused(2 "--out .*${out} is not a regular file" postprocess --model ${WORK}/m.h5
                 --attack ftll --epochs 1 --limit 64 --out ${WORK}/${out})
  expect_refused(2 "--out .*${out} is not a regular file" convert --to-onnx ${WORK}/m.h5
                 --out ${WORK}/${out})
endforeach()
execute_process(COMMAND test -p ${WORK}/pipe RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${WORK}/pipe is no longer a pipe after the refused commands")
endif()

# ---- a start that cannot be trained, a teacher that cannot teach ----
expect_exit(0 --device cpu --seed 1 train --arch rf --trees 1 --limit 100 --out ${WORK}/rf.h5)
expect_refused(1 "onnx: an ONNX model cannot be trained or post-processed" train --init ${onnx}
               --epochs 1 --limit 64 --out ${WORK}/x.h5)
expect_refused(1 "onnx: an ONNX model cannot be trained or post-processed" postprocess
               --model ${onnx} --attack ftal --epochs 1 --limit 64 --out ${WORK}/x.h5)
expect_refused(1 "rf\\.h5: a random forest cannot be trained further" train --init ${WORK}/rf.h5
               --epochs 1 --limit 64 --out ${WORK}/x.h5)
expect_refused(1 "rf\\.h5: a random forest cannot be trained further" postprocess
               --model ${WORK}/rf.h5 --attack wp:0.1 --epochs 1 --limit 64 --out ${WORK}/x.h5)
expect_refused(1 "rf\\.h5: a random forest cannot be extracted" postprocess
               --model ${WORK}/rf.h5 --attack distill:lenet5 --epochs 1 --limit 64
               --out ${WORK}/x.h5)
# convert --to-onnx: a forest is named as such (it said "unknown architecture 'rf'"), and
# what a network holds that ONNX cannot say names the file.
expect_refused(1 "rf\\.h5: a random forest, not a network" convert --to-onnx ${WORK}/rf.h5
               --out ${WORK}/x.onnx)
expect_refused(1 "mobilenet\\.onnx: op 'clamp' \\(node [0-9]+\\) has no ONNX form" convert
               --to-onnx ${REPO}/tests/data/onnx/mobilenet.onnx --out ${WORK}/x.onnx)
# verify: a fingerprint of a model with other inputs names the suspect and the fingerprint.
expect_exit(0 --device cpu --seed 1 extract --model ${REPO}/tests/data/onnx/mobilenet.onnx
            --init random --n 2 --iters 1 --out ${WORK}/fp_mobilenet.h5)
expect_refused(1 "m\\.h5: lenet5: input \\[2, 3, 16, 16\\] does not match .*\\(the points of .*fp_mobilenet\\.h5\\)"
               verify --fingerprint ${WORK}/fp_mobilenet.h5 --suspect ${WORK}/m.h5)
# A fingerprint where a model belongs, and the reverse: said as such, with what to do.
expect_refused(1 "fp_mobilenet\\.h5: an ipguard fingerprint, not a model \\(commands take it as --fingerprint\\)"
               verify --fingerprint ${WORK}/fp_mobilenet.h5 --suspect ${WORK}/fp_mobilenet.h5)
expect_refused(1 "fp_mobilenet\\.h5: an ipguard fingerprint, not a model" info ${WORK}/fp_mobilenet.h5)
expect_refused(1 "m\\.h5: an ipguard model, not a fingerprint \\(make one from it with `ipguard extract --model .*m\\.h5`\\)"
               verify --fingerprint ${WORK}/m.h5 --suspect ${WORK}/m.h5)
# extract --init train: training images the model cannot take name the dataset and the
# model (it said "init 'train' needs training images of the model's input shape").
expect_refused(2 "--data fashion-mnist/train: its images are \\[1, 28, 28\\], .*mobilenet\\.onnx takes \\[3, 16, 16\\]"
               extract --model ${REPO}/tests/data/onnx/mobilenet.onnx --n 2 --iters 1
               --out ${WORK}/fp_x.h5)
# eval: a dataset whose images the model cannot take names the model and the dataset.
expect_refused(1 "onnx: onnx: input \\[[0-9]+, 1, 28, 28\\] does not match \\[n, 3, 16, 16\\] \\(the images of fashion-mnist/test\\)"
               eval --model ${REPO}/tests/data/onnx/mobilenet.onnx)
# An ONNX teacher's architecture is not one of ours: 'same' cannot name the student.
expect_refused(2 "--attack label-only:same: .*onnx is an ONNX network, not one of ours: name the student, label-only:ARCH"
               postprocess --model ${onnx} --attack label-only:same --epochs 1 --limit 64
               --out ${WORK}/x.h5)
# An ONNX teacher is a network: a label-only extraction of it trains (one small epoch).
expect_exit(0 --device cpu postprocess --model ${onnx} --attack label-only:lenet5 --epochs 1
            --limit 64 --out ${WORK}/x.h5)
file(REMOVE ${WORK}/x.h5)
# zoo: an ONNX target is named as such (it said "--negatives: unknown architecture 'same'").
expect_refused(2 "--target .*onnx is an ONNX model" zoo --target ${onnx} --out ${WORK}/zoo
               --positives ftll --negatives same:1 --epochs 1 --limit 64)
if(EXISTS ${WORK}/zoo OR EXISTS ${WORK}/x.h5 OR EXISTS ${WORK}/x.onnx)
  message(FATAL_ERROR "a refused command left an output behind")
endif()
