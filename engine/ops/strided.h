// Transposes and slices: copies of a strided view of a tensor (kernels/*/strided),
// differentiable in the tensor. For graphs read from ONNX files (ShuffleNet's channel
// shuffle, its channel split, a test-time flip); our own networks need neither.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace ipg::ops {

// y's axis k is x's axis perm[k] (perm a permutation of 0..rank-1, rank <= 8).
Tensor permute(const Tensor& x, const std::vector<int>& perm);
// Along `axis` (negative: from the end), the elements start, start + step, ... before
// `end` (step > 0) or after it (step < 0; end -1 reaches element 0): at least one, with
// start inside the axis and end in [-1, size]. Other axes whole. Throws ShapeError
// naming the shape otherwise.
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end, int64_t step = 1);

}  // namespace ipg::ops
