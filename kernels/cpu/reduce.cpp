// CPU reductions. Long sums are split into fixed blocks so that the parallel result is
// independent of how many threads run them.
#include "kernels/cpu/reduce.h"

#include <cstddef>
#include <vector>

namespace ipg::kernels::cpu {

namespace {
constexpr int64_t kSumBlock = 4096;
constexpr int64_t kParallelMin = 1 << 14;

// Sum of one block, accumulated in double: the CPU twin is the reference, and a float
// running sum over thousands of terms drifts by more than the GPU's tree reduction.
double block_sum(const float* x, int64_t begin, int64_t end, int64_t stride) {
  if (stride != 1) {
    double acc = 0.0;
    for (int64_t k = begin; k < end; ++k) acc += x[k * stride];
    return acc;
  }
  // Contiguous: eight independent lanes (a fixed order, so still deterministic) let the
  // compiler vectorize and hide the add latency; one running sum is latency-bound.
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = begin;
  for (; k + 8 <= end; k += 8)
    for (int j = 0; j < 8; ++j) lane[j] += x[k + j];
  double acc =
      ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; k < end; ++k) acc += x[k];
  return acc;
}

// Sum of x[0], x[stride], ... (len terms), block by block in order.
double strided_sum_sequential(const float* x, int64_t len, int64_t stride) {
  double total = 0.0;
  for (int64_t b = 0; b < len; b += kSumBlock)
    total += block_sum(x, b, b + kSumBlock < len ? b + kSumBlock : len, stride);
  return total;
}
}  // namespace

void sum_dim(const float* x, float* y, int64_t outer, int64_t dim, int64_t inner, float scale,
             float beta) {
  const int64_t n_out = outer * inner;
  if (n_out >= 64 || dim < kParallelMin) {
#pragma omp parallel for schedule(static) if (n_out * dim >= kParallelMin)
    for (int64_t j = 0; j < n_out; ++j) {
      const int64_t o = j / inner, i = j % inner;
      const double s = strided_sum_sequential(x + o * dim * inner + i, dim, inner);
      y[j] = (beta == 0.f ? 0.f : beta * y[j]) + static_cast<float>(scale * s);
    }
    return;
  }
  // Few long rows (e.g. a full sum): parallelize over blocks of each row; the block
  // sums are then added in order, exactly as strided_sum_sequential does.
  const int64_t n_blocks = (dim + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(static_cast<std::size_t>(n_blocks));
  for (int64_t j = 0; j < n_out; ++j) {
    const int64_t o = j / inner, i = j % inner;
    const float* row = x + o * dim * inner + i;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t s = b * kSumBlock, e = s + kSumBlock < dim ? s + kSumBlock : dim;
      partial[static_cast<std::size_t>(b)] = block_sum(row, s, e, inner);
    }
    double total = 0.0;
    for (double p : partial) total += p;
    y[j] = (beta == 0.f ? 0.f : beta * y[j]) + static_cast<float>(scale * total);
  }
}

void sum_dim_backward(const float* dy, float* dx, int64_t outer, int64_t dim, int64_t inner,
                      float scale) {
  const int64_t n = outer * dim * inner;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t k = 0; k < n; ++k) {
    const int64_t o = k / (dim * inner), i = k % inner;
    dx[k] += scale * dy[o * inner + i];
  }
}

void sum_to_shape(const float* x, float* y, const ReduceIndex& ri, int64_t n_dst) {
#pragma omp parallel for schedule(static) if (n_dst >= 64)
  for (int64_t j = 0; j < n_dst; ++j) y[j] += reduce_preimage_sum(ri, x, j);
}

}  // namespace ipg::kernels::cpu
