// CUDA twins of kernels/cpu/optimizer.h (same names and semantics, stream last).
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/optimizer_math.h"

namespace ipg::kernels::cuda {

void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n,
                const SgdCoeffs& c, cudaStream_t stream);
void adam_update(float* param, const float* grad, float* m, float* v, int64_t n,
                 const AdamCoeffs& c, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
