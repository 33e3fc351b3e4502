// CUDA twins of kernels/cpu/batchnorm.h (same names and semantics, stream last).
// Per-channel reductions use one block per channel and a fixed-shape tree in double, never
// float atomics: the same bits run to run.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace ipg::kernels::cuda {

void batch_norm_stats(const float* x, float* mean, float* var, int64_t n, int64_t c, int64_t s,
                      cudaStream_t stream);
void batch_norm_update_running(const float* mean, const float* var, float* running_mean,
                               float* running_var, int64_t c, int64_t count, float momentum,
                               cudaStream_t stream);
void batch_norm_forward(const float* x, const float* mean, const float* var, const float* gamma,
                        const float* beta, float* y, int64_t n, int64_t c, int64_t s, float eps,
                        cudaStream_t stream);
void batch_norm_backward_reduce(const float* x, const float* dy, const float* mean,
                                const float* var, float* sum_dy, float* sum_dy_xhat, int64_t n,
                                int64_t c, int64_t s, float eps, cudaStream_t stream);
void batch_norm_backward_input_train(const float* x, const float* dy, const float* mean,
                                     const float* var, const float* gamma, const float* sum_dy,
                                     const float* sum_dy_xhat, float* dx, int64_t n, int64_t c,
                                     int64_t s, float eps, bool accumulate, cudaStream_t stream);
void batch_norm_backward_input_eval(const float* dy, const float* var, const float* gamma,
                                    float* dx, int64_t n, int64_t c, int64_t s, float eps,
                                    bool accumulate, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
