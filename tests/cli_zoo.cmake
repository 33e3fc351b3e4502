# `ipguard zoo` end to end (tiny: LeNet-5 target, 1 epoch on 256 Fashion-MNIST images):
# refusals before any work (exit 2), duplicates reported and counted once, each manifest
# command making the very file it lists, a build killed mid-run and resumed to the same
# manifest as an uninterrupted one, and the manifest's checksums.
# Run by ctest as: cmake -DIPGUARD=<path> -DREPO=<source dir> -P cli_zoo.cmake
set(WORK ${CMAKE_CURRENT_BINARY_DIR}/cli_zoo_work)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)
set(TARGET ${REPO}/weights/lenet5-fashion-mnist.h5)
set(TINY --epochs 1 --limit 256 --batch 64 --trees 2)

function(expect_no_work what)
  if(last_err MATCHES "epoch|training |tree [0-9]|\\[1/" OR EXISTS ${WORK}/z)
    message(FATAL_ERROR "${what}: the work started before the refusal:\n${last_err}")
  endif()
endfunction()
function(expect_err pattern what)
  if(NOT last_err MATCHES "${pattern}")
    message(FATAL_ERROR "${what}: stderr does not match '${pattern}':\n${last_err}")
  endif()
endfunction()

# ---- bad input: exit 2, a clear line, nothing trained or written ----
file(WRITE ${WORK}/text.h5 "not a model")
expect_exit(2 --device cpu zoo --target ${WORK}/text.h5 --out ${WORK}/z ${TINY})
expect_err("--target .*text\\.h5 is not a network file" "a text target")
expect_no_work("a text target")
expect_exit(0 --device cpu --seed 1 train --arch rf --trees 1 --limit 100 --out ${WORK}/rf.h5)
expect_exit(2 --device cpu zoo --target ${WORK}/rf.h5 --out ${WORK}/z ${TINY})
expect_err("rf\\.h5 is a random forest; a zoo's target is a network" "a forest target")
expect_no_work("a forest target")
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/z --positives ftll,xx ${TINY})
expect_err("--positives xx: unknown attack" "an unknown attack")
expect_no_work("an unknown attack")
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/z --positives wp:sweep,wp:0.2
            ${TINY})
expect_err("wp:0\\.2 and wp:sweep both" "a value of a sweep")
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/z --adaptive steal:same ${TINY})
expect_err("--adaptive steal:same: unknown extraction" "an unknown extraction")
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/text.h5/z ${TINY})
expect_err("--out .*cannot create it in" "a folder inside a file")
expect_no_work("a folder inside a file")
# No positives or no negatives: experiment could not use the zoo.
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/z --positives=, ${TINY})
expect_err("^ipguard zoo: --positives: give at least one attack" "no positives")
expect_no_work("no positives")
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/z --negatives=, ${TINY})
expect_err("^ipguard zoo: --negatives: give at least one ARCH:COUNT" "no negatives")
expect_no_work("no negatives")
# A zoo put together by hand (no manifest.json): its files are not written over.
file(MAKE_DIRECTORY ${WORK}/hand/positive)
file(COPY_FILE ${TARGET} ${WORK}/hand/target.h5)
file(WRITE ${WORK}/hand/positive/ftll.h5 "hand-made")
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/hand --positives ftll
            --negatives rf:1 ${TINY})
expect_err("--out .*hand already holds target\\.h5, positive/ftll\\.h5, which the zoo would write over, and no manifest\\.json: choose an empty folder"
           "a hand-built zoo")
expect_no_work("a hand-built zoo")
file(READ ${WORK}/hand/positive/ftll.h5 hand)
if(NOT hand STREQUAL "hand-made" OR EXISTS ${WORK}/hand/manifest.json)
  message(FATAL_ERROR "the hand-built zoo was written to")
endif()
# --resume takes such files for an interrupted build's, but only when they can be: a file
# that is not a model, or a target.h5 that is another model than --target, is refused.
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/hand --positives ftll
            --negatives rf:1 ${TINY} --resume)
expect_err("--resume: .*hand/positive/ftll\\.h5: .*; not a model the zoo made.*move it away"
           "--resume over a file that is not a model")
expect_no_work("--resume over a file that is not a model")
file(REMOVE ${WORK}/hand/positive/ftll.h5)
file(COPY_FILE ${REPO}/weights/resnet20-fashion-mnist.h5 ${WORK}/hand/target.h5)
file(SHA256 ${WORK}/hand/target.h5 other_target)
expect_exit(2 --device cpu zoo --target ${TARGET} --out ${WORK}/hand --positives ftll
            --negatives rf:1 ${TINY} --resume)
expect_err("--resume: .*hand/target\\.h5 is another model than --target .*not an interrupted build"
           "--resume over another target")
expect_no_work("--resume over another target")
file(SHA256 ${WORK}/hand/target.h5 now_target)
if(NOT now_target STREQUAL other_target)
  message(FATAL_ERROR "--resume wrote over a target.h5 that was another model")
endif()

# ---- a zoo: progress, duplicates, the summary and --json ----
set(PLAN --positives ftll,fp:0.0625,fp:0.1 --negatives rf:1 --adaptive label-only:same)
expect_exit(0 --device cpu --threads 1 --seed 3 zoo --target ${TARGET} --out ${WORK}/z ${PLAN}
            ${TINY})
expect_err("\\[1/<=[0-9]+\\] positive/ftll\\.h5: ftll of the target" "progress per model")
expect_err("positive/fp-0\\.1\\.h5: accuracy [0-9.]+, weights identical to positive/fp-0\\.0625\\.h5"
           "the duplicate")
if(NOT last_out MATCHES "duplicate of positive/fp-0\\.0625\\.h5" OR
   NOT last_out MATCHES "1 duplicates counted once")
  message(FATAL_ERROR "the summary does not count the duplicate once:\n${last_out}")
endif()
if(EXISTS ${WORK}/z/positive/fp-0.1.h5 OR NOT EXISTS ${WORK}/z/positive/fp-0.0625.h5 OR
   NOT EXISTS ${WORK}/z/adaptive/label-only-lenet5.h5)
  message(FATAL_ERROR "zoo kept the duplicate's file or lost another")
endif()
file(READ ${WORK}/z/manifest.json manifest)
file(SHA256 ${WORK}/z/manifest.json manifest_hash)
file(GLOB leftovers ${WORK}/z/*.tmp-* ${WORK}/z/*/*.tmp-*)
if(leftovers)
  message(FATAL_ERROR "temporary files left: ${leftovers}")
endif()

# Every kept model's command makes the same bytes (its --out moved aside).
string(JSON n LENGTH "${manifest}" models)
math(EXPR last "${n} - 1")
set(checked 0)
foreach(i RANGE 1 ${last})
  string(JSON dup TYPE "${manifest}" models ${i} duplicate_of)
  string(JSON file GET "${manifest}" models ${i} file)
  if(NOT dup STREQUAL "NULL" OR NOT file MATCHES "ftll|fp-0.0625|rf-seed1|label-only")
    continue()
  endif()
  string(JSON cmd GET "${manifest}" models ${i} command)
  string(JSON sha GET "${manifest}" models ${i} sha256)
  separate_arguments(args UNIX_COMMAND "${cmd}")
  list(POP_FRONT args)  # "ipguard"
  list(TRANSFORM args REPLACE "^${WORK}/z/" "${WORK}/again/")
  get_filename_component(folder ${WORK}/again/${file} DIRECTORY)
  file(MAKE_DIRECTORY ${folder})
  expect_exit(0 ${args})
  file(SHA256 ${WORK}/again/${file} got)
  if(NOT got STREQUAL sha)
    message(FATAL_ERROR "${cmd}\nmade ${got}, the manifest lists ${sha}")
  endif()
  math(EXPR checked "${checked} + 1")
endforeach()
if(NOT checked EQUAL 4)
  message(FATAL_ERROR "checked ${checked} commands, expected 4")
endif()

# An existing zoo is refused without --resume; --json gives the manifest and the counts.
expect_exit(2 --device cpu --threads 1 --seed 3 zoo --target ${TARGET} --out ${WORK}/z ${PLAN}
            ${TINY})
expect_err("already holds a zoo \\(manifest\\.json\\): --resume" "a second build")
expect_exit(0 --device cpu --threads 1 --seed 3 --json zoo --target ${TARGET} --out ${WORK}/z
            --resume ${PLAN} ${TINY})
string(JSON reused GET "${last_out}" reused)
string(JSON made GET "${last_out}" made)
string(JSON dups GET "${last_out}" duplicates)
string(JSON format GET "${last_out}" format)
string(JSON out GET "${last_out}" out)
if(NOT made EQUAL 0 OR NOT reused EQUAL 5 OR NOT dups EQUAL 1 OR NOT format STREQUAL "ipguard-zoo"
   OR NOT out STREQUAL "${WORK}/z")
  message(FATAL_ERROR "resume of a complete zoo: ${last_out}")
endif()
file(SHA256 ${WORK}/z/manifest.json now)
if(NOT now STREQUAL manifest_hash)
  message(FATAL_ERROR "resuming a complete zoo changed its manifest")
endif()
# Resumed with other options it would make every model again: refused, naming the option.
foreach(change "--epochs;2;--epochs \\(1 then, 2 now\\)" "--limit;300;--limit \\(256 then, 300 now\\)"
               "--trees;3;--trees \\(2 then, 3 now\\)")
  list(GET change 0 option)
  list(GET change 1 value)
  list(GET change 2 said)
  set(tiny ${TINY})
  list(FIND tiny ${option} at)
  math(EXPR at "${at} + 1")
  list(REMOVE_AT tiny ${at})
  list(INSERT tiny ${at} ${value})
  expect_exit(2 --device cpu --threads 1 --seed 3 zoo --target ${TARGET} --out ${WORK}/z --resume
              ${PLAN} ${tiny})
  expect_err("^ipguard zoo: --resume: .*manifest\\.json was made with different ${said}; choose another --out\n$"
             "resumed with ${option} ${value}")
endforeach()
expect_exit(2 --device cpu --threads 1 --seed 4 zoo --target ${TARGET} --out ${WORK}/z --resume
            ${PLAN} ${TINY})
expect_err("was made with different --seed; choose another --out" "resumed with --seed 4")
file(SHA256 ${WORK}/z/manifest.json now)
if(NOT now STREQUAL manifest_hash OR last_err MATCHES "epoch|\\[1/")
  message(FATAL_ERROR "a refused resume changed the manifest or started work:\n${last_err}")
endif()

# ---- killed mid-run, resumed: the same manifest ----
# The build is killed (SIGKILL) as soon as its second model is reported done: its stderr
# is read through a FIFO, line by line, so the kill does not wait on a clock.
file(REMOVE_RECURSE ${WORK}/z)
execute_process(
  COMMAND bash -c [[
    fifo="$1"; shift; rm -f "$fifo"; mkfifo "$fifo"
    "$@" 2>"$fifo" >/dev/null & pid=$!
    n=0
    while IFS= read -r line; do
      case "$line" in *': accuracy '*) n=$((n + 1));; esac
      if [ $n -eq 2 ]; then kill -9 $pid; echo killed; break; fi
    done <"$fifo"
    wait $pid; rm -f "$fifo"]] bash ${WORK}/fifo ${IPGUARD}
    --device cpu --threads 1 --seed 3 zoo --target ${TARGET} --out ${WORK}/z ${PLAN} ${TINY}
  OUTPUT_VARIABLE killed)
file(READ ${WORK}/z/manifest.json partial)
if(NOT killed MATCHES "killed" OR partial STREQUAL manifest OR partial MATCHES "rf-seed1")
  message(FATAL_ERROR "the build was not interrupted mid-run (${killed}):\n${partial}")
endif()
string(JSON n_partial LENGTH "${partial}" models)
expect_exit(0 --device cpu --threads 1 --seed 3 zoo --target ${TARGET} --out ${WORK}/z --resume
            ${PLAN} ${TINY})
expect_err("positive/ftll\\.h5: in the manifest, file intact: kept" "resume reuses")
file(READ ${WORK}/z/manifest.json resumed)
if(NOT resumed STREQUAL manifest)
  message(FATAL_ERROR "resumed after a kill (${n_partial} models listed then), the manifest "
                      "differs from an uninterrupted build's:\n${resumed}\n---\n${manifest}")
endif()

# ---- the manifest's checksums ----
# A byte of the manifest changed: resuming refuses it, naming the file.
file(COPY_FILE ${WORK}/z/manifest.json ${WORK}/manifest.saved)
string(REGEX REPLACE "\"accuracy\": 0\\.([0-9])" "\"accuracy\": 0.9\\1" changed "${manifest}")
file(WRITE ${WORK}/z/manifest.json "${changed}")
expect_exit(1 --device cpu --threads 1 --seed 3 zoo --target ${TARGET} --out ${WORK}/z --resume
            ${PLAN} ${TINY})
expect_err("manifest\\.json: manifest: checksum mismatch" "a changed manifest")
file(COPY_FILE ${WORK}/manifest.saved ${WORK}/z/manifest.json)
# A kept model's byte flipped: its sha256 no longer matches, so it is made again (and
# comes out as listed), the others are kept.
execute_process(COMMAND bash -c [[
    b=$(od -An -tu1 -j "$1" -N1 "$0" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$0" bs=1 seek="$1" conv=notrunc status=none]]
  ${WORK}/z/positive/ftll.h5 20000 RESULT_VARIABLE rc)
file(SHA256 ${WORK}/z/positive/ftll.h5 flipped)
string(JSON ftll_sha GET "${manifest}" models 1 sha256)
if(NOT rc EQUAL 0 OR flipped STREQUAL ftll_sha)
  message(FATAL_ERROR "could not flip a byte of positive/ftll.h5")
endif()
expect_exit(0 --device cpu --threads 1 --seed 3 zoo --target ${TARGET} --out ${WORK}/z --resume
            ${PLAN} ${TINY})
expect_err("positive/ftll\\.h5: ftll of the target" "a changed model remade")
expect_err("negative/rf-seed1\\.h5: in the manifest, file intact" "the others kept")
file(READ ${WORK}/z/manifest.json remade)
file(SHA256 ${WORK}/z/positive/ftll.h5 ftll_now)
if(NOT remade STREQUAL manifest OR NOT ftll_now STREQUAL ftll_sha)
  message(FATAL_ERROR "the remade model or the manifest differs from the first build's")
endif()
