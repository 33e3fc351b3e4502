# Shared by the CLI scripts (cli_smoke.cmake, cli_hardening.cmake): runs ipguard with
# the given arguments, fails unless it exits with `code`, and leaves its stdout and
# stderr in last_out / last_err.
function(expect_exit code)
  execute_process(COMMAND ${IPGUARD} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL code)
    message(FATAL_ERROR "ipguard ${ARGN}: exit ${rc}, expected ${code}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  set(last_err "${err}" PARENT_SCOPE)
endfunction()
