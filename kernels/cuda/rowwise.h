// CUDA twins of kernels/cpu/rowwise.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

// out is device memory; read it back to act on the answer.
void first_invalid_index(const int32_t* index, int64_t n, int64_t bound, int32_t* out,
                         cudaStream_t stream);
void gather_rows_forward(const float* x, const int32_t* index, float* out, int64_t rows,
                         int64_t cols, cudaStream_t stream);
void gather_rows_backward(const int32_t* index, const float* dy, float* dx, int64_t rows,
                          int64_t cols, cudaStream_t stream);
void scatter_rows_forward(const float* x, const int32_t* index, const float* values, float* out,
                          int64_t rows, int64_t cols, cudaStream_t stream);
void scatter_rows_backward(const int32_t* index, const float* dy, float* dx, float* dvalues,
                           int64_t rows, int64_t cols, cudaStream_t stream);
void max_excluding_forward(const float* x, const int32_t* exclude, float* out, int32_t* arg,
                           int64_t rows, int64_t cols, int64_t m, cudaStream_t stream);
void max_excluding_backward(const int32_t* arg, const float* dy, float* dx, int64_t rows,
                            int64_t cols, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
