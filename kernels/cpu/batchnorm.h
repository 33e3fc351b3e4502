// CPU twins of kernels/cuda/batchnorm.cu. Activations x, y, dy, dx are [n, c, s]
// (s = h*w, or 1 for [n, c]); mean, var, gamma, beta and the sums are per channel [c].
// Backward kernels add into dx (+=) when `accumulate` is true and write it (=) when it is
// false (a new, uninitialized buffer from autodiff; see kernels/cpu/elementwise.h).
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// Batch mean and biased variance of each channel: two passes (mean, then squared
// deviations) in double, per (sample, channel) plane, the planes added in order, so the
// result has the same bits for any thread count.
void batch_norm_stats(const float* x, float* mean, float* var, int64_t n, int64_t c, int64_t s);
// running = (1 - momentum) * running + momentum * batch statistic, with the unbiased
// variance (count = n*s values per channel, count > 1).
void batch_norm_update_running(const float* mean, const float* var, float* running_mean,
                               float* running_var, int64_t c, int64_t count, float momentum);
// y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel.
void batch_norm_forward(const float* x, const float* mean, const float* var, const float* gamma,
                        const float* beta, float* y, int64_t n, int64_t c, int64_t s, float eps);
// Per-channel sum(dy) and sum(dy * xhat), xhat = (x - mean) / sqrt(var + eps): the beta
// and gamma gradients, and what the training-mode input gradient needs. Overwrites; either
// output may be null (not computed), and x may be null when sum_dy_xhat is.
void batch_norm_backward_reduce(const float* x, const float* dy, const float* mean,
                                const float* var, float* sum_dy, float* sum_dy_xhat, int64_t n,
                                int64_t c, int64_t s, float eps);
// dx (+)= input gradient through the batch statistics (training mode), from the sums above.
void batch_norm_backward_input_train(const float* x, const float* dy, const float* mean,
                                     const float* var, const float* gamma, const float* sum_dy,
                                     const float* sum_dy_xhat, float* dx, int64_t n, int64_t c,
                                     int64_t s, float eps, bool accumulate);
// dx (+)= dy * gamma / sqrt(var + eps) (eval mode: the statistics are constants).
void batch_norm_backward_input_eval(const float* dy, const float* var, const float* gamma,
                                    float* dx, int64_t n, int64_t c, int64_t s, float eps,
                                    bool accumulate);

}  // namespace ipg::kernels::cpu
