// CPU batch norm (OpenMP). Channel sums are split into (sample, channel) planes, each
// summed in double over kLanes interleaved partial sums (element i goes to lane i %
// kLanes; the lanes are then added in a fixed tree), and the plane sums are then added in
// sample order: the work parallelizes over n*c planes (enough even when c is small) while
// the result stays independent of the thread count. One running sum per plane was a
// chain of dependent additions, latency-bound at one element per add latency; the
// lanes vectorize and overlap.
#include "kernels/cpu/batchnorm.h"

#include <cstddef>
#include <vector>

#include "kernels/common/batchnorm_math.h"
#include "kernels/cpu/lane_sum.h"

namespace ipg::kernels::cpu {

namespace {

// Below this many elements, thread start-up costs more than the loop.
constexpr int64_t kParallelMin = 1 << 14;

// sums[k * c + ch] = sum over the planes of channel ch of what plane(nn, ch, acc) leaves
// in acc[k], k < K. `plane` sees each plane once, with acc zeroed.
template <int K, typename PlaneFn>
void per_channel_sums(int64_t n, int64_t c, int64_t s, PlaneFn plane, double* sums) {
  const int64_t planes = n * c;
  std::vector<double> partial(static_cast<std::size_t>(planes * K), 0.0);
#pragma omp parallel for schedule(static) if (planes * s >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p)
    plane(p / c, p % c, &partial[static_cast<std::size_t>(p * K)]);
  for (int k = 0; k < K; ++k)
    for (int64_t ch = 0; ch < c; ++ch) {
      double total = 0.0;
      for (int64_t nn = 0; nn < n; ++nn)
        total += partial[static_cast<std::size_t>((nn * c + ch) * K + k)];
      sums[k * c + ch] = total;
    }
}

// Runs f(plane pointer offset, channel) over every (sample, channel) plane in parallel.
template <typename F>
void for_each_plane(int64_t n, int64_t c, int64_t s, F f) {
  const int64_t planes = n * c;
#pragma omp parallel for schedule(static) if (planes * s >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) f(p * s, p % c);
}

}  // namespace

void batch_norm_stats(const float* x, float* mean, float* var, int64_t n, int64_t c, int64_t s) {
  const double count = static_cast<double>(n * s);
  std::vector<double> mu(static_cast<std::size_t>(c)), sq(static_cast<std::size_t>(c));
  per_channel_sums<1>(
      n, c, s,
      [&](int64_t nn, int64_t ch, double* acc) {
        const float* p = x + (nn * c + ch) * s;
        acc[0] = lane_sum(s, [p](int64_t i) { return static_cast<double>(p[i]); });
      },
      mu.data());
  for (double& m : mu) m /= count;
  // Second pass over deviations: E[x^2] - E[x]^2 cancels catastrophically when the
  // mean is large compared with the spread.
  per_channel_sums<1>(
      n, c, s,
      [&](int64_t nn, int64_t ch, double* acc) {
        const float* p = x + (nn * c + ch) * s;
        const double m = mu[static_cast<std::size_t>(ch)];
        acc[0] = lane_sum(s, [p, m](int64_t i) {
          const double d = p[i] - m;
          return d * d;
        });
      },
      sq.data());
  for (int64_t ch = 0; ch < c; ++ch) {
    mean[ch] = static_cast<float>(mu[static_cast<std::size_t>(ch)]);
    var[ch] = static_cast<float>(sq[static_cast<std::size_t>(ch)] / count);
  }
}

void batch_norm_update_running(const float* mean, const float* var, float* running_mean,
                               float* running_var, int64_t c, int64_t count, float momentum) {
  for (int64_t ch = 0; ch < c; ++ch)
    bn_update_running(mean[ch], var[ch], count, momentum, &running_mean[ch], &running_var[ch]);
}

void batch_norm_forward(const float* x, const float* mean, const float* var, const float* gamma,
                        const float* beta, float* y, int64_t n, int64_t c, int64_t s, float eps) {
  for_each_plane(n, c, s, [=](int64_t off, int64_t ch) {
    const float m = mean[ch], inv = bn_invstd(var[ch], eps), g = gamma[ch], b = beta[ch];
    for (int64_t i = off; i < off + s; ++i) y[i] = bn_normalize(x[i], m, inv, g, b);
  });
}

void batch_norm_backward_reduce(const float* x, const float* dy, const float* mean,
                                const float* var, float* sum_dy, float* sum_dy_xhat, int64_t n,
                                int64_t c, int64_t s, float eps) {
  const bool want_xhat = sum_dy_xhat != nullptr;
  std::vector<double> sums(static_cast<std::size_t>(2 * c));
  per_channel_sums<2>(
      n, c, s,
      [&](int64_t nn, int64_t ch, double* acc) {
        const float* g = dy + (nn * c + ch) * s;
        const float* p = x + (nn * c + ch) * s;
        const double m = mean[ch];
        acc[0] = lane_sum(s, [g](int64_t i) { return static_cast<double>(g[i]); });
        if (want_xhat)
          acc[1] =
              lane_sum(s, [g, p, m](int64_t i) { return static_cast<double>(g[i]) * (p[i] - m); });
      },
      sums.data());
  for (int64_t ch = 0; ch < c; ++ch) {
    if (sum_dy) sum_dy[ch] = static_cast<float>(sums[static_cast<std::size_t>(ch)]);
    // invstd is applied once per channel rather than per element: the same math, one
    // rounding less.
    if (want_xhat)
      sum_dy_xhat[ch] =
          static_cast<float>(sums[static_cast<std::size_t>(c + ch)] * bn_invstd(var[ch], eps));
  }
}

void batch_norm_backward_input_train(const float* x, const float* dy, const float* mean,
                                     const float* var, const float* gamma, const float* sum_dy,
                                     const float* sum_dy_xhat, float* dx, int64_t n, int64_t c,
                                     int64_t s, float eps, bool accumulate) {
  const int64_t count = n * s;
  for_each_plane(n, c, s, [=](int64_t off, int64_t ch) {
    const float m = mean[ch], inv = bn_invstd(var[ch], eps), g = gamma[ch];
    const float sd = sum_dy[ch], sdx = sum_dy_xhat[ch];
    if (accumulate)
      for (int64_t i = off; i < off + s; ++i)
        dx[i] += bn_train_input_grad(dy[i], x[i], m, inv, g, sd, sdx, count);
    else
      for (int64_t i = off; i < off + s; ++i)
        dx[i] = bn_train_input_grad(dy[i], x[i], m, inv, g, sd, sdx, count);
  });
}

void batch_norm_backward_input_eval(const float* dy, const float* var, const float* gamma,
                                    float* dx, int64_t n, int64_t c, int64_t s, float eps,
                                    bool accumulate) {
  for_each_plane(n, c, s, [=](int64_t off, int64_t ch) {
    const float inv = bn_invstd(var[ch], eps), g = gamma[ch];
    if (accumulate)
      for (int64_t i = off; i < off + s; ++i) dx[i] += bn_eval_input_grad(dy[i], inv, g);
    else
      for (int64_t i = off; i < off + s; ++i) dx[i] = bn_eval_input_grad(dy[i], inv, g);
  });
}

}  // namespace ipg::kernels::cpu
