# Runs over MPI ranks (docs/mpi.md) against one process, on the CPU with 2 ranks: extract
# (points, labels and per-candidate fields identical), experiment (results.json identical
# but for times; every fingerprint identical; the same with --share-batch), a rank that dies mid-run reported with what
# was unfinished and the run completed by --resume to the same results, and zoo (the same
# manifest and model files as one process; after a rank died, --resume completes it).
# Every run uses --threads 1 (CPU results depend on the thread count, not on the ranks).
# Run by ctest (skipped, exit 77, without MPI or mpirun) as:
#   cmake -DIPGUARD=<path> -DREPO=<source dir> -DWORK=<folder> -DMPIRUN=<path> -P cli_mpi.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)
set(TARGET ${REPO}/weights/lenet5-fashion-mnist.h5)
set(SHIPPED ${REPO}/weights/zoo-lenet5-fashion-mnist)

# Open MPI refuses to start as root without these, and refuses 2 ranks on 1 core without
# --oversubscribe (other launchers take -np alone).
set(ENV{OMPI_ALLOW_RUN_AS_ROOT} 1)
set(ENV{OMPI_ALLOW_RUN_AS_ROOT_CONFIRM} 1)
# Under the sanitizer build: Open MPI's own never-freed allocations are not ours to report
# (tests/lsan-openmpi.supp); its plugins stay loaded so their frames can be named.
set(ENV{LSAN_OPTIONS} "suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan-openmpi.supp:print_suppressions=0")
if(DEFINED ENV{ASAN_OPTIONS})  # full unwinding: Open MPI's libraries keep no frame pointers
  set(ENV{ASAN_OPTIONS} "$ENV{ASAN_OPTIONS}:fast_unwind_on_malloc=0")
endif()
execute_process(COMMAND ${MPIRUN} --version OUTPUT_VARIABLE mpi_version ERROR_QUIET)
set(LAUNCH ${MPIRUN} -np 2)
if(mpi_version MATCHES "Open MPI")
  list(APPEND LAUNCH --oversubscribe)
endif()

# Like expect_exit, through the launcher with 2 ranks; `code` "nonzero": any failure.
function(expect_mpi_exit code)
  execute_process(COMMAND ${LAUNCH} ${IPGUARD} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if((code STREQUAL "nonzero" AND rc EQUAL 0) OR (NOT code STREQUAL "nonzero" AND NOT rc EQUAL code))
    message(FATAL_ERROR "mpirun -np 2 ipguard ${ARGN}: exit ${rc}, expected ${code}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()

# The run was shared: rank 0's note counts every item once, over 2 ranks.
function(expect_shared items what)
  if(NOT last_err MATCHES "ipguard: ${items} work items over 2 ranks: rank 0 did ([0-9]+), rank 1 did ([0-9]+)")
    message(FATAL_ERROR "${what}: no note of the work shared over 2 ranks:\n${last_err}")
  endif()
  math(EXPR total "${CMAKE_MATCH_1} + ${CMAKE_MATCH_2}")
  if(NOT total EQUAL items)
    message(FATAL_ERROR "${what}: the ranks did ${total} items of ${items}:\n${last_err}")
  endif()
endfunction()

# Two fingerprint files hold the same points, labels and converged flags, bit for bit.
function(expect_same_fingerprint a b)
  expect_exit(0 --json compare ${a} ${b})
  foreach(key points same_labels identical_points converged_first_only converged_second_only
          max_abs_point_difference)
    string(JSON ${key} GET "${last_out}" ${key})
  endforeach()
  if(points EQUAL 0 OR NOT same_labels EQUAL points OR NOT identical_points EQUAL points OR
     NOT converged_first_only EQUAL 0 OR NOT converged_second_only EQUAL 0 OR
     NOT max_abs_point_difference EQUAL 0)
    message(FATAL_ERROR "${a} and ${b} differ:\n${last_out}")
  endif()
endfunction()

# results.json without what differs between two runs of the same work even in one
# process: the times (and whether a setting was timed in an earlier run of a resumed
# folder), the fingerprint files' SHA-256 (each file records when it was made; their
# contents are compared with expect_same_fingerprint) and the file's own checksum.
function(results_without_times dir out_var)
  file(READ ${dir}/results.json j)
  string(JSON j SET "${j}" sha256 "\"\"")
  string(JSON n LENGTH "${j}" settings)
  if(n GREATER 0)
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      foreach(key extract_seconds seconds_per_100)
        string(JSON j SET "${j}" settings ${i} ${key} 0)
      endforeach()
      string(JSON j SET "${j}" settings ${i} timed_in_earlier_run false)
      string(JSON j SET "${j}" settings ${i} fingerprint_sha256 "\"\"")
    endforeach()
  endif()
  set(${out_var} "${j}" PARENT_SCOPE)
endfunction()

# ---- extract: 100 points in chunks of 10, shared over the ranks ----
set(EXTRACT extract --model ${TARGET} --n 100 --batch 10 --iters 200)
expect_exit(0 --device cpu --threads 1 --seed 5 ${EXTRACT} --out ${WORK}/one.h5)
expect_mpi_exit(0 --device cpu --threads 1 --seed 5 ${EXTRACT} --out ${WORK}/two.h5)
expect_shared(10 "extract")
expect_same_fingerprint(${WORK}/one.h5 ${WORK}/two.h5)
file(GLOB leftovers ${WORK}/*.tmp*)
if(leftovers)
  message(FATAL_ERROR "extract on ranks left temporary files: ${leftovers}")
endif()

# ---- experiment over a small zoo: 6 settings ----
file(MAKE_DIRECTORY ${WORK}/zoo/positive ${WORK}/zoo/negative)
file(COPY_FILE ${TARGET} ${WORK}/zoo/target.h5)
foreach(f positive/ftll.h5 positive/wp-0.5.h5 negative/lenet5-seed1.h5 negative/rf-seed1.h5)
  file(COPY_FILE ${SHIPPED}/${f} ${WORK}/zoo/${f})
endforeach()
set(EXPERIMENT experiment --zoo ${WORK}/zoo --grid "ipguard:k=0.1:iters=30 fgsm:eps=0.1 random"
    --modes RL,RR --n 10)
expect_exit(0 --device cpu --threads 1 --seed 2 ${EXPERIMENT} --out ${WORK}/r1)
expect_mpi_exit(0 --device cpu --threads 1 --seed 2 ${EXPERIMENT} --out ${WORK}/r2)
expect_shared(6 "experiment")
if(NOT last_out MATCHES "Table 4")
  message(FATAL_ERROR "experiment on ranks printed no tables:\n${last_out}")
endif()
results_without_times(${WORK}/r1 one)
results_without_times(${WORK}/r2 two)
string(JSON planned LENGTH "${one}" planned)
string(JSON done LENGTH "${one}" settings)
if(NOT planned EQUAL 6 OR NOT done EQUAL 6)
  message(FATAL_ERROR "one process: ${done} of ${planned} settings, expected 6 of 6")
endif()
if(NOT one STREQUAL two)
  message(FATAL_ERROR "results.json on 2 ranks differs from one process's (times aside):\n"
                      "${two}\n---\n${one}")
endif()
file(GLOB fingerprints RELATIVE ${WORK}/r1/fingerprints ${WORK}/r1/fingerprints/*.h5)
list(LENGTH fingerprints n_fingerprints)
if(NOT n_fingerprints EQUAL 6 OR NOT EXISTS ${WORK}/r2/report.html)
  message(FATAL_ERROR "expected 6 fingerprints and report.html: ${fingerprints}")
endif()
foreach(f ${fingerprints})
  expect_same_fingerprint(${WORK}/r1/fingerprints/${f} ${WORK}/r2/fingerprints/${f})
endforeach()

# ---- --share-batch on the ranks: the work items are batch groups (ipguard, fgsm and random
# each under RL and RR: 3 groups of 2), and every setting's result is one process's alone ----
expect_mpi_exit(0 --device cpu --threads 1 --seed 2 ${EXPERIMENT} --share-batch --out ${WORK}/r4)
expect_shared(3 "experiment --share-batch")
results_without_times(${WORK}/r4 four)
string(JSON share GET "${four}" parameters share_batch)
if(NOT share)
  message(FATAL_ERROR "--share-batch is not recorded in results.json:\n${four}")
endif()
string(JSON four SET "${four}" parameters share_batch false)
foreach(i RANGE 5)
  string(JSON shared GET "${four}" settings ${i} shared_batch_with)
  if(NOT shared EQUAL 2)
    message(FATAL_ERROR "setting ${i} shared its batch with ${shared} settings, expected 2:\n${four}")
  endif()
  string(JSON four SET "${four}" settings ${i} shared_batch_with 1)
endforeach()
if(NOT four STREQUAL one)
  message(FATAL_ERROR "--share-batch on 2 ranks: results.json differs from one process's "
                      "settings alone (times and sharing aside):\n${four}\n---\n${one}")
endif()
foreach(f ${fingerprints})
  expect_same_fingerprint(${WORK}/r1/fingerprints/${f} ${WORK}/r4/fingerprints/${f})
endforeach()

# ---- a rank dies mid-run: reported with its setting, then --resume completes the run ----
# The test hook (tools/ipguard/mpi_queue.h) has rank 0 only serve and rank 1 exit when it
# is handed its third setting: exactly 2 settings are recorded, the third is in flight.
set(ENV{IPG_MPI_TEST_EXIT_AFTER} 2)
expect_mpi_exit(nonzero --device cpu --threads 1 --seed 2 ${EXPERIMENT} --out ${WORK}/r3)
unset(ENV{IPG_MPI_TEST_EXIT_AFTER})
if(NOT last_err MATCHES "the run was stopped" OR
   NOT last_err MATCHES "rank 1 was working on setting fgsm eps=0\\.1 RL")
  message(FATAL_ERROR "the stopped run did not report its unfinished setting:\n${last_err}")
endif()
results_without_times(${WORK}/r3 partial)
string(JSON n_partial LENGTH "${partial}" settings)
if(NOT n_partial EQUAL 2)
  message(FATAL_ERROR "the stopped run recorded ${n_partial} settings, expected 2:\n${partial}")
endif()
expect_mpi_exit(0 --device cpu --threads 1 --seed 2 ${EXPERIMENT} --out ${WORK}/r3 --resume)
math(EXPR missing "6 - ${n_partial}")
expect_shared(${missing} "the resumed experiment")
string(REGEX MATCHALL "resumed: done in the earlier run" resumed "${last_err}")
list(LENGTH resumed n_resumed)
if(NOT n_resumed EQUAL n_partial)
  message(FATAL_ERROR "resume reused ${n_resumed} settings, ${n_partial} were recorded:\n${last_err}")
endif()
results_without_times(${WORK}/r3 three)
if(NOT three STREQUAL one)
  message(FATAL_ERROR "resumed after a rank died, results.json differs from one process's "
                      "(times aside):\n${three}\n---\n${one}")
endif()
foreach(f ${fingerprints})
  expect_same_fingerprint(${WORK}/r1/fingerprints/${f} ${WORK}/r3/fingerprints/${f})
endforeach()

# ---- zoo: models shared out, the same zoo as one process ----
# A small plan with a WP sweep (it stops at a value; the values after it are skipped once
# known), a post-processed copy, a network and a forest: 12 models at most.
set(ZOO zoo --target ${TARGET} --positives ftll,wp:sweep --negatives lenet5:1,rf:1 --epochs 1
    --limit 300 --trees 3)
# The manifest without what names the folder (commands hold --out) and its own checksum:
# every model's file and weights digest stay, so equal texts mean byte-identical models.
function(manifest_of dir out_var)
  file(READ ${dir}/manifest.json j)
  string(JSON j SET "${j}" sha256 "\"\"")
  string(REPLACE "${dir}/" "ZOO/" j "${j}")
  set(${out_var} "${j}" PARENT_SCOPE)
endfunction()
# The zoo run was shared: the items made by the two ranks and those found not needed (sweep
# values after its stop) add up to `items`.
function(expect_zoo_shared items what)
  if(NOT last_err MATCHES "ipguard: ${items} work items over 2 ranks: rank 0 did ([0-9]+), rank 1 did ([0-9]+)(, ([0-9]+) not needed)?")
    message(FATAL_ERROR "${what}: no note of ${items} models shared over 2 ranks:\n${last_err}")
  endif()
  set(skipped 0)
  if(CMAKE_MATCH_4)
    set(skipped ${CMAKE_MATCH_4})
  endif()
  math(EXPR total "${CMAKE_MATCH_1} + ${CMAKE_MATCH_2} + ${skipped}")
  if(NOT total EQUAL items OR CMAKE_MATCH_2 EQUAL 0)
    message(FATAL_ERROR "${what}: the ranks did ${total} of ${items} models (each must do some):\n${last_err}")
  endif()
endfunction()
# Rank 0 took every model from the ranks' staged files: none was made again after the queue.
function(expect_zoo_staged what)
  if(last_err MATCHES "  [a-z]+/[^:\n]+: accuracy [0-9.]+ \\([0-9.]+ s\\)" OR
     NOT last_err MATCHES "made by an MPI rank, above")
    message(FATAL_ERROR "${what}: rank 0 made a model again instead of taking the staged one:\n${last_err}")
  endif()
endfunction()
expect_exit(0 --device cpu --threads 1 --seed 3 ${ZOO} --out ${WORK}/z1)
manifest_of(${WORK}/z1 zoo_one)
string(JSON n_stops LENGTH "${zoo_one}" sweeps)
string(JSON stop GET "${zoo_one}" sweeps 0 stopped_at)
if(NOT n_stops EQUAL 1 OR stop STREQUAL "null")
  message(FATAL_ERROR "the test's WP sweep did not stop (the skipping goes untested):\n${zoo_one}")
endif()
expect_mpi_exit(0 --device cpu --threads 1 --seed 3 ${ZOO} --out ${WORK}/z2)
expect_zoo_shared(12 "zoo")
expect_zoo_staged("zoo")
manifest_of(${WORK}/z2 zoo_two)
if(NOT zoo_two STREQUAL zoo_one)
  message(FATAL_ERROR "the zoo made on 2 ranks differs from one process's:\n${zoo_two}\n---\n${zoo_one}")
endif()
if(EXISTS ${WORK}/z2/.staged)
  message(FATAL_ERROR "the zoo on ranks left its staging folder")
endif()

# ---- zoo: a rank dies; --resume makes only the models not staged ----
# Rank 0 only serves; rank 1 makes 2 models and exits when handed its third.
set(ENV{IPG_MPI_TEST_EXIT_AFTER} 2)
expect_mpi_exit(nonzero --device cpu --threads 1 --seed 3 ${ZOO} --out ${WORK}/z3)
unset(ENV{IPG_MPI_TEST_EXIT_AFTER})
if(NOT last_err MATCHES "the run was stopped" OR NOT last_err MATCHES "rank 1 was working on model positive/")
  message(FATAL_ERROR "the stopped zoo did not report its unfinished model:\n${last_err}")
endif()
file(GLOB staged ${WORK}/z3/.staged/*.h5)
list(LENGTH staged n_staged)
if(NOT n_staged EQUAL 2)
  message(FATAL_ERROR "the stopped zoo staged ${n_staged} models, expected 2: ${staged}")
endif()
expect_mpi_exit(0 --device cpu --threads 1 --seed 3 ${ZOO} --out ${WORK}/z3 --resume)
expect_zoo_shared(10 "the resumed zoo")
expect_zoo_staged("the resumed zoo")
manifest_of(${WORK}/z3 zoo_three)
if(NOT zoo_three STREQUAL zoo_one)
  message(FATAL_ERROR "resumed after a rank died, the zoo differs from one process's:\n${zoo_three}\n---\n${zoo_one}")
endif()
