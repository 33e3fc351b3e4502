// The element-wise activations of a frozen network's activation step (engine/plan.h,
// PlanStep::Kind::Act) as one descriptor and its forward and gradient formulas, shared by
// kernels/cpu/blocked.cpp and kernels/cuda/blocked.cu. Each kind is the engine op it
// stands for, formula for formula (elementwise_math.h's unary ops, clamp_math.h's clamp),
// so a fused step and the autodiff graph differ only by rounding where a kind combines
// two ops (Silu; ClampAffine with a != 1 or b != 0).
#pragma once

#include "kernels/common/clamp_math.h"
#include "kernels/common/elementwise_math.h"
#include "kernels/common/hd.h"

namespace ipg::kernels {

struct Activation {
  enum class Kind : int {
    Unary,        // unary_apply(op, x): sigmoid, hard swish, tanh, GELU, ...
    ClampAffine,  // clamp(a x + b, lo, hi): ReLU6 (a 1, b 0, [0, 6]), hard sigmoid ([0, 1])
    Silu,         // x sigmoid(x): SiLU / swish, as torch exports it (Sigmoid, then Mul)
  };
  Kind kind = Kind::Unary;
  UnaryOp op = UnaryOp::Sigmoid;  // Unary
  float a = 1.f, b = 0.f;         // ClampAffine
  float lo = 0.f, hi = 0.f;       // ClampAffine
};

// The kinds one by one (the CPU loops call these with the kind fixed outside the loop, so
// each vectorizes; ClampAffine's are clamp_math.h's clamp_affine_value and _grad), then
// any kind.
IPG_HD float silu_value(float x) { return x * unary_apply(UnaryOp::Sigmoid, x); }
// The two paths autodiff sums: through the product's x, and through the sigmoid.
IPG_HD float silu_grad(float x, float dy) {
  const float s = unary_apply(UnaryOp::Sigmoid, x);
  return mul_rn(dy, s) + mul_rn(dy, x) * (s * (1.f - s));
}

IPG_HD float activation_value(const Activation& f, float x) {
  switch (f.kind) {
    case Activation::Kind::Unary: return unary_apply(f.op, x);
    case Activation::Kind::ClampAffine: return clamp_affine_value(x, f.a, f.b, f.lo, f.hi);
    case Activation::Kind::Silu: return silu_value(x);
  }
  return 0.f;
}

// dy * f'(x), from the input x and the output y = f(x).
IPG_HD float activation_grad(const Activation& f, float x, float y, float dy) {
  switch (f.kind) {
    case Activation::Kind::Unary: return unary_grad(f.op, x, y, dy);
    case Activation::Kind::ClampAffine: return clamp_affine_grad(x, dy, f.a, f.b, f.lo, f.hi);
    case Activation::Kind::Silu: return silu_grad(x, dy);
  }
  return 0.f;
}

}  // namespace ipg::kernels
