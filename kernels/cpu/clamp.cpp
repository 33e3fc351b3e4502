// Clamp and HardSigmoid on CPU (OpenMP); every element is independent.
#include "kernels/cpu/clamp.h"

#include "kernels/common/clamp_math.h"

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = clamp_value(x[i], lo, hi);
}

void clamp_backward(const float* x, const float* dy, float* dx, float lo, float hi, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    if (clamp_passes_grad(x[i], lo, hi)) dx[i] += dy[i];
}

void hard_sigmoid_forward(const float* x, float* y, float alpha, float beta, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = hard_sigmoid_value(x[i], alpha, beta);
}

void hard_sigmoid_backward(const float* x, const float* dy, float* dx, float alpha, float beta,
                           int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] += hard_sigmoid_grad(x[i], dy[i], alpha, beta);
}

}  // namespace ipg::kernels::cpu
