// CPU twin of kernels/cuda/random.cu: counter-based (Philox) fills. Element i takes
// counter offset + i, so the values depend only on (seed, offset), never on threads.
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

void fill_uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
void fill_normal(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev);

}  // namespace ipg::kernels::cpu
