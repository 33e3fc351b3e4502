// CUDA twin of kernels/cpu/conv2d.h (same names and semantics, stream last), on cuDNN.
// The first call for a shape chooses and caches its algorithm, which times the candidates
// and synchronizes the device: run each shape once before capturing a CUDA graph.
// Later calls issue work to `stream` only: no host sync, no allocation.
#pragma once

#include <cuda_runtime_api.h>
#include <stddef.h>

#include "kernels/common/conv2d_shape.h"

namespace ipg::kernels::cuda {

// Largest workspace any algorithm may use; faster ones that need more are not considered.
constexpr size_t kConvWorkspaceCap = size_t{256} << 20;

size_t conv2d_forward_workspace(const Conv2dShape& s, bool with_bias, cudaStream_t stream);
void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream);

// accumulate: cuDNN's beta, 1 (add) or 0 (write; the output is not read).
size_t conv2d_backward_data_workspace(const Conv2dShape& s, bool accumulate, cudaStream_t stream);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx,
                          bool accumulate, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream);

size_t conv2d_backward_weights_workspace(const Conv2dShape& s, bool with_bias, bool accumulate,
                                         cudaStream_t stream);
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dweight,
                             float* dbias, bool accumulate, void* workspace,
                             size_t workspace_bytes, cudaStream_t stream);

// Both backward passes (kernels/cpu/conv2d.h): here the two cuDNN calls one after the
// other, in one workspace as large as the larger pass needs.
size_t conv2d_backward_workspace(const Conv2dShape& s, bool with_bias, bool acc_dx, bool acc_w,
                                 cudaStream_t stream);
void conv2d_backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight,
                     float* dx, bool acc_dx, float* dweight, float* dbias, bool acc_w,
                     void* workspace, size_t workspace_bytes, cudaStream_t stream);

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
