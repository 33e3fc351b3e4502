// CPU twins of kernels/cuda/strided.cu: a strided view copied out of a tensor, and its
// gradient added back into the tensor's places.
#pragma once

#include "kernels/common/strided_math.h"

namespace ipg::kernels::cpu {

// y[i] = x[strided_source(v, i)] for every output element i.
void strided_gather(const float* x, float* y, const StridedView& v);
// dx[strided_source(v, i)] += dy[i]; the view must be one-to-one (no two i share a place).
void strided_scatter_add(const float* dy, float* dx, const StridedView& v);

}  // namespace ipg::kernels::cpu
