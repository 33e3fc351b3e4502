// CPU dropout (OpenMP), one iteration per group of four elements (one Philox call).
#include "kernels/cpu/dropout.h"

#include "kernels/common/dropout_math.h"

namespace ipg::kernels::cpu {

namespace {

// Below this many groups, thread start-up costs more than the loop.
constexpr int64_t kParallelMin = 1 << 12;

// Calls f(i, multiplier of element i) for every element, group by group.
template <typename F>
void for_each_masked(int64_t n, float p, uint64_t seed, uint64_t offset, F f) {
  const int64_t groups = static_cast<int64_t>(dropout_counters(n));
  const float scale = dropout_scale(p);
#pragma omp parallel for schedule(static) if (groups >= kParallelMin)
  for (int64_t g = 0; g < groups; ++g) {
    float mult[kDropoutPerCounter];
    dropout_group(seed, offset, g, p, scale, mult);
    const int64_t base = g * kDropoutPerCounter;
    for (int k = 0; k < kDropoutPerCounter && base + k < n; ++k) f(base + k, mult[k]);
  }
}

}  // namespace

void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset) {
  for_each_masked(n, p, seed, offset, [=](int64_t i, float m) { y[i] = x[i] * m; });
}

void dropout_backward(const float* dy, float* dx, int64_t n, float p, uint64_t seed,
                      uint64_t offset) {
  for_each_masked(n, p, seed, offset, [=](int64_t i, float m) { dx[i] += dy[i] * m; });
}

}  // namespace ipg::kernels::cpu
