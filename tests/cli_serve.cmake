# `ipguard serve` and `ipguard verify` against each other over real sockets on 127.0.0.1:
# the same matching rate through a logits server, a labels-only server and the file itself;
# servers that drop connections, answer slowly, answer the wrong number of rows or a short
# tensor, or fail with HTTP 500 (hidden --fault flags): a clear error, exit 1 and an
# evidence report marked incomplete; --suspect-cmd with a tiny shell command; refusals.
# Servers start on port 0 and the test reads the port they print. No check depends on the
# clock: a "slow" server sleeps 30 s against a 0.2 s timeout, and waits for a server are
# for its printed line (or its death), not for a time.
# Run by ctest (tests/CMakeLists.txt) as: bash, which kills every server whose .pid file
# is in WORK when it exits (also after a failure), around
#   cmake -DIPGUARD=<path> -DREPO=<source dir> -DWORK=<folder> -P cli_serve.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
include(${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake)
set(G --device cpu --threads 1)
set(TARGET ${REPO}/weights/lenet5-fashion-mnist.h5)
set(OTHER ${REPO}/weights/resnet20-fashion-mnist.h5)
set(FP ${WORK}/fp.h5)

function(expect_err pattern what)
  if(NOT last_err MATCHES "${pattern}")
    message(FATAL_ERROR "${what}: stderr does not match '${pattern}':\n${last_err}")
  endif()
endfunction()

# Starts `ipguard serve` with the given arguments (on ${serve_threads} threads) as server
# `id` and sets ${id}_URL once it has printed its address; fails if it dies first.
set(serve_threads 1)
function(start_server id)
  execute_process(
    COMMAND bash -c [[
      ipguard=$1; dir=$2; id=$3; threads=$4; shift 4
      "$ipguard" --device cpu --threads $threads serve --port 0 "$@" >"$dir/$id.out" 2>"$dir/$id.err" &
      pid=$!; echo $pid >"$dir/$id.pid"
      until grep -q "^serving " "$dir/$id.out"; do
        kill -0 $pid 2>/dev/null || { echo "server died"; cat "$dir/$id.err"; exit 1; }
        sleep 0.05
      done
      sed -n 's/^serving .* at //p' "$dir/$id.out"]]
      bash ${IPGUARD} ${WORK} ${id} ${serve_threads} ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE url ERROR_VARIABLE err)
  string(STRIP "${url}" url)
  if(NOT rc EQUAL 0 OR NOT url MATCHES "^http://127\\.0\\.0\\.1:[0-9]+/v2/models/")
    message(FATAL_ERROR "serve ${ARGN} did not start: ${url}\n${err}")
  endif()
  set(${id}_URL ${url} PARENT_SCOPE)
endfunction()

# SIGTERM, then waits for the process to be gone; its stderr must say it stopped cleanly.
function(stop_server id)
  execute_process(
    COMMAND bash -c [[
      pid=$(cat "$1/$2.pid"); kill -TERM $pid
      while kill -0 $pid 2>/dev/null; do sleep 0.05; done
      rm -f "$1/$2.pid"; cat "$1/$2.err"]] bash ${WORK} ${id}
    OUTPUT_VARIABLE err)
  if(NOT err MATCHES "serve: stopped after [0-9]+ infer requests")
    message(FATAL_ERROR "server ${id} did not stop cleanly on SIGTERM:\n${err}")
  endif()
endfunction()

function(json_get var json)
  string(JSON v GET "${json}" ${ARGN})
  set(${var} "${v}" PARENT_SCOPE)
endfunction()

# The report in DIR: complete or not, as expected, and what it counts.
function(check_report dir complete)
  if(NOT EXISTS ${dir}/evidence.json OR NOT EXISTS ${dir}/evidence.html)
    message(FATAL_ERROR "no report in ${dir}")
  endif()
  file(READ ${dir}/evidence.json report)
  json_get(c "${report}" complete)
  if(NOT c STREQUAL complete)
    message(FATAL_ERROR "${dir}: complete is ${c}, expected ${complete}")
  endif()
  file(READ ${dir}/evidence.html page)
  if(complete STREQUAL "OFF" AND NOT page MATCHES "INCOMPLETE")
    message(FATAL_ERROR "${dir}/evidence.html does not say it is incomplete")
  endif()
  set(report "${report}" PARENT_SCOPE)
endfunction()

# ---- a fingerprint, and the file verification every served one must equal ----
expect_exit(0 ${G} --seed 1 extract --model ${TARGET} --out ${FP} --n 20 --init random)
expect_exit(0 ${G} --json verify --fingerprint ${FP} --suspect ${OTHER})
json_get(file_rate "${last_out}" matching_rate)
json_get(file_matches "${last_out}" matches)
expect_exit(0 ${G} --json verify --fingerprint ${FP} --suspect ${TARGET})
json_get(target_rate "${last_out}" matching_rate)
if(NOT target_rate EQUAL 1 OR file_rate EQUAL 1)
  message(FATAL_ERROR "the fixture cannot tell suspects apart: target ${target_rate}, other ${file_rate}")
endif()

# ---- served logits and served labels: the same rate as the file ----
start_server(logits --model ${OTHER} --name other)
start_server(labels --model ${OTHER} --name other --labels-only)
foreach(id logits labels)
  expect_exit(0 ${G} --json verify --fingerprint ${FP} --suspect ${${id}_URL} --query-batch 7
              --report ${WORK}/report-${id})
  json_get(rate "${last_out}" matching_rate)
  json_get(sent "${last_out}" points_sent)
  if(NOT rate STREQUAL file_rate OR NOT sent EQUAL 20)
    message(FATAL_ERROR "${id} server: rate ${rate} (file: ${file_rate}), ${sent} points sent")
  endif()
  check_report(${WORK}/report-${id} ON)
  json_get(m "${report}" result matches)
  json_get(q "${report}" queries)
  string(JSON nq LENGTH "${q}")
  json_get(kind "${report}" suspect kind)
  json_get(dtype "${report}" queries 0 output datatype)
  if(NOT m EQUAL file_matches OR NOT nq EQUAL 3 OR NOT kind STREQUAL "address")
    message(FATAL_ERROR "report-${id}: ${m} matches, ${nq} queries (expected 3 of <= 7), kind ${kind}")
  endif()
  set(dtype_${id} ${dtype})
endforeach()
if(NOT dtype_logits STREQUAL "FP32" OR NOT dtype_labels STREQUAL "INT64")
  message(FATAL_ERROR "the servers answered ${dtype_logits} and ${dtype_labels}")
endif()
# Text output names the address; the target served gives rate 1.
start_server(target --model ${TARGET} --name lenet --max-batch 10)
expect_exit(0 ${G} verify --fingerprint ${FP} --suspect ${target_URL} --query-batch 10)
if(NOT last_out MATCHES "/v2/models/lenet: matching rate 1 \\(20/20\\)")
  message(FATAL_ERROR "verify of the served target:\n${last_out}")
endif()
# A request over the server's --max-batch is a 400 with its reason, not retried.
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect ${target_URL} --query-batch 20)
expect_err("HTTP 400 \\(batch of 20 points; this server takes 1 to 10\\); 0 of 20 points answered; give --query-batch 10 or less\n"
           "over --max-batch")
# Pixels outside [0, 1] (a client sending 0-255 images) are a 400 that says so, not labels
# of garbage: a raw request over bash's /dev/tcp.
execute_process(
  COMMAND bash -c [[
    url=$1; hp=${url#http://}; path=/${hp#*/}; hp=${hp%%/*}
    body='{"inputs":[{"name":"pixels","shape":[1,1,28,28],"datatype":"FP32","data":[255'$(printf ',0%.0s' $(seq 783))']}]}'
    exec 3<>/dev/tcp/${hp%:*}/${hp#*:}
    printf 'POST %s/infer HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$path" "$hp" ${#body} "$body" >&3
    cat <&3]] bash ${target_URL}
  OUTPUT_VARIABLE resp)
if(NOT resp MATCHES "^HTTP/1.1 400" OR NOT resp MATCHES "value 0 of the input is 255.0; pixels are in \\[0, 1\\]")
  message(FATAL_ERROR "a 0-255 pixel sent to serve:\n${resp}")
endif()
# Refusals before any query: a budget below the points, remote options for a file, both
# suspects, a report folder with files, a wrong address.
expect_exit(2 ${G} verify --fingerprint ${FP} --suspect ${target_URL} --max-queries 10)
expect_err("--max-queries 10 is below the 20 points" "a budget below the points")
expect_exit(2 ${G} verify --fingerprint ${FP} --suspect ${OTHER} --timeout 1)
expect_err("--timeout is for a suspect at an http:// address" "remote options for a file")
expect_exit(2 ${G} verify --fingerprint ${FP} --suspect ${OTHER} --suspect-cmd "echo 1")
expect_err("give one of --suspect" "two suspects")
expect_exit(2 ${G} verify --fingerprint ${FP} --suspect ${target_URL} --report ${WORK}/report-logits)
expect_err("not empty" "a report folder with files")
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect http://127.0.0.1:1/v2/models/x --retries 0)
expect_err("cannot connect" "nothing listening")
# A malformed or https address is a usage error, found before anything is asked.
foreach(bad "http://[bad" "http://127.0.0.1:99999/v2/models/x" "https://127.0.0.1/v2/models/x")
  expect_exit(2 ${G} verify --fingerprint ${FP} --suspect ${bad})
  if(NOT last_err MATCHES "^ipguard verify: --suspect: " OR last_err MATCHES "asking")
    message(FATAL_ERROR "verify --suspect ${bad}: ${last_err}")
  endif()
endforeach()
expect_exit(2 ${G} serve --model ${TARGET} --port 70000)
# A port another server listens on: refused with the system's reason and the way out (not
# shared with it). Were it taken, the server would run: it is then stopped and the test
# fails, rather than waiting on it.
string(REGEX REPLACE "^http://127\\.0\\.0\\.1:([0-9]+)/.*" "\\1" target_port "${target_URL}")
execute_process(
  COMMAND bash -c [[
    W=$1; shift
    "$@" >"$W/taken.out" 2>"$W/taken.err" & pid=$!
    while kill -0 $pid 2>/dev/null; do
      grep -q "^serving " "$W/taken.out" && { kill -9 $pid; echo "it serves"; exit 1; }
      sleep 0.05
    done
    wait $pid; echo "exit $?"; cat "$W/taken.err"]]
    bash ${WORK} ${IPGUARD} ${G} serve --model ${TARGET} --port ${target_port}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT out MATCHES "^exit 1\n.*cannot listen on 127\\.0\\.0\\.1:${target_port}: Address already in use \\(--port 0 picks a free port\\)")
  message(FATAL_ERROR "serve on a port in use:\n${out}")
endif()
expect_exit(1 ${G} serve --model ${WORK}/fp.h5 --port 0)
stop_server(target)
stop_server(logits)
stop_server(labels)

# ---- faults: a clear error, exit 1, the report marked incomplete with what came ----
# Every second request misbehaves; batches of 5: the first is answered, the second not.
set(V ${G} verify --fingerprint ${FP} --query-batch 5)
start_server(count --model ${OTHER} --name m --fault wrong-count --fault-every 2)
expect_exit(1 ${V} --suspect ${count_URL} --report ${WORK}/report-count)
expect_err("points 5-9: the answer has shape \\[6,10\\] for 5 points; 5 of 20 points answered"
           "wrong count")
check_report(${WORK}/report-count OFF)
json_get(answered "${report}" result answered)
if(NOT answered EQUAL 5)
  message(FATAL_ERROR "report-count keeps ${answered} answers, not the 5 received")
endif()
stop_server(count)
start_server(short --model ${OTHER} --name m --fault wrong-shape --fault-every 2)
expect_exit(1 ${V} --suspect ${short_URL} --report ${WORK}/report-short)
expect_err("shape \\[5,10\\] needs 50 values, \"data\" has 49" "a short tensor")
check_report(${WORK}/report-short OFF)
stop_server(short)
# HTTP 500 on every second request: retried (with backoff), the same rate as the file;
# without retries, an error.
start_server(e500 --model ${OTHER} --name m --fault http-500 --fault-every 2)
expect_exit(0 ${G} --json verify --fingerprint ${FP} --query-batch 5 --suspect ${e500_URL} --retries 2 --report ${WORK}/report-500)
json_get(rate "${last_out}" matching_rate)
if(NOT rate STREQUAL file_rate)
  message(FATAL_ERROR "through HTTP 500 retries: rate ${rate}, file ${file_rate}")
endif()
json_get(out "${last_out}" out)  # the folder written, under every writer's key
if(NOT out STREQUAL "${WORK}/report-500")
  message(FATAL_ERROR "verify --report --json: \"out\" is '${out}', not the report folder")
endif()
check_report(${WORK}/report-500 ON)
json_get(status "${report}" queries 1 http_status)
json_get(attempt "${report}" queries 2 attempt)
if(NOT status EQUAL 500 OR NOT attempt EQUAL 2)
  message(FATAL_ERROR "report-500 does not record the failed try and its retry")
endif()
expect_exit(1 ${V} --suspect ${e500_URL} --retries 0)
expect_err("HTTP 500 \\(injected fault \\(test\\)\\)" "HTTP 500 without retries")
# Retries under --max-queries: the budget runs out (5 ok, 5 failed, 5 ok, 5 failed: 20 of
# 20), and the message says what the retries were for.
expect_exit(1 ${V} --suspect ${e500_URL} --retries 2 --max-queries 20)
expect_err("the query budget of 20 points is spent \\(20 sent\\); the last failure, points 10-14: HTTP 500 \\(injected fault \\(test\\)\\)"
           "a budget spent on retries")
stop_server(e500)
start_server(drop --model ${OTHER} --name m --fault drop)
expect_exit(1 ${V} --suspect ${drop_URL} --retries 1 --report ${WORK}/report-drop)
expect_err("points 0-4: no complete answer .*closed the connection\\) \\(after 2 attempts\\); 0 of 20"
           "a dropped connection")
check_report(${WORK}/report-drop OFF)
stop_server(drop)
start_server(slow --model ${OTHER} --name m --fault slow --fault-sleep 30)
expect_exit(1 ${V} --suspect ${slow_URL} --timeout 0.2 --retries 0 --report ${WORK}/report-slow)
expect_err("no complete answer within 0\\.2 s" "a slow server")
check_report(${WORK}/report-slow OFF)
stop_server(slow)  # a sleeping answer does not hold up the stop

# ---- --suspect-cmd: points in $IPG_POINTS (.npy), labels on stdout ----
set(npy_check [[head -c 128 "$IPG_POINTS" | grep -q "'shape': (20, 1, 28, 28)"]])
expect_exit(0 ${G} --json verify --fingerprint ${FP} --report ${WORK}/report-cmd --suspect-cmd
            "${npy_check} && yes 3 | head -n 20")
json_get(rate "${last_out}" matching_rate)
check_report(${WORK}/report-cmd ON)
json_get(labels "${report}" fingerprint labels)
string(REGEX MATCHALL "(^|[^0-9])3([^0-9]|$)" threes "${labels}")
list(LENGTH threes n3)
# The same labels as one JSON array: the same rate; and it counts the fingerprint's 3s.
expect_exit(0 ${G} --json verify --fingerprint ${FP} --suspect-cmd "echo '[3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3]'")
json_get(rate_json "${last_out}" matching_rate)
json_get(matches_json "${last_out}" matches)
if(NOT rate_json STREQUAL rate OR NOT matches_json EQUAL n3)
  message(FATAL_ERROR "--suspect-cmd: ${matches_json} matches (rate ${rate_json}, lines: ${rate}); "
                      "the fingerprint has ${n3} points labelled 3")
endif()
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect-cmd "seq 19")
expect_err("the command printed 19 labels for 20 points" "a wrong count")
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect-cmd "echo 1 x")
expect_err("the label of point 1 'x' is not an integer" "a non-integer")  # numbered from 0, as rows
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect-cmd "echo '[0, 1, -2]'")
expect_err("the label of point 2 '-2' is not an integer" "a negative label in a JSON array")
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect-cmd "exit 3" --report ${WORK}/report-cmd-fail)
expect_err("exited with status 3" "a failing command")
check_report(${WORK}/report-cmd-fail OFF)
# A label that is no class of the target is refused, as a label API's is: by --classes, or
# by the classes the fingerprint shows (a command states none).
set(label_99 [[printf "1\n2\n3\n4\n99\n" && yes 1 | head -n 15]])
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect-cmd "${label_99}" --classes 10)
expect_err("--suspect-cmd: the command labels point 4 99, not a class of 0\\.\\.9\n" "a label out of --classes")
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect-cmd "${label_99}")
expect_err("labels point 4 99, not a class of 0\\.\\.[0-9] \\(the classes the fingerprint shows; --classes N"
           "a label out of the fingerprint's classes")
expect_exit(2 ${G} verify --fingerprint ${FP} --suspect-cmd "yes 1 | head -n 20" --classes 1)
expect_err("--classes 1: the fingerprint's target gives class [1-9]" "--classes below the fingerprint's")
expect_exit(2 ${G} verify --fingerprint ${FP} --suspect ${OTHER} --classes 10)
expect_err("--classes is for --suspect-cmd" "--classes for a file")
# --timeout bounds the whole command: one that sleeps 1000 s against 0.2 s is killed with
# its process group (the shell's sleeping child too), the report marked incomplete. The
# wait for the group to be gone is bounded by its sleep, not by a clock of ours.
expect_exit(1 ${G} verify --fingerprint ${FP} --report ${WORK}/report-cmd-slow --timeout 0.2
            --suspect-cmd "echo $$ >${WORK}/cmd.group && sleep 1000 && echo 1")
expect_err("--suspect-cmd: the command did not finish within 0\\.2 s \\(--timeout\\): it was killed"
           "a command past --timeout")
check_report(${WORK}/report-cmd-slow OFF)
execute_process(
  COMMAND bash -c [[
    g=$(cat "$1"); n=0
    while ps -eo pgid=,stat= | awk -v g=$g '$1 == g && $2 !~ /^Z/ {f=1} END {exit !f}'; do
      n=$((n + 1)); [ $n -gt 2000 ] && { echo "group $g still runs"; ps -eo pid,pgid,cmd; exit 1; }
      sleep 0.05
    done]] bash ${WORK}/cmd.group
  RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the timed-out command's process group was not killed:\n${out}")
endif()
# Output without end is cut off at a bound (the command killed), not read forever.
expect_exit(1 ${G} verify --fingerprint ${FP} --suspect-cmd "yes 1")
expect_err("printed more than [0-9]+ bytes for 20 labels: it was killed" "endless output")

# ---- a file suspect's report: one entry per batch, the file's SHA-256 ----
expect_exit(0 ${G} verify --fingerprint ${FP} --suspect ${OTHER} --batch 8 --report ${WORK}/report-file)
check_report(${WORK}/report-file ON)
json_get(q "${report}" queries)
string(JSON nq LENGTH "${q}")
json_get(sha "${report}" suspect sha256)
file(SHA256 ${OTHER} other_sha)
if(NOT nq EQUAL 3 OR NOT sha STREQUAL other_sha)
  message(FATAL_ERROR "report-file: ${nq} entries for batches of 8 of 20, sha ${sha}")
endif()
# On two threads the model's OpenMP workers block the stop signals too: SIGTERM stops the
# server cleanly (one of them took it, and the process died of it, exit 143).
set(serve_threads 2)
start_server(two --model ${TARGET} --name lenet)
expect_exit(0 ${G} verify --fingerprint ${FP} --suspect ${two_URL} --query-batch 10)
stop_server(two)
file(GLOB leftovers ${WORK}/report-*/*.tmp* ${WORK}/report-*/.*)
if(leftovers)
  message(FATAL_ERROR "temporary files left: ${leftovers}")
endif()
message(STATUS "cli_serve: all checks passed")
