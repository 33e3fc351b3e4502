// cuDNN's convolution plumbing, shared by the plain convolutions (conv2d.cu) and the fused
// ones of frozen networks (fused_conv.cpp): one handle per stream, RAII descriptors, and
// the algorithm of each (device, pass, shape), chosen once and cached for the process.
//
// Precision: every convolution descriptor is set to CUDNN_FMA_MATH and only algorithms
// that report FMA math are accepted. TF32 (cuDNN's default on Ampere and later) has
// ~1e-3 relative error, enough to flip labels of fingerprints that sit at the decision
// boundary. FFT and Winograd algorithms are excluded too (see cudnn_conv.cpp).
//
// Algorithm: chosen by timing the candidates (cudnnFind, which synchronizes the device)
// and cached. Excluded: algorithms needing more than kConvWorkspaceCap of workspace, and
// non-deterministic ones (the atomic-based backward-data/backward-filter ALGO_0) whenever
// a deterministic one fits, so the same inputs give the same gradients on every run.
#pragma once

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stddef.h>

#include "kernels/common/conv2d_shape.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"  // kConvWorkspaceCap

namespace ipg::kernels::cuda {

// The cuDNN handle of a stream (created on first use, bound to it, kept for the process).
cudnnHandle_t cudnn_handle(cudaStream_t stream);

template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { IPG_CUDNN_CHECK(Create(&desc_)); }
  ~CudnnDescriptor() { Destroy(desc_); }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  T get() const { return desc_; }

 private:
  T desc_ = nullptr;
};

using TensorDesc = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor,
                                   cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor,
                                   cudnnDestroyFilterDescriptor>;
using ConvDesc = CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                                 cudnnDestroyConvolutionDescriptor>;
using ActivationDesc = CudnnDescriptor<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor,
                                       cudnnDestroyActivationDescriptor>;

// Descriptors of one convolution pass (x: NCHW input, w: OIHW filter, y: NCHW output, conv
// with FMA math) and the algorithm chosen for it: a cudnnConvolution{Fwd,BwdData,
// BwdFilter}Algo_t by pass, with the workspace it needs.
struct ConvPlan {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  int algo = 0;
  size_t workspace_bytes = 0;
};

// The plan of (current device, pass, s), made on first use (the algorithm search times
// the candidates on `stream`'s device) and kept for the process: the reference stays
// valid. Throws CudaError when no FP32 (FMA) algorithm fits the workspace cap.
const ConvPlan& conv_plan(ConvPass pass, const Conv2dShape& s, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
