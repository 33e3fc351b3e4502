// Optimizer updates on CUDA: one fused grid-stride pass per parameter tensor, reading
// parameter, gradient and state once and writing them once (the update is memory-bound).
#include "kernels/common/optimizer_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/optimizer.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

__global__ void sgd_update_kernel(float* param, const float* grad, float* momentum_buffer,
                                  int64_t n, SgdCoeffs c) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    param[i] = sgd_element(param[i], grad[i], momentum_buffer ? momentum_buffer + i : nullptr, c);
}

__global__ void adam_update_kernel(float* param, const float* grad, float* m, float* v, int64_t n,
                                   AdamCoeffs c) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    param[i] = adam_element(param[i], grad[i], m + i, v + i, c);
}

}  // namespace

void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n,
                const SgdCoeffs& c, cudaStream_t stream) {
  if (n <= 0) return;
  sgd_update_kernel<<<blocks_for(n), kThreads, 0, stream>>>(param, grad, momentum_buffer, n, c);
  IPG_CUDA_CHECK_LAUNCH();
}

void adam_update(float* param, const float* grad, float* m, float* v, int64_t n,
                 const AdamCoeffs& c, cudaStream_t stream) {
  if (n <= 0) return;
  adam_update_kernel<<<blocks_for(n), kThreads, 0, stream>>>(param, grad, m, v, n, c);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
