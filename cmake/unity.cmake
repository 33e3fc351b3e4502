# Unity builds: the sources of a target compiled a batch at a time, one translation unit
# per batch. Our command, test and library sources each parse and instantiate the same
# header-only libraries (CLI11, nlohmann/json, GoogleTest, pybind11) and emit their inline
# functions again: per file, that was most of the build (the 24 sources of `ipguard`: 330
# job-seconds one by one, 52 in two batches). The kernels and the engine, where the hot
# loops are, stay one file per unit. IPG_UNITY_BUILD=OFF builds every target file by file
# (a file that compiles only beside another is a bug this catches).
option(IPG_UNITY_BUILD "Compile the CLI, the tests, the Python module and the models/fingerprint libraries in batches (faster builds)" ON)

# `batch`: sources per unit; about a target's sources over the cores keeps both busy.
function(ipg_unity_build target batch)
  if(IPG_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH
                                               UNITY_BUILD_BATCH_SIZE ${batch})
  endif()
endfunction()
