// CPU twins of kernels/cuda/concat.cu: one part of a concatenation copied into its place
// in the output, and its gradient taken back out (accumulated: dx += ...).
#pragma once

#include "kernels/common/concat_math.h"

namespace ipg::kernels::cpu {

// y[concat_out_index(p, i)] = x[i] for every element i of the part.
void concat_forward(const float* x, float* y, const ConcatPart& p);
// dx[i] += dy[concat_out_index(p, i)].
void concat_backward(const float* dy, float* dx, const ConcatPart& p);

}  // namespace ipg::kernels::cpu
