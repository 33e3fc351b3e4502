// Classification losses on logits. Both ops take [n, k] float32 logits and run on their
// device.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// Fused, numerically stable softmax cross-entropy, mean over the batch: logits [n, k],
// labels int32 [n] on the same device (each in [0, k), else std::invalid_argument naming
// the row) -> scalar []. Stable for logits of any magnitude (shifted by the row max).
// Differentiable in the logits: (softmax - onehot) / n * grad. On CUDA the label check
// reads one int back (a stream sync).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);

// Softmax along the last axis (ONNX Softmax, axis -1): [..., k] -> [..., k], each row
// shifted by its max; differentiable.
Tensor softmax(const Tensor& logits);

}  // namespace ipg::ops
