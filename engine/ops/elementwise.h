// Differentiable elementwise ops. Binary ops broadcast NumPy-style (shapes aligned from
// the right; a dimension of 1 stretches); the gradient of a broadcast operand is summed
// back to its shape. All operands must be float32 on one device.
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

// a*x + b for scalars a, b.
Tensor affine(const Tensor& x, float a, float b);
inline Tensor add_scalar(const Tensor& x, float s) { return affine(x, 1.f, s); }
inline Tensor mul_scalar(const Tensor& x, float s) { return affine(x, s, 0.f); }

Tensor relu(const Tensor& x);
Tensor neg(const Tensor& x);
Tensor sign(const Tensor& x);  // gradient 0
Tensor tanh(const Tensor& x);
Tensor atanh(const Tensor& x);
Tensor square(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sqrt(const Tensor& x);
// 1 / (1 + e^-x); gradient y (1 - y).
Tensor sigmoid(const Tensor& x);
// x * min(max(x + 3, 0), 6) / 6 (ONNX HardSwish, PyTorch hardswish); gradient 0 below -3,
// (2x + 3) / 6 on [-3, 3], 1 above. (hard_sigmoid is in clamp.h.)
Tensor hard_swish(const Tensor& x);
// The error function (ONNX Erf: GELU's exact form x (1 + erf(x / sqrt 2)) / 2); gradient
// 2 / sqrt(pi) e^(-x^2). Both by kernels/common/erf_math.h's formulas, vectorized on the
// CPU, the same bits on both devices (erf within 1.36 ulp, its derivative 2.25).
Tensor erf(const Tensor& x);
// GELU, exact form: x (1 + erf(x / sqrt 2)) / 2 (PyTorch's nn.GELU(), ONNX Gelu); gradient
// Phi(x) + x phi(x). One op, one kernel each way, where the same function written with erf
// takes five ops and keeps five tensors for backward.
Tensor gelu(const Tensor& x);

// In place, outside the graph: dst += src (same shape and device). For gradient
// accumulation and optimizer code.
void add_(Tensor& dst, const Tensor& src);
// dst += alpha * src.
void axpy_(Tensor& dst, const Tensor& src, float alpha);

// Shape two operands broadcast to; throws ShapeError naming the op and both shapes.
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

}  // namespace ipg::ops
