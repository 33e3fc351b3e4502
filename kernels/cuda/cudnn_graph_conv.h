// The forward of a frozen network's fused convolution through cuDNN's graph (backend)
// API, as an alternative to cudnnConvolutionBiasActivationForward (fused_conv.h):
//   y = relu?(conv(x, w) + bias + r?)     NCHW, FP32
// described as one operation graph (convolution, then pointwise add / add / ReLU on
// virtual tensors) that cuDNN may run as one kernel where an engine fuses the pattern,
// which the legacy call does only for its implicit-precomputed-GEMM algorithm.
//
// The same precision rules as the legacy path (cudnn_conv.h): engines whose numerical
// notes say tensor cores (TF32), down-converted inputs, reduced-precision reduction, FFT,
// Winograd or non-determinism are refused, as are those over kConvWorkspaceCap. The
// candidates left are timed once on the stream (like cudnnFind, this synchronizes) and the
// fastest kept. A shape no engine accepts under those rules throws CudaError naming
// cuDNN's answer; the caller keeps the legacy call then.
//
// forward() issues work to the stream only (its variant pack is rebuilt on the host when
// the pointers change, which a frozen network's fixed buffers never do), so it can be
// captured in a CUDA graph. Not thread-safe: one conv, one stream, one thread.
#pragma once

#include <cuda_runtime_api.h>
#include <stddef.h>

#include <memory>
#include <string>

#include "kernels/common/conv2d_shape.h"

namespace ipg::kernels::cuda {

class GraphConvForward {
 public:
  // s: uniform stride and padding (s.uniform()), any dilation and groups.
  GraphConvForward(const Conv2dShape& s, bool residual, bool relu, cudaStream_t stream);
  ~GraphConvForward();
  GraphConvForward(const GraphConvForward&) = delete;
  GraphConvForward& operator=(const GraphConvForward&) = delete;

  size_t workspace_bytes() const;
  // Which engine runs and how it was chosen, for reports: "graph engine 7 (fastest of 3
  // accepted, 12 offered)".
  const std::string& engine() const;
  // x, w (OIHW per group), bias [c_out], residual (null exactly when made without one), y:
  // device memory, every pointer 16-byte aligned (cudaMalloc's are); y is overwritten.
  void forward(const float* x, const float* w, const float* bias, const float* residual, float* y,
               void* workspace, size_t workspace_bytes) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds the operation graph alone, without a handle, and returns how many engine
// configurations cuDNN's heuristics (mode A and fallback) say they rank for it. cuDNN 9
// does both without a device (it then hands no configuration over), so a machine with no
// GPU still checks that the graph is well formed: a wrong attribute type or shape is
// cuDNN's error here, not on the next GPU run. Throws CudaError when cuDNN refuses the
// graph.
int graph_conv_offered_engines(const Conv2dShape& s, bool residual, bool relu);

}  // namespace ipg::kernels::cuda
