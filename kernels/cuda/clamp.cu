// Clamp and HardSigmoid on CUDA: grid-stride loops over kernels/common/clamp_math.h.
#include "kernels/common/clamp_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/clamp.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

__global__ void clamp_forward_kernel(const float* x, float* y, float lo, float hi, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = clamp_value(x[i], lo, hi);
}

__global__ void clamp_backward_kernel(const float* x, const float* dy, float* dx, float lo,
                                      float hi, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    if (clamp_passes_grad(x[i], lo, hi)) dx[i] += dy[i];
}

__global__ void hard_sigmoid_forward_kernel(const float* x, float* y, float alpha, float beta,
                                            int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = hard_sigmoid_value(x[i], alpha, beta);
}

__global__ void hard_sigmoid_backward_kernel(const float* x, const float* dy, float* dx,
                                             float alpha, float beta, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    dx[i] += hard_sigmoid_grad(x[i], dy[i], alpha, beta);
}

}  // namespace

void hard_sigmoid_forward(const float* x, float* y, float alpha, float beta, int64_t n,
                          cudaStream_t stream) {
  if (n <= 0) return;
  hard_sigmoid_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, alpha, beta, n);
  IPG_CUDA_CHECK_LAUNCH();
}

void hard_sigmoid_backward(const float* x, const float* dy, float* dx, float alpha, float beta,
                           int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  hard_sigmoid_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, dy, dx, alpha, beta, n);
  IPG_CUDA_CHECK_LAUNCH();
}

void clamp_forward(const float* x, float* y, float lo, float hi, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  clamp_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, lo, hi, n);
  IPG_CUDA_CHECK_LAUNCH();
}

void clamp_backward(const float* x, const float* dy, float* dx, float lo, float hi, int64_t n,
                    cudaStream_t stream) {
  if (n <= 0) return;
  clamp_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, dy, dx, lo, hi, n);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
