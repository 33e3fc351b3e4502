// The planner's element-wise lowerings beyond ReLU, and squeeze-and-excitation:
//  - activation steps: a unary op (sigmoid, hard swish, GELU, tanh, ...), a clamp (ReLU6),
//    a hard sigmoid, a scalar affine map on a non-map value followed or not by a clamp
//    (MobileNetV3's exported hard sigmoid is affine, then clamp), and SiLU as torch
//    exports it: sigmoid(x), then its product with x, the sigmoid read by that product
//    alone;
//  - channel scales: a map times a squeezed [n, C, 1, 1] value (the gate of a
//    squeeze-and-excitation block), either operand first.
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "engine/plan_internal.h"

namespace ipg::plan_detail {

using kernels::Activation;
using kernels::UnaryOp;

void Planner::activation(int i) {
  const Node& n = node(i);
  const int x = n.inputs.at(0);
  Chain c;
  PlanStep& s = c.step;
  s.kind = PlanStep::Kind::Act;
  s.x = lowered_squeezed(x, i);
  c.squeeze = squeezed(x);
  s.from = n.name;
  c.out = n.output;
  Activation& f = s.act;
  switch (n.op) {
    case Op::Relu:
      f.kind = Activation::Kind::Unary;
      f.op = UnaryOp::Relu;
      break;
    case Op::Unary:
      f.kind = Activation::Kind::Unary;
      f.op = static_cast<UnaryOp>(n.attrs.unary);
      break;
    case Op::Clamp:
      f.kind = Activation::Kind::ClampAffine;
      f.lo = n.attrs.lo, f.hi = n.attrs.hi;
      break;
    case Op::HardSigmoid:
      f.kind = Activation::Kind::ClampAffine;
      f.a = n.attrs.a, f.b = n.attrs.b, f.lo = 0.f, f.hi = 1.f;
      break;
    case Op::ScalarAffine:
      f.kind = Activation::Kind::ClampAffine;
      f.a = n.attrs.a, f.b = n.attrs.b;
      f.lo = -std::numeric_limits<float>::infinity();
      f.hi = std::numeric_limits<float>::infinity();
      break;
    default:
      throw Refused{where(i) + ": no fused lowering for this op"};
  }
  const int next = sole_consumer(c.out);
  if (next >= 0) {
    const Node& m = node(next);
    const bool x_times_it = m.op == Op::Mul && m.inputs.size() == 2 &&
                            ((m.inputs[0] == x && m.inputs[1] == c.out) ||
                             (m.inputs[0] == c.out && m.inputs[1] == x));
    if (n.op == Op::Unary && f.op == UnaryOp::Sigmoid && x_times_it) {
      f.kind = Activation::Kind::Silu;
      absorb(c, next, "mul");
    } else if (n.op == Op::ScalarAffine && m.op == Op::Clamp && m.inputs[0] == c.out) {
      f.lo = m.attrs.lo, f.hi = m.attrs.hi;
      absorb(c, next, "clamp");
    }
  }
  finish(std::move(c), i);
}

void Planner::channel_scale(int i) {
  const Node& n = node(i);
  const int a = n.inputs.at(0), b = n.inputs.at(1);
  const int gate = squeezed(a) ? a : b, x = gate == a ? b : a;
  const Shape& xs = shape(x);
  if (!squeezed(gate) || squeezed(x) || !is_map(x) || shape(n.output) != xs ||
      shape(gate) != Shape{xs[0], xs[1], 1, 1})
    throw Refused{where(i) + ": a product of two computed values (only a map times its "
                  "channels' [n, C, 1, 1] gate is lowered)"};
  Chain c;
  PlanStep& s = c.step;
  s.kind = PlanStep::Kind::ChannelScale;
  s.x = lowered(x, i);
  s.gate = lowered_squeezed(gate, i);
  s.from = n.name;
  c.out = n.output;
  finish(std::move(c), i);
}

}  // namespace ipg::plan_detail
