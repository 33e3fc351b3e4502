// Per-element forward and derivative formulas shared by kernels/cpu and kernels/cuda.
#pragma once

#include <math.h>

#include "kernels/common/erf_math.h"
#include "kernels/common/hd.h"
#include "kernels/common/tanh_math.h"

namespace ipg::kernels {

// Unary ops. The derivative takes both the input x and the output y so each op can use
// whichever is cheaper (tanh: 1 - y^2).
enum class UnaryOp : int {
  Relu, Neg, Sign, Tanh, Atanh, Square, Exp, Log, Abs, Sqrt,
  Sigmoid,    // 1 / (1 + e^-x), without overflow for large |x|
  HardSwish,  // x * min(max(x + 3, 0), 6) / 6 (MobileNetV3, ONNX HardSwish)
  Erf,        // the error function (GELU's exact form, ONNX Erf), erff_hd
  Gelu,       // x (1 + erf(x / sqrt 2)) / 2 (ONNX Gelu, the exported pattern fused), gelu_hd
};

IPG_HD float unary_apply(UnaryOp op, float x) {
  switch (op) {
    case UnaryOp::Relu:
      return x > 0.f ? x : 0.f;
    case UnaryOp::Neg:
      return -x;
    case UnaryOp::Sign:
      return (x > 0.f) ? 1.f : ((x < 0.f) ? -1.f : 0.f);
    case UnaryOp::Tanh:
      return tanhf_hd(x);
    case UnaryOp::Atanh:
      return atanhf(x);
    case UnaryOp::Square:
      return x * x;
    case UnaryOp::Exp:
      return expf(x);
    case UnaryOp::Log:
      return logf(x);
    case UnaryOp::Abs:
      return fabsf(x);
    case UnaryOp::Sqrt:
      return sqrtf(x);
    case UnaryOp::Sigmoid: {
      // e^-|x| never overflows; the two branches are the same function.
      const float e = expf(-fabsf(x));
      return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
    }
    case UnaryOp::HardSwish:
      return x <= -3.f ? 0.f : (x >= 3.f ? x : x * (x + 3.f) / 6.f);
    case UnaryOp::Erf:
      return erff_hd(x);
    case UnaryOp::Gelu:
      return gelu_hd(x);
  }
  return 0.f;
}

// dy/dx at x (with y = f(x)); sign has derivative 0 everywhere it is defined.
IPG_HD float unary_derivative(UnaryOp op, float x, float y) {
  switch (op) {
    case UnaryOp::Relu:
      return x > 0.f ? 1.f : 0.f;
    case UnaryOp::Neg:
      return -1.f;
    case UnaryOp::Sign:
      return 0.f;
    case UnaryOp::Tanh:
      return 1.f - y * y;
    case UnaryOp::Atanh:
      return 1.f / (1.f - x * x);
    case UnaryOp::Square:
      return 2.f * x;
    case UnaryOp::Exp:
      return y;
    case UnaryOp::Log:
      return 1.f / x;
    case UnaryOp::Abs:
      return (x > 0.f) ? 1.f : ((x < 0.f) ? -1.f : 0.f);
    case UnaryOp::Sqrt:
      return 0.5f / y;
    case UnaryOp::Sigmoid:
      return y * (1.f - y);
    case UnaryOp::HardSwish:
      // PyTorch's one-sided choices at the kinks: 0 below -3, the middle piece up to 3.
      return x < -3.f ? 0.f : (x <= 3.f ? (2.f * x + 3.f) / 6.f : 1.f);
    case UnaryOp::Erf:
      return erff_hd_derivative(x);
    case UnaryOp::Gelu:
      return gelu_hd_derivative(x);
  }
  return 0.f;
}

// The gradient contribution dy * f'(x). ReLU selects instead of multiplying (PyTorch's
// threshold semantics: 0 where x <= 0 even when dy is inf or NaN), which is also the form
// compilers turn into vector blends.
IPG_HD float unary_grad(UnaryOp op, float x, float y, float dy) {
  if (op == UnaryOp::Relu) return x > 0.f ? dy : 0.f;
  return dy * unary_derivative(op, x, y);
}

enum class BinaryOp : int { Add, Sub, Mul, Div };

IPG_HD float binary_apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add:
      return a + b;
    case BinaryOp::Sub:
      return a - b;
    case BinaryOp::Mul:
      return a * b;
    case BinaryOp::Div:
      return a / b;
  }
  return 0.f;
}

// d(a op b)/da and d(a op b)/db.
IPG_HD float binary_grad_a(BinaryOp op, float /*a*/, float b) {
  switch (op) {
    case BinaryOp::Add:
      return 1.f;
    case BinaryOp::Sub:
      return 1.f;
    case BinaryOp::Mul:
      return b;
    case BinaryOp::Div:
      return 1.f / b;
  }
  return 0.f;
}

IPG_HD float binary_grad_b(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add:
      return 1.f;
    case BinaryOp::Sub:
      return -1.f;
    case BinaryOp::Mul:
      return a;
    case BinaryOp::Div:
      return -a / (b * b);
  }
  return 0.f;
}

}  // namespace ipg::kernels
