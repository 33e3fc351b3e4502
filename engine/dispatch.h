// Internal to engine/: runs the CPU twin or the CUDA kernel of an op on the device of
// its inputs. In a build without CUDA the CUDA branch is not compiled at all.
#pragma once

#include <string>

#include "engine/error.h"
#include "engine/tensor.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace ipg::detail {

[[noreturn]] void no_cuda_backend(const char* op);
// Throws DeviceError naming the op and both devices when they differ.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_dtype(const char* op, const Tensor& t, DType want);

#if IPG_HAS_CUDA
// The stream of a CUDA device, with that device made current.
cudaStream_t cuda_stream(Device d);
// kernels::cuda::sum_dim on d's stream, its split workspace from the caching allocator
// (stream-ordered: freed blocks are only reused by later work on the same stream).
void cuda_sum_dim(Device d, const float* x, float* y, int64_t outer, int64_t dim, int64_t inner,
                  float scale, float beta);
#endif

}  // namespace ipg::detail

#if IPG_HAS_CUDA
#define IPG_ON_DEVICE(op, dev, cpu_stmt, cuda_stmt)                \
  do {                                                             \
    if ((dev).is_cuda()) {                                         \
      const cudaStream_t stream = ::ipg::detail::cuda_stream(dev); \
      cuda_stmt;                                                   \
    } else {                                                       \
      cpu_stmt;                                                    \
    }                                                              \
  } while (0)
#else
#define IPG_ON_DEVICE(op, dev, cpu_stmt, cuda_stmt)          \
  do {                                                       \
    if ((dev).is_cuda()) ::ipg::detail::no_cuda_backend(op); \
    cpu_stmt;                                                \
  } while (0)
#endif
