// CUDA twins of kernels/cpu/elementwise.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/broadcast.h"
#include "kernels/common/elementwise_math.h"

namespace ipg::kernels::cuda {

void fill(float* y, float value, int64_t n, cudaStream_t stream);
void fill_i32(int32_t* y, int32_t value, int64_t n, cudaStream_t stream);
void affine(const float* x, float* y, float a, float b, int64_t n, cudaStream_t stream);
void axpy(const float* x, float* y, float alpha, int64_t n, cudaStream_t stream);
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, cudaStream_t stream);
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n, bool accumulate, cudaStream_t stream);
void binary_forward(BinaryOp op, const float* a, const float* b, float* out,
                    const BroadcastIndex& bi, int64_t n, cudaStream_t stream);
void binary_backward(BinaryOp op, const float* a, const float* b, const float* dy, float* da,
                     float* db, const BroadcastIndex& bi, int64_t n, bool acc_a, bool acc_b,
                     cudaStream_t stream);

}  // namespace ipg::kernels::cuda
