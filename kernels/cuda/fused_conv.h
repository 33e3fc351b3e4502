// CUDA twin of kernels/cpu/fused_conv.h: a convolution of a frozen network on CUDA
// (engine/frozen_graph_cuda.h), NCHW, weights fixed when it is made, its epilogue fused
// by cuDNN:
//   forward        y = relu?(conv(x, w) + bias + r?)   cudnnConvolutionBiasActivationForward
//   backward_data  dx = conv_transpose(dz, w)          cudnnConvolutionBackwardData
//   (r: a residual shaped like y; dz: the gradient before the ReLU)
// Making one uploads the weights and chooses both algorithms (cudnn_conv.h: FMA math,
// timed once per shape, which synchronizes the device); forward() and backward_data()
// then only issue work to the stream it was made for: no allocation, no host sync, no
// device switch, so they can be captured in a CUDA graph.
#pragma once

#include <cuda_runtime_api.h>
#include <stddef.h>

#include <memory>
#include <string>

#include "kernels/common/conv2d_shape.h"

namespace ipg::kernels::cuda {

// Who runs the forward: cudnnConvolutionBiasActivationForward (the default), or cuDNN's
// graph API (cudnn_graph_conv.h), which may fuse where the legacy call runs extra
// kernels. Backward-data is the legacy call either way.
enum class ConvEngine { Legacy, Graph };

class FusedConv {
 public:
  // weight [c_out, c_in / groups, kh, kw] (OIHW per group) and bias [c_out] (null: none)
  // are host arrays, copied to the current device, whose `stream` all later work goes to.
  // s: one stride and one padding for both axes (s.uniform()); any dilation and groups.
  // ConvEngine::Graph throws CudaError when no graph engine meets the precision rules.
  FusedConv(const Conv2dShape& s, const float* weight, const float* bias, bool residual, bool relu,
            cudaStream_t stream, ConvEngine engine = ConvEngine::Legacy);
  ~FusedConv();
  FusedConv(const FusedConv&) = delete;
  FusedConv& operator=(const FusedConv&) = delete;

  const Conv2dShape& shape() const;
  // What runs the forward, for reports: "legacy fused call, algorithm N" or the graph
  // engine chosen.
  std::string forward_engine() const;
  // The workspace forward() and backward_data() need (the larger of the two).
  size_t workspace_bytes() const;
  // x [n, c_in, h, w], y and residual [n, c_out, h_out, w_out], device memory; residual
  // must be null exactly when the conv was made without one. y is overwritten and must
  // not overlap x or residual.
  void forward(const float* x, const float* residual, float* y, void* workspace,
               size_t workspace_bytes) const;
  // dz shaped like y, dx like x; dx is overwritten.
  void backward_data(const float* dz, float* dx, void* workspace, size_t workspace_bytes) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ipg::kernels::cuda
