// CPU twins of kernels/cuda/dropout.cu. The mask is never stored: forward and backward
// regenerate it from (seed, offset), which is cheaper than a mask tensor's memory traffic.
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// y = x * mask * 1/(1-p), mask drawn from Philox counters [offset, offset +
// dropout_counters(n)) under seed.
void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset);
// dx += dy * mask * 1/(1-p), with the forward's (seed, offset).
void dropout_backward(const float* dy, float* dx, int64_t n, float p, uint64_t seed,
                      uint64_t offset);

}  // namespace ipg::kernels::cpu
