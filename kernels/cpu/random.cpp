// Philox fills on CPU, the reference for the CUDA ones.
#include "kernels/cpu/random.h"

#include "kernels/common/philox.h"

namespace ipg::kernels::cpu {

void fill_uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
#pragma omp parallel for schedule(static) if (n >= (1 << 14))
  for (int64_t i = 0; i < n; ++i) y[i] = philox_uniform(seed, offset + i, lo, hi);
}

void fill_normal(float* y, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev) {
#pragma omp parallel for schedule(static) if (n >= (1 << 14))
  for (int64_t i = 0; i < n; ++i) y[i] = philox_normal(seed, offset + i, mean, stddev);
}

}  // namespace ipg::kernels::cpu
