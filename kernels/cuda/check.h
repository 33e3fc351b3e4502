// Check macros for the CUDA runtime, cuBLAS and cuDNN. They throw ipg::CudaError with
// the failing expression, the library's message, file and line, so a test framework
// reports the failure instead of the process dying.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace ipg {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_cuda_error(const char* lib, const char* expr, const std::string& msg,
                                   const char* file, int line);

}  // namespace ipg

#define IPG_CUDA_CHECK(expr)                                                                    \
  do {                                                                                          \
    const cudaError_t ipg_err_ = (expr);                                                        \
    if (ipg_err_ != cudaSuccess)                                                                \
      ::ipg::throw_cuda_error("CUDA", #expr, cudaGetErrorString(ipg_err_), __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports bad launch configurations at the launch site.
#define IPG_CUDA_CHECK_LAUNCH() IPG_CUDA_CHECK(cudaGetLastError())

#define IPG_CUBLAS_CHECK(expr)                                                                \
  do {                                                                                        \
    const int ipg_st_ = static_cast<int>(expr);                                               \
    if (ipg_st_ != 0)                                                                         \
      ::ipg::throw_cuda_error("cuBLAS", #expr, "status " + std::to_string(ipg_st_), __FILE__, \
                              __LINE__);                                                      \
  } while (0)

#define IPG_CUDNN_CHECK(expr)                                                                    \
  do {                                                                                           \
    const cudnnStatus_t ipg_st_ = (expr);                                                        \
    if (ipg_st_ != CUDNN_STATUS_SUCCESS)                                                         \
      ::ipg::throw_cuda_error("cuDNN", #expr, cudnnGetErrorString(ipg_st_), __FILE__, __LINE__); \
  } while (0)
