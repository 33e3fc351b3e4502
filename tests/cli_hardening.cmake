# CLI hardening (issue 11, items 2 and 4). An output that is one of the command's inputs
# (same path, symlink, hard link) is refused with exit 2 and the input keeps its bytes; an
# output that cannot be written is refused before any work (no training epoch, no forest
# fit); a bad option value is exit 2 with one short line naming the option.
# Nothing here measures time: "before any work" is read from the progress lines.
# Run by ctest as: cmake -DIPGUARD=<path> -DREPO=<source dir> -P cli_hardening.cmake
set(WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_hardening_work)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)

# Exit 2, and the first line of stderr matches `pattern` (which names the option or the
# path) and is short once the work folder's own long path is counted as one character.
function(expect_usage pattern)
  expect_exit(2 ${ARGN})
  string(FIND "${last_err}" "\n" eol)  # -1: no newline, the whole text
  string(SUBSTRING "${last_err}" 0 ${eol} first)
  string(REPLACE "${WORK}" "W" short "${first}")
  string(LENGTH "${short}" len)
  if(NOT first MATCHES "${pattern}" OR len GREATER 160)  # "ipguard COMMAND: " included
    message(FATAL_ERROR "ipguard ${ARGN}: expected one short line matching '${pattern}', got "
                        "(${len} chars):\n${last_err}")
  endif()
  set(last_err "${last_err}" PARENT_SCOPE)
  set(last_out "${last_out}" PARENT_SCOPE)
endfunction()

# Nothing of the work started: no training, epoch, forest or extraction progress.
function(expect_no_work what)
  if(last_err MATCHES "epoch|training |tree [0-9]|points [0-9]" OR last_out MATCHES "saved ")
    message(FATAL_ERROR "${what}: the work started before the refusal:\n${last_err}")
  endif()
endfunction()

function(expect_unchanged file hash)
  file(SHA256 ${file} now)
  if(NOT now STREQUAL hash)
    message(FATAL_ERROR "${file} was modified by a refused command")
  endif()
endfunction()

# ---- item 2: an output that is an input ----
file(COPY_FILE ${REPO}/weights/lenet5-fashion-mnist.h5 ${WORK}/m.h5)
file(COPY_FILE ${REPO}/tests/data/keras/lenet5_save_weights_fixed.h5 ${WORK}/k.h5)
file(SHA256 ${WORK}/m.h5 m_hash)
file(SHA256 ${WORK}/k.h5 k_hash)
file(CREATE_LINK ${WORK}/m.h5 ${WORK}/m_sym.h5 SYMBOLIC)
file(CREATE_LINK ${WORK}/m.h5 ${WORK}/m_hard.h5)
file(CREATE_LINK ${WORK}/k.h5 ${WORK}/k_sym.h5 SYMBOLIC)
file(CREATE_LINK ${WORK}/k.h5 ${WORK}/k_hard.h5)
foreach(out m.h5 m_sym.h5 m_hard.h5 ./m.h5)
  expect_usage("--out .*would overwrite .*m\\.h5 \\(--model\\)" --device cpu extract
               --model ${WORK}/m.h5 --n 2 --iters 5 --init random --out ${WORK}/${out})
  expect_no_work("extract --out ${out}")
  expect_unchanged(${WORK}/m.h5 ${m_hash})
  expect_usage("--out .*would overwrite .*m\\.h5 \\(--model\\)" --device cpu postprocess
               --model ${WORK}/m.h5 --attack ftll --epochs 1 --limit 64 --out ${WORK}/${out})
  expect_no_work("postprocess --out ${out}")
  expect_unchanged(${WORK}/m.h5 ${m_hash})
  expect_usage("--out .*would overwrite .*m\\.h5 \\(--init\\)" --device cpu train
               --init ${WORK}/m.h5 --epochs 1 --limit 64 --out ${WORK}/${out})
  expect_no_work("train --init --out ${out}")
  expect_unchanged(${WORK}/m.h5 ${m_hash})
endforeach()
foreach(out k.h5 k_sym.h5 k_hard.h5)
  expect_usage("--out .*would overwrite .*k\\.h5 \\(--keras\\)" convert --keras ${WORK}/k.h5
               --arch lenet5 --out ${WORK}/${out})
  expect_unchanged(${WORK}/k.h5 ${k_hash})
endforeach()
# experiment: its results folder must not be a model of the zoo, nor the zoo itself.
file(MAKE_DIRECTORY ${WORK}/zoo/positive ${WORK}/zoo/negative)
file(COPY_FILE ${WORK}/m.h5 ${WORK}/zoo/target.h5)
file(COPY_FILE ${WORK}/m.h5 ${WORK}/zoo/positive/p.h5)
file(COPY_FILE ${REPO}/weights/resnet20-fashion-mnist.h5 ${WORK}/zoo/negative/n.h5)
file(SHA256 ${WORK}/zoo/negative/n.h5 n_hash)
expect_usage("--out .*n\\.h5 is a file, not a folder" --device cpu experiment
             --zoo ${WORK}/zoo --methods random --n 2 --modes RR --out ${WORK}/zoo/negative/n.h5)
expect_unchanged(${WORK}/zoo/negative/n.h5 ${n_hash})
expect_usage("--out .*zoo: not empty, and not a results folder \\(no results\\.json\\)" --device cpu
             experiment --zoo ${WORK}/zoo --methods random --n 2 --modes RR --out ${WORK}/zoo)
expect_usage("--resume needs --out" --device cpu experiment --zoo ${WORK}/zoo --methods random
             --n 2 --modes RR --resume)
# An input inside OUT/fingerprints (whose .h5 files no setting wrote are removed as stale):
# refused before any work, the file kept.
file(MAKE_DIRECTORY ${WORK}/res/fingerprints)
file(COPY_FILE ${WORK}/m.h5 ${WORK}/res/fingerprints/d.h5)
expect_usage("--data .*res/fingerprints/d\\.h5 lies in .*res/fingerprints, whose \\.h5 files"
             --device cpu experiment --zoo ${WORK}/zoo --methods random --n 2 --modes TR
             --data h5:${WORK}/res/fingerprints/d.h5 --out ${WORK}/res --resume)
expect_unchanged(${WORK}/res/fingerprints/d.h5 ${m_hash})
expect_usage("--zoo .*res/fingerprints lies in .*res/fingerprints" --device cpu experiment
             --zoo ${WORK}/res/fingerprints --methods random --n 2 --modes RR --out ${WORK}/res/)
# A folder another run is writing (flock(1) holds it here, as a running ipguard would):
# refused before any work, nothing written into it.
foreach(kind results zoo)
  file(MAKE_DIRECTORY ${WORK}/busy-${kind})
  if(kind STREQUAL "results")
    set(cmd experiment --zoo ${WORK}/zoo --methods random --n 2 --modes RR)
  else()
    set(cmd zoo --target ${WORK}/m.h5 --positives ftll --negatives rf:1 --epochs 1 --limit 64)
  endif()
  execute_process(COMMAND flock -n ${WORK}/busy-${kind} ${IPGUARD} --device cpu ${cmd}
                          --out ${WORK}/busy-${kind}
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  file(GLOB_RECURSE written ${WORK}/busy-${kind}/*)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "^ipguard [a-z]+: --out .*: another ipguard process is writing"
     OR written)
    message(FATAL_ERROR "${kind} into a locked folder: exit ${rc}, wrote '${written}':\n${err}")
  endif()
endforeach()
# zoo: a model it would train must not land on the target (a zoo made over an old one).
file(SHA256 ${WORK}/zoo/positive/p.h5 p_hash)
file(COPY_FILE ${WORK}/m.h5 ${WORK}/zoo/positive/ftll.h5)
file(SHA256 ${WORK}/zoo/positive/ftll.h5 ftll_hash)
expect_usage("--out .*would overwrite .*ftll\\.h5 \\(--target\\)" --device cpu zoo
             --target ${WORK}/zoo/positive/ftll.h5 --out ${WORK}/zoo --positives ftll
             --negatives rf:1 --epochs 1 --limit 64)
expect_no_work("zoo over its own target")
expect_unchanged(${WORK}/zoo/positive/ftll.h5 ${ftll_hash})
# A file of a folder dataset (NAME:DIR): refused as --data h5:FILE is, before any loading
# (the files here are stand-ins: the check does not read them).
file(MAKE_DIRECTORY ${WORK}/fm ${WORK}/cf)
foreach(f train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte
          t10k-labels-idx1-ubyte)
  file(WRITE ${WORK}/fm/${f} "idx")
endforeach()
file(WRITE ${WORK}/cf/data_batch_3.bin "batch")
file(SHA256 ${WORK}/fm/train-images-idx3-ubyte.gz fm_hash)
foreach(spec fashion-mnist mnist)
  expect_usage("--out .*fm/train-images-idx3-ubyte\\.gz would overwrite .*fm/train-images-idx3-ubyte\\.gz \\(--data\\)"
               --device cpu extract --model ${WORK}/m.h5 --data ${spec}:${WORK}/fm --n 5
               --out ${WORK}/fm/train-images-idx3-ubyte.gz)
  expect_no_work("extract onto a file of --data ${spec}:DIR")
  expect_unchanged(${WORK}/fm/train-images-idx3-ubyte.gz ${fm_hash})
endforeach()
expect_usage("--out .*fm/t10k-labels-idx1-ubyte would overwrite .*fm/t10k-labels-idx1-ubyte \\(--data\\)"
             --device cpu train --arch lenet5 --data mnist:${WORK}/fm --epochs 1 --limit 64
             --out ${WORK}/fm/t10k-labels-idx1-ubyte)
expect_no_work("train onto a file of --data mnist:DIR")
expect_usage("--out .*fm/train-labels-idx1-ubyte\\.gz would overwrite .*\\(--data\\)"
             --device cpu postprocess --model ${WORK}/m.h5 --attack ftll --epochs 1 --limit 64
             --data fashion-mnist:${WORK}/fm --out ${WORK}/fm/train-labels-idx1-ubyte.gz)
expect_no_work("postprocess onto a file of --data fashion-mnist:DIR")
expect_usage("--out .*cf/data_batch_3\\.bin would overwrite .*cf/data_batch_3\\.bin \\(--data\\)"
             --device cpu train --arch rf --trees 1 --limit 100 --data cifar10:${WORK}/cf
             --out ${WORK}/cf/data_batch_3.bin)
expect_no_work("forest fit onto a file of --data cifar10:DIR")

# ---- item 2: an output that cannot be written, refused before the work ----
expect_usage("--out .*missing/x\\.h5: folder .*missing does not exist" --device cpu train
             --arch lenet5 --epochs 1 --limit 64 --out ${WORK}/missing/x.h5)
expect_no_work("train into a missing folder")
expect_usage("--out .* is a folder" --device cpu train --arch lenet5 --epochs 1 --limit 64
             --out ${WORK}/zoo)
expect_no_work("train onto a folder")
expect_usage("--out .*missing/f\\.h5: folder .*missing does not exist" --device cpu train
             --arch rf --trees 1 --limit 100 --out ${WORK}/missing/f.h5)
expect_no_work("forest fit into a missing folder")
expect_usage("--out .* is a folder" --device cpu train --arch rf --trees 1 --limit 100
             --out ${WORK}/zoo)
expect_no_work("forest fit onto a folder")
# /sys takes no new files, even for root, whose access() check passes there: refused
# before the work, not after it by libhdf5.
if(IS_DIRECTORY /sys)
  expect_usage("--out /sys/ipguard-test\\.h5: folder /sys is not writable" --device cpu extract
               --model ${WORK}/m.h5 --n 2 --iters 5 --init random --out /sys/ipguard-test.h5)
  expect_no_work("extract into /sys")
  # A results folder, and a report, in /sys: refused before the zoo is read or the suspect
  # asked (the command would leave ${WORK}/asked), as zoo and extract are.
  expect_usage("--out /sys/ipguard-test: cannot create it in /sys \\(not a writable folder\\)"
               --device cpu experiment --zoo ${WORK}/zoo --methods random --n 2 --modes RR
               --out /sys/ipguard-test)
  expect_exit(0 --device cpu extract --model ${WORK}/m.h5 --n 2 --iters 5 --init random
              --out ${WORK}/fp-sys.h5)
  foreach(report /sys/ipguard-test /proc/ipguard-test)
    expect_usage("--report ${report}: cannot create it in /[a-z]+"
                 --device cpu verify --fingerprint ${WORK}/fp-sys.h5
                 --suspect-cmd "touch ${WORK}/asked && echo 0 && echo 0" --report ${report})
    if(EXISTS ${WORK}/asked)
      message(FATAL_ERROR "verify --report ${report}: the suspect was asked before the refusal")
    endif()
  endforeach()
endif()
expect_usage("--out .*missing/fp\\.h5: folder .*does not exist" --device cpu extract
             --model ${WORK}/m.h5 --n 2 --iters 5 --init random --out ${WORK}/missing/fp.h5)
expect_no_work("extract into a missing folder")
# A file where the folder would be, or a name ending in /: said as such.
expect_usage("--out .*m\\.h5/fp\\.h5: .*m\\.h5 is a file, not a folder" --device cpu extract
             --model ${WORK}/m.h5 --n 2 --iters 5 --init random --out ${WORK}/m.h5/fp.h5)
expect_usage("--out .*fp\\.h5/ ends in /, a folder's name; give a file name" --device cpu extract
             --model ${WORK}/m.h5 --n 2 --iters 5 --init random --out ${WORK}/fp.h5/)
expect_no_work("extract into a file's name as a folder")
expect_usage("--out .* is a folder" convert --keras ${WORK}/k.h5 --arch lenet5 --out ${WORK}/zoo)
expect_usage("--out .*m\\.h5 is a file, not a folder" --device cpu zoo --target ${WORK}/m.h5
             --out ${WORK}/m.h5 --positives ftll --negatives rf:1 --epochs 1 --limit 64)
expect_no_work("zoo into a file")
# An unwritable folder. root's access(W_OK) succeeds on any folder: as root the case runs
# as the user nobody (setpriv) where nobody can reach the binary and the work folder, and is
# skipped, visibly, where it cannot.
file(MAKE_DIRECTORY ${WORK}/ro)
file(CHMOD ${WORK}/ro DIRECTORY_PERMISSIONS OWNER_READ OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
     WORLD_READ WORLD_EXECUTE)
set(run_ro TRUE)
set(saved_ipguard ${IPGUARD})
execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
if(uid STREQUAL "0")
  set(run_ro FALSE)
  find_program(SETPRIV setpriv)
  if(SETPRIV)
    set(as_nobody ${SETPRIV} --reuid=65534 --regid=65534 --clear-groups)
    execute_process(COMMAND ${as_nobody} test -x ${IPGUARD} -a -x ${WORK}/ro
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(run_ro TRUE)
      set(IPGUARD ${as_nobody} ${IPGUARD})
    endif()
  endif()
  if(NOT run_ro)
    message(NOTICE "cli_hardening: SKIPPED the unwritable-folder case (running as root, for "
                   "whom every folder is writable, and nobody cannot run ${IPGUARD})")
  endif()
endif()
if(run_ro)
  expect_usage("--out .*ro/x\\.h5: folder .*ro is not writable" --device cpu train --arch lenet5
               --epochs 1 --limit 64 --out ${WORK}/ro/x.h5)
  expect_no_work("train into an unwritable folder")
  expect_usage("--out .*ro/f\\.h5: folder .*ro is not writable" --device cpu train --arch rf
               --trees 1 --limit 100 --out ${WORK}/ro/f.h5)
  expect_no_work("forest fit into an unwritable folder")
  expect_usage("--out .*ro/z: cannot create it in .*ro" --device cpu zoo --target ${WORK}/m.h5
               --out ${WORK}/ro/z --positives ftll --negatives rf:1 --epochs 1 --limit 64)
  expect_no_work("zoo in an unwritable folder")
endif()
set(IPGUARD ${saved_ipguard})
file(CHMOD ${WORK}/ro DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)

# ---- item 4: option values ----
expect_usage("^ipguard [a-z]+: --threads must be between 0 and [0-9]+ \\(0: the idle cores\\)"
             --threads 100000 info ${WORK}/m.h5)
expect_usage("^ipguard [a-z]+: --threads must be between 0 and [0-9]+ \\(0: the idle cores\\)"
             --threads -1 info ${WORK}/m.h5)
expect_usage("^ipguard [a-z]+: --threads must be a whole number" --threads 1.5 info ${WORK}/m.h5)
expect_exit(0 --threads 1 info ${WORK}/m.h5)   # in range: accepted
expect_exit(0 --threads 0 info ${WORK}/m.h5)
expect_usage("^ipguard [a-z]+: --n must be at least 1" extract --model ${WORK}/m.h5 --out ${WORK}/x.h5 --n 0)
expect_usage("^ipguard [a-z]+: --batch must be at least 0" extract --model ${WORK}/m.h5 --out ${WORK}/x.h5
             --batch -1)   # 0: automatic (extract.h auto_batch)
expect_usage("^ipguard [a-z]+: --batch must be at least 1" train --arch lenet5 --batch 0 --out ${WORK}/x.h5)
expect_usage("^ipguard [a-z]+: --batch must be at least 1" eval --model ${WORK}/m.h5 --batch 0)
expect_usage("^ipguard [a-z]+: --epochs must be at least 1" postprocess --model ${WORK}/m.h5 --attack ftll
             --epochs 0 --out ${WORK}/x.h5)
expect_usage("^ipguard [a-z]+: --lr must be positive" train --arch lenet5 --lr 0 --out ${WORK}/x.h5)
expect_usage("^ipguard [a-z]+: --n must be a number" extract --model ${WORK}/m.h5 --out ${WORK}/x.h5 --n abc)
# Whole numbers beyond what CLI11 reads: said by the tool, not CLI11's "Could not convert",
# and a seed past 2^64 - 1 is refused rather than saturated.
expect_usage("^ipguard [a-z]+: --n must be a whole number written in digits, not 1e12"
             extract --model ${WORK}/m.h5 --out ${WORK}/x.h5 --n 1e12)
expect_usage("^ipguard [a-z]+: --n must be at most 9223372036854775807"
             extract --model ${WORK}/m.h5 --out ${WORK}/x.h5 --n 99999999999999999999)
expect_usage("^ipguard [a-z]+: --seed must be at most 18446744073709551615"
             --seed 18446744073709551616 info ${WORK}/m.h5)
expect_exit(0 --seed 18446744073709551615 info ${WORK}/m.h5)
# Under --json an error is also a JSON object on stdout, for scripts that read stdout.
foreach(case "1;info;${WORK}/missing.h5" "2;extract;--model;${WORK}/m.h5;--out;${WORK}/x.h5;--n;0"
        "2;nosuch")
  list(POP_FRONT case code)
  expect_exit(${code} --json ${case})
  string(JSON said ERROR_VARIABLE bad GET "${last_out}" error)
  string(JSON exit_code ERROR_VARIABLE bad2 GET "${last_out}" exit_code)
  if(bad OR bad2 OR NOT exit_code EQUAL code OR NOT last_err MATCHES "^ipguard")
    message(FATAL_ERROR "ipguard --json ${case}: no JSON error on stdout:\n${last_out}\n${last_err}")
  endif()
  string(STRIP "${last_err}" err_line)
  if(NOT said STREQUAL err_line)
    message(FATAL_ERROR "ipguard --json ${case}: stdout says '${said}', stderr '${err_line}'")
  endif()
endforeach()
# --help after an unknown subcommand printed the main help and exit 0.
expect_usage("^ipguard: unknown subcommand 'nosuch'" --device cpu nosuch --help)
# Arguments that are not UTF-8 (file names go into JSON): refused before any work.
string(ASCII 255 ff)
expect_usage("^ipguard: argument 2 \\('x\\?\\.h5'\\) is not valid UTF-8" info "x${ff}.h5")
expect_usage("^ipguard [a-z]+: --k must be at least 0" extract --model ${WORK}/m.h5 --out ${WORK}/x.h5 --k -1)
expect_usage("^ipguard [a-z]+: --eps must be in \\(0, 1\\]" extract --model ${WORK}/m.h5 --out ${WORK}/x.h5
             --eps 2)
expect_usage("^ipguard [a-z]+: --grid ipguard k must be at least 0" experiment --zoo ${WORK}/zoo
             --grid "ipguard:k=1,-1")
expect_usage("^ipguard [a-z]+: --grid fgsm eps must be in \\(0, 1\\]" experiment --zoo ${WORK}/zoo
             --grid "random fgsm:eps=0.1,2")
expect_usage("^ipguard [a-z]+: --grid: cwl2 has no option 'eps'" experiment --zoo ${WORK}/zoo --grid "cwl2:eps=1")
expect_usage("^ipguard [a-z]+: --grid: ipguard k given twice" experiment --zoo ${WORK}/zoo
             --grid "ipguard:k=1:k=3")
# --out "" (an unset variable, say) is refused, not a run without a folder. Run directly: an
# empty argument does not survive a function's ARGN.
execute_process(COMMAND ${IPGUARD} experiment --zoo ${WORK}/zoo --grid random --out ""
                RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(NOT rc EQUAL 2 OR NOT err MATCHES "^ipguard experiment: --out needs a folder name")
  message(FATAL_ERROR "experiment --out \"\": exit ${rc}, ${err}")
endif()
# The keys each method takes in --grid come from one table (reads_option, shared with
# extract's refusals): every key listed is accepted (all of them, then random's unknown key
# ends the parse before any work), and an unknown key lists exactly the method's own.
expect_usage("--grid: random has no option 'bogus' \\(its options: none\\)" experiment
             --zoo ${WORK}/zoo --grid "cwl2:k=0:iters=2:steps=1:lr=0.1:c0=0.01 igsm:eps=0.1:iters=2:alpha=0.01 ipguard:k=1:iters=2:lr=0.1 fgsm:eps=0.1 random:bogus=1")
foreach(case "ipguard@k, iters, lr" "cwl2@k, iters, steps, lr, c0" "fgsm@eps"
             "igsm@eps, iters, alpha")
  string(REPLACE "@" ";" parts "${case}")
  list(GET parts 0 method)
  list(GET parts 1 keys)
  expect_usage("--grid: ${method} has no option 'alphas' \\(its options: ${keys}\\) \\(see --help\\)$"
               experiment --zoo ${WORK}/zoo --grid "${method}:alphas=1")
endforeach()
expect_usage("^ipguard [a-z]+: --modes: unknown mode 'XX'" experiment --zoo ${WORK}/zoo --modes TL,XX)
expect_usage("^ipguard [a-z]+: --converged must be paper, until or both" experiment --zoo ${WORK}/zoo
             --converged sometimes)
expect_usage("--converged excludes --until-converged" experiment --zoo ${WORK}/zoo
             --converged paper --until-converged)
expect_usage("--grid excludes --methods" experiment --zoo ${WORK}/zoo --grid random
             --methods random)
expect_usage("^ipguard [a-z]+: --threshold must be between 0 and 1" verify --fingerprint ${WORK}/m.h5
             --suspect ${WORK}/m.h5 --threshold 2)
expect_usage("^ipguard [a-z]+: --seed must be at least 0" --seed -1 info ${WORK}/m.h5)
expect_usage("--methods: unknown method 'nosuch'" experiment --zoo ${WORK}/zoo
             --methods nosuch)
expect_usage("--attack wp:2" postprocess --model ${WORK}/m.h5 --attack wp:2 --out ${WORK}/x.h5)
expect_usage("--negatives: unknown architecture 'foo'" --device cpu zoo --target ${WORK}/m.h5
             --out ${WORK}/zoo4 --positives ftll --negatives foo:1 --epochs 1 --limit 64)
expect_no_work("zoo with an unknown negative")
expect_usage("--device gpu0: unknown device" --device gpu0 doctor)
# An option given twice is named in the project's words, not CLI11's "At Most 1 required".
expect_usage("^ipguard extract: --n is given 2 times; give it once" --device cpu extract
             --model ${WORK}/m.h5 --n 2 --n 3 --init random --out ${WORK}/x.h5)
# --json --version is JSON (name, version, commit), --version alone one line.
expect_exit(0 --json --version)
string(JSON version_name ERROR_VARIABLE json_err GET "${last_out}" name)
string(JSON version_text ERROR_VARIABLE json_err2 GET "${last_out}" version)
if(json_err OR json_err2 OR NOT version_name STREQUAL "ipguard" OR version_text STREQUAL "")
  message(FATAL_ERROR "--json --version is not the JSON record:\n${last_out}")
endif()
expect_exit(0 --version)
if(NOT last_out MATCHES "^ipguard ${version_text}\n?$")
  message(FATAL_ERROR "--version: expected 'ipguard ${version_text}', got:\n${last_out}")
endif()
expect_usage("--data cifar10: give the folder" train --arch lenet5 --data cifar10
             --out ${WORK}/x.h5)
# An unknown architecture is refused while parsing, and the list names the forest too.
expect_usage("--arch: unknown architecture 'foo' \\(.*lenet5.*, rf\\)" --device cpu
             train --arch foo --epochs 1 --limit 64 --out ${WORK}/x.h5)
expect_no_work("train --arch foo")
expect_usage("--arch comes from the --init file" --device cpu train --init ${WORK}/m.h5
             --arch rf --limit 64 --out ${WORK}/x.h5)
expect_no_work("train --init with --arch")
# An option the chosen method or model kind does not read is refused, not ignored.
foreach(case "fgsm;--k;5" "fgsm;--iters;5" "random;--target;random" "random;--eps;0.1"
             "ipguard;--alpha;0.1" "igsm;--c0;0.5" "cwl2;--eps;0.1" "ipguard;--binary-steps;3")
  list(GET case 0 method)
  list(GET case 1 flag)
  list(GET case 2 value)
  expect_usage("${flag} does not apply to --method ${method}" --device cpu extract
               --model ${WORK}/m.h5 --method ${method} --init random --n 2 ${flag} ${value}
               --out ${WORK}/x.h5)
  expect_no_work("extract --method ${method} ${flag}")
endforeach()
expect_usage("--data does not apply with --init random" --device cpu extract --model ${WORK}/m.h5
             --init random --data fashion-mnist --n 2 --out ${WORK}/x.h5)
expect_usage("--lr does not apply to --arch rf" --device cpu train --arch rf --lr 0.5
             --limit 64 --out ${WORK}/x.h5)
expect_no_work("train --arch rf --lr")
expect_usage("--epochs does not apply to --arch rf" --device cpu train --arch rf --epochs 3
             --limit 64 --out ${WORK}/x.h5)
expect_usage("--trees does not apply to a network \\(--arch lenet5\\)" --device cpu train
             --arch lenet5 --trees 3 --limit 64 --out ${WORK}/x.h5)
expect_no_work("train --arch lenet5 --trees")
expect_usage("--reinit-last needs --init FILE" --device cpu train --arch lenet5 --reinit-last
             --epochs 1 --limit 64 --out ${WORK}/x.h5)
expect_no_work("train --reinit-last without --init")
# The same options where they apply still run (a method's own options are accepted).
expect_exit(0 --device cpu extract --model ${WORK}/m.h5 --method fgsm --init random --n 2
            --eps 0.1 --target random --out ${WORK}/ok_fgsm.h5)
expect_exit(0 --device cpu extract --model ${WORK}/m.h5 --method cwl2 --init random --n 2
            --k 0.5 --lr 0.01 --iters 3 --binary-steps 1 --c0 0.1 --out ${WORK}/ok_cwl2.h5)
if(EXISTS ${WORK}/x.h5 OR EXISTS ${WORK}/missing OR EXISTS ${WORK}/zoo4)
  message(FATAL_ERROR "a refused command left an output behind")
endif()

# ---- convert --upgrade: a version-1 file re-saved at format 2, sealed ----
# tests/data/models/lenet5.h5 and tests/fuzz/corpus/raw/fingerprint.h5 are version-1 files
# (no integrity digest): they load after one "notice:" line, their upgraded copies without.
file(COPY_FILE ${REPO}/tests/data/models/lenet5.h5 ${WORK}/v1.h5)
file(SHA256 ${WORK}/v1.h5 v1_hash)
expect_exit(0 convert --upgrade ${WORK}/v1.h5 --out ${WORK}/v2.h5)
if(NOT last_out MATCHES "upgraded .*v1\\.h5 -> .*v2\\.h5 \\(format 2\\)")
  message(FATAL_ERROR "convert --upgrade: unexpected output:\n${last_out}\n${last_err}")
endif()
expect_unchanged(${WORK}/v1.h5 ${v1_hash})
expect_exit(0 info ${WORK}/v1.h5)
if(NOT last_err MATCHES "notice: .*v1\\.h5 has no integrity digest \\(format 1\\).*convert --upgrade")
  message(FATAL_ERROR "info on a version-1 file: no notice line:\n${last_err}")
endif()
expect_exit(0 info ${WORK}/v2.h5)
if(last_err MATCHES "notice:" OR last_out MATCHES "notice:")
  message(FATAL_ERROR "info on an upgraded file still gives a notice:\n${last_err}")
endif()
# Upgrading an upgraded file gives the same bytes (no timestamps are written).
expect_exit(0 convert --upgrade ${WORK}/v2.h5 --out ${WORK}/v2b.h5)
file(SHA256 ${WORK}/v2.h5 v2_hash)
expect_unchanged(${WORK}/v2b.h5 ${v2_hash})
# The output checks of every writing command, and conflicts with the Keras import.
foreach(out v1.h5 ./v1.h5)
  expect_usage("--out .*would overwrite .*v1\\.h5 \\(--upgrade\\)" convert --upgrade
               ${WORK}/v1.h5 --out ${WORK}/${out})
  expect_unchanged(${WORK}/v1.h5 ${v1_hash})
endforeach()
expect_usage("--out .*missing/u\\.h5: folder .*missing does not exist" convert --upgrade
             ${WORK}/v1.h5 --out ${WORK}/missing/u.h5)
expect_usage("--upgrade excludes --keras" convert --upgrade ${WORK}/v1.h5 --keras ${WORK}/k.h5
             --arch lenet5 --out ${WORK}/u.h5)
expect_usage("--upgrade excludes --arch" convert --upgrade ${WORK}/v1.h5 --arch lenet5
             --out ${WORK}/u.h5)
expect_usage("give --keras FILE --arch NAME, --upgrade FILE or --to-onnx FILE" convert --out ${WORK}/u.h5)
if(EXISTS ${WORK}/u.h5 OR EXISTS ${WORK}/missing)
  message(FATAL_ERROR "a refused convert --upgrade left an output behind")
endif()
# A version-1 fingerprint (verify fails on it afterwards: its 2x2 points do not fit LeNet-5;
# the notice comes before that).
file(COPY_FILE ${REPO}/tests/fuzz/corpus/raw/fingerprint.h5 ${WORK}/fp1.h5)
expect_exit(0 convert --upgrade ${WORK}/fp1.h5 --out ${WORK}/fp2.h5)
if(NOT last_out MATCHES "upgraded .*fp1\\.h5 -> .*fp2\\.h5 \\(format 2\\)")
  message(FATAL_ERROR "convert --upgrade on a fingerprint: unexpected output:\n${last_out}")
endif()
expect_exit(1 --device cpu verify --fingerprint ${WORK}/fp1.h5 --suspect ${WORK}/v2.h5)
if(NOT last_err MATCHES "notice: .*fp1\\.h5 has no integrity digest")
  message(FATAL_ERROR "a version-1 fingerprint: no notice line:\n${last_err}")
endif()
expect_exit(1 --device cpu verify --fingerprint ${WORK}/fp2.h5 --suspect ${WORK}/v2.h5)
if(last_err MATCHES "notice:")
  message(FATAL_ERROR "an upgraded fingerprint still gives a notice:\n${last_err}")
endif()
# --evaluation takes experiment's results.json: a folder there is said as such.
expect_exit(1 --device cpu verify --fingerprint ${WORK}/fp2.h5 --suspect ${WORK}/v2.h5
            --report ${WORK}/ev-report --evaluation ${WORK}/zoo)
if(NOT last_err MATCHES "--evaluation .*zoo is a folder; give its results\\.json")
  message(FATAL_ERROR "--evaluation of a folder: unexpected message:\n${last_err}")
endif()
# A file name carrying terminal control characters (ESC starting a colour sequence, a
# carriage return) is shown escaped in the error line, not sent to the terminal; --json
# escapes it as JSON does.
string(ASCII 27 esc)
string(ASCII 13 cr)
set(odd "${WORK}/a${esc}[31mred${cr}b.h5")
expect_exit(1 --device cpu info "${odd}")
string(FIND "${last_err}" "${esc}" raw_esc)
string(FIND "${last_err}" "${cr}" raw_cr)
if(NOT raw_esc EQUAL -1 OR NOT raw_cr EQUAL -1 OR NOT last_err MATCHES "a\\\\x1b\\[31mred\\\\x0db\\.h5: no such file")
  message(FATAL_ERROR "a control character in a path reached stderr raw:\n${last_err}")
endif()
# (The path goes last: its unbalanced '[' keeps CMake from splitting the list after it.)
expect_exit(1 --device cpu --json info "${odd}")
if(NOT last_out MATCHES "a\\\\u001b\\[31mred\\\\rb\\.h5: no such file")
  message(FATAL_ERROR "--json: the error does not escape the path:\n${last_out}")
endif()
