// CPU twins of kernels/cuda/pad.cu: Keras-style ZeroPadding2D over `planes` = n*c planes.
#pragma once

#include <stdint.h>

#include "kernels/common/pool_math.h"

namespace ipg::kernels::cpu {

// y [planes, oh, ow]: x in the interior, zeros in the border.
void zero_pad2d_forward(const float* x, float* y, int64_t planes, const PadGeometry& g);
// dx += the interior of dy.
void zero_pad2d_backward(const float* dy, float* dx, int64_t planes, const PadGeometry& g);

}  // namespace ipg::kernels::cpu
