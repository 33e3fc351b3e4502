# CLI smoke test: help, version, usage errors and the doctor's end-to-end check.
# Run by ctest as: cmake -DIPGUARD=<path> -P cli_smoke.cmake
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
expect_exit(1 train --arch lenet5)   # planned: says so, exits 1
