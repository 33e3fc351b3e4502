// Convolutions on cuDNN, plus the two bias kernels (bias add and bias gradient). The
// descriptors, handles and the cached choice of algorithm (FMA math only, no transform-
// domain algorithms, deterministic where one fits) are cudnn_conv.h's.
//
// cuDNN 9 marks its legacy convolution API deprecated in favour of the graph API; its
// users here (this file, cudnn_conv.cpp, fused_conv.cpp) silence the warning, nothing
// else does. (cuDNN emits it only when CUDNN_WARN_DEPRECATED is defined; the host
// compiler is the one that reports it.)
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

// ---------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------

__global__ void add_bias_kernel(float* y, const float* bias, int64_t total, int64_t c_out,
                                int64_t plane) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] += bias[(i / plane) % c_out];
}

constexpr int kBiasGradThreads = 256;

// One block per channel. Each thread sums a fixed strided slice in double, then a
// fixed-shape tree combines the slices: no atomics, so the bits do not depend on
// scheduling.
__global__ void bias_grad_kernel(const float* dy, float* dbias, int64_t n, int64_t c_out,
                                 int64_t plane, bool accumulate) {
  __shared__ double partial[kBiasGradThreads];
  const int64_t c = blockIdx.x;
  const int64_t count = n * plane;
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kBiasGradThreads) {
    const int64_t b = i / plane;
    acc += dy[(b * c_out + c) * plane + (i - b * plane)];
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = kBiasGradThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const float g = static_cast<float>(partial[0]);
    dbias[c] = accumulate ? dbias[c] + g : g;
  }
}

void launch_bias_grad(const Conv2dShape& s, const float* dy, float* dbias, bool accumulate,
                      cudaStream_t stream) {
  if (s.c_out == 0) return;
  bias_grad_kernel<<<static_cast<unsigned>(s.c_out), kBiasGradThreads, 0, stream>>>(
      dy, dbias, s.n, s.c_out, s.h_out() * s.w_out(), accumulate);
  IPG_CUDA_CHECK_LAUNCH();
}

void check_workspace(const ConvPlan& plan, ConvPass pass, const Conv2dShape& s, size_t bytes) {
  if (bytes < plan.workspace_bytes)
    throw std::invalid_argument(describe(pass, s) + ": workspace of " + std::to_string(bytes) +
                                " bytes, needs " + std::to_string(plan.workspace_bytes));
}

const float kOne = 1.f, kZero = 0.f;

}  // namespace

// ---------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------

size_t conv2d_forward_workspace(const Conv2dShape& s, bool /*with_bias*/, cudaStream_t stream) {
  return conv_plan(ConvPass::Forward, s, stream).workspace_bytes;
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const ConvPlan& p = conv_plan(ConvPass::Forward, s, stream);
  check_workspace(p, ConvPass::Forward, s, workspace_bytes);
  IPG_CUDNN_CHECK(cudnnConvolutionForward(cudnn_handle(stream), &kOne, p.x.get(), x, p.w.get(),
                                          weight, p.conv.get(),
                                          static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), workspace,
                                          workspace_bytes, &kZero, p.y.get(), y));
  if (bias) {
    const int64_t plane = s.h_out() * s.w_out(), total = s.n * s.c_out * plane;
    add_bias_kernel<<<blocks_for(total), kThreads, 0, stream>>>(y, bias, total, s.c_out, plane);
    IPG_CUDA_CHECK_LAUNCH();
  }
}

// The workspace does not depend on beta: one algorithm per shape and pass.
size_t conv2d_backward_data_workspace(const Conv2dShape& s, bool /*accumulate*/,
                                      cudaStream_t stream) {
  return conv_plan(ConvPass::BackwardData, s, stream).workspace_bytes;
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx,
                          bool accumulate, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream) {
  const ConvPlan& p = conv_plan(ConvPass::BackwardData, s, stream);
  check_workspace(p, ConvPass::BackwardData, s, workspace_bytes);
  IPG_CUDNN_CHECK(cudnnConvolutionBackwardData(
      cudnn_handle(stream), &kOne, p.w.get(), weight, p.y.get(), dy, p.conv.get(),
      static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo), workspace, workspace_bytes,
      accumulate ? &kOne : &kZero, p.x.get(), dx));
}

size_t conv2d_backward_weights_workspace(const Conv2dShape& s, bool /*with_bias*/,
                                         bool /*accumulate*/, cudaStream_t stream) {
  return conv_plan(ConvPass::BackwardWeights, s, stream).workspace_bytes;
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dweight,
                             float* dbias, bool accumulate, void* workspace,
                             size_t workspace_bytes, cudaStream_t stream) {
  const ConvPlan& p = conv_plan(ConvPass::BackwardWeights, s, stream);
  check_workspace(p, ConvPass::BackwardWeights, s, workspace_bytes);
  IPG_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      cudnn_handle(stream), &kOne, p.x.get(), x, p.y.get(), dy, p.conv.get(),
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo), workspace, workspace_bytes,
      accumulate ? &kOne : &kZero, p.w.get(), dweight));
  if (dbias) launch_bias_grad(s, dy, dbias, accumulate, stream);
}

size_t conv2d_backward_workspace(const Conv2dShape& s, bool with_bias, bool acc_dx, bool acc_w,
                                 cudaStream_t stream) {
  return std::max(conv2d_backward_data_workspace(s, acc_dx, stream),
                  conv2d_backward_weights_workspace(s, with_bias, acc_w, stream));
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight,
                     float* dx, bool acc_dx, float* dweight, float* dbias, bool acc_w,
                     void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  conv2d_backward_data(s, dy, weight, dx, acc_dx, workspace, workspace_bytes, stream);
  conv2d_backward_weights(s, x, dy, dweight, dbias, acc_w, workspace, workspace_bytes, stream);
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias,
                          cudaStream_t stream) {
  launch_bias_grad(s, dy, dbias, /*accumulate=*/true, stream);
}

}  // namespace ipg::kernels::cuda
