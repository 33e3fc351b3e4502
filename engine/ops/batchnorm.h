// Batch normalization over the channel dimension of [n, c, h, w] or [n, c] inputs.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// x [n, c, h, w] (or [n, c]); gamma, beta [c] (parameters, may be frozen); running_mean,
// running_var [c] buffers. training: normalize with batch statistics (biased variance),
// and update the buffers in place: running = (1 - momentum) * running + momentum * batch
// stat, with the UNBIASED batch variance for running_var (PyTorch semantics, momentum 0.1
// default). eval: normalize with the running statistics. Differentiable in both modes
// with respect to x, gamma and beta.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

}  // namespace ipg::ops
