// Ops that select by index: row argmax (labels from logits).
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// [n, k] float -> int32 [n], index of each row's maximum (ties: smallest index).
Tensor argmax(const Tensor& scores);

}  // namespace ipg::ops
