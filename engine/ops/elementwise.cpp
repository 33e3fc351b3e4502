// Elementwise ops: dispatch to kernels/{cpu,cuda}/elementwise and their backward.
#include "engine/ops/elementwise.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/trace.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reduce.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/reduce.h"
#endif

namespace ipg::ops {

using kernels::BinaryOp;
using kernels::BroadcastIndex;
using kernels::ReduceIndex;
using kernels::UnaryOp;

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  if (n > static_cast<size_t>(kernels::kMaxDims))
    throw ShapeError(std::string(op) + ": more than " + std::to_string(kernels::kMaxDims) +
                     " dimensions (" + shape_str(a) + " and " + shape_str(b) + ")");
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                       " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Strides of `s` read through output shape `out` (0 where s is broadcast).
void broadcast_strides(const Shape& s, const Shape& out, int64_t* stride) {
  const size_t n = out.size(), pad = n - s.size();
  const Shape st = contiguous_strides(s);
  for (size_t i = 0; i < n; ++i) stride[i] = (i < pad || s[i - pad] == 1) ? 0 : st[i - pad];
}

BroadcastIndex make_broadcast(const Shape& a, const Shape& b, const Shape& out) {
  int64_t as[kernels::kMaxDims], bs[kernels::kMaxDims];
  broadcast_strides(a, out, as);
  broadcast_strides(b, out, bs);
  // Coalesce: drop size-1 dimensions and merge a dimension into the next when both
  // operands step through them as one (contiguous continuation, or broadcast in both).
  // [n, c, h, w] + [1, c, 1, 1] becomes [n, c, h*w]: kernels then index with fewer
  // divisions and the CPU twin's inner loop runs over whole rows.
  BroadcastIndex bi{};
  int nd = 0;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    if (nd > 0 && bi.a_stride[nd - 1] == as[d] * out[d] && bi.b_stride[nd - 1] == bs[d] * out[d]) {
      bi.out_shape[nd - 1] *= out[d];
      bi.a_stride[nd - 1] = as[d];
      bi.b_stride[nd - 1] = bs[d];
      continue;
    }
    bi.out_shape[nd] = out[d];
    bi.a_stride[nd] = as[d];
    bi.b_stride[nd] = bs[d];
    ++nd;
  }
  bi.ndim = nd;
  return bi;
}

void check_float_pair(const char* op, const Tensor& a, const Tensor& b) {
  detail::check_same_device(op, a, b);
  detail::check_dtype(op, a, DType::F32);
  detail::check_dtype(op, b, DType::F32);
}

// grad (output-shaped) summed into acc (shaped `target`, broadcast into the output).
void accumulate_reduced(const Tensor& grad, Tensor& acc) {
  const Shape& src = grad.shape();
  ReduceIndex ri{};
  ri.ndim = static_cast<int>(src.size());
  const size_t pad = src.size() - acc.shape().size();
  for (size_t i = 0; i < src.size(); ++i) {
    ri.src_shape[i] = src[i];
    ri.dst_shape[i] = i < pad ? 1 : acc.shape()[i - pad];
  }
  IPG_ON_DEVICE("sum_to_shape", acc.device(),
                kernels::cpu::sum_to_shape(grad.data(), acc.data(), ri, acc.numel()),
                kernels::cuda::sum_to_shape(grad.data(), acc.data(), ri, acc.numel(), stream));
}

Tensor binary(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  check_float_pair(name, a, b);
  const Shape out_shape = broadcast_shape(name, a.shape(), b.shape());
  Tensor out = Tensor::empty(out_shape, a.device());
  const BroadcastIndex bi = make_broadcast(a.shape(), b.shape(), out_shape);
  const int64_t n = out.numel();
  IPG_ON_DEVICE(name, a.device(),
                kernels::cpu::binary_forward(op, a.data(), b.data(), out.data(), bi, n),
                kernels::cuda::binary_forward(op, a.data(), b.data(), out.data(), bi, n, stream));
  if (autograd::needs_graph({a, b})) {
    autograd::attach(
        out, name, {a, b},
        [a = a.detach(), b = b.detach(), op, bi, out_shape](const Tensor& gout, GradSink& sink) {
          const int64_t n = gout.numel();
          // Operands shaped like the output take their gradient in place; broadcast ones go
          // through an output-shaped temporary that is then summed down.
          // (a op a: the second target() finds the buffer the first made, so acc_b is true.)
          Tensor ta, tb;
          float* da = nullptr;
          float* db = nullptr;
          bool acc_a = false, acc_b = false;
          if (sink.wants(0)) {
            if (a.shape() == out_shape) {
              da = sink.target(0, acc_a).data();
            } else {
              ta = Tensor::empty(out_shape, a.device());
              da = ta.data();
            }
          }
          if (sink.wants(1)) {
            if (b.shape() == out_shape) {
              db = sink.target(1, acc_b).data();
            } else {
              tb = Tensor::empty(out_shape, b.device());
              db = tb.data();
            }
          }
          IPG_ON_DEVICE("binary_backward", gout.device(),
                        kernels::cpu::binary_backward(op, a.data(), b.data(), gout.data(), da, db,
                                                      bi, n, acc_a, acc_b),
                        kernels::cuda::binary_backward(op, a.data(), b.data(), gout.data(), da,
                                                       db, bi, n, acc_a, acc_b, stream));
          if (ta.defined()) accumulate_reduced(ta, sink.at(0));
          if (tb.defined()) accumulate_reduced(tb, sink.at(1));
        });
  }
  return out;
}

Tensor unary(const char* name, UnaryOp op, const Tensor& x) {
  detail::check_dtype(name, x, DType::F32);
  Tensor y = Tensor::empty(x.shape(), x.device());
  const int64_t n = x.numel();
  IPG_ON_DEVICE(name, x.device(), kernels::cpu::unary_forward(op, x.data(), y.data(), n),
                kernels::cuda::unary_forward(op, x.data(), y.data(), n, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(
        y, name, {x}, [x = x.detach(), y = y.detach(), op](const Tensor& gout, GradSink& sink) {
          bool acc = false;
          float* dx = sink.target(0, acc).data();
          const int64_t n = gout.numel();
          IPG_ON_DEVICE(
              "unary_backward", gout.device(),
              kernels::cpu::unary_backward(op, x.data(), y.data(), gout.data(), dx, n, acc),
              kernels::cuda::unary_backward(op, x.data(), y.data(), gout.data(), dx, n, acc,
                                            stream));
        });
    // ReLU is known to the trace by name; the others carry their op.
    if (trace::active() && op != UnaryOp::Relu) {
      trace::Attrs a;
      a.unary = int(op);
      trace::describe(y, trace::Op::Unary, a);
    }
  }
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary("div", BinaryOp::Div, a, b); }

Tensor relu(const Tensor& x) { return unary("relu", UnaryOp::Relu, x); }
Tensor neg(const Tensor& x) { return unary("neg", UnaryOp::Neg, x); }
Tensor sign(const Tensor& x) { return unary("sign", UnaryOp::Sign, x); }
Tensor tanh(const Tensor& x) { return unary("tanh", UnaryOp::Tanh, x); }
Tensor atanh(const Tensor& x) { return unary("atanh", UnaryOp::Atanh, x); }
Tensor square(const Tensor& x) { return unary("square", UnaryOp::Square, x); }
Tensor exp(const Tensor& x) { return unary("exp", UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary("log", UnaryOp::Log, x); }
Tensor abs(const Tensor& x) { return unary("abs", UnaryOp::Abs, x); }
Tensor sqrt(const Tensor& x) { return unary("sqrt", UnaryOp::Sqrt, x); }
Tensor sigmoid(const Tensor& x) { return unary("sigmoid", UnaryOp::Sigmoid, x); }
Tensor hard_swish(const Tensor& x) { return unary("hard_swish", UnaryOp::HardSwish, x); }
Tensor erf(const Tensor& x) { return unary("erf", UnaryOp::Erf, x); }
Tensor gelu(const Tensor& x) { return unary("gelu", UnaryOp::Gelu, x); }

Tensor affine(const Tensor& x, float a, float b) {
  detail::check_dtype("affine", x, DType::F32);
  Tensor y = Tensor::empty(x.shape(), x.device());
  const int64_t n = x.numel();
  IPG_ON_DEVICE("affine", x.device(), kernels::cpu::affine(x.data(), y.data(), a, b, n),
                kernels::cuda::affine(x.data(), y.data(), a, b, n, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, "affine", {x},
                     [a](const Tensor& gout, GradSink& sink) { axpy_(sink.at(0), gout, a); });
    if (trace::active()) {
      trace::Attrs t;
      t.a = a, t.b = b;
      trace::describe(y, trace::Op::ScalarAffine, t);
    }
  }
  return y;
}

void axpy_(Tensor& dst, const Tensor& src, float alpha) {
  detail::check_same_device("axpy_", dst, src);
  if (dst.shape() != src.shape())
    throw ShapeError("axpy_: shapes " + shape_str(dst.shape()) + " and " + shape_str(src.shape()) +
                     " differ");
  const int64_t n = dst.numel();
  IPG_ON_DEVICE("axpy_", dst.device(), kernels::cpu::axpy(src.data(), dst.data(), alpha, n),
                kernels::cuda::axpy(src.data(), dst.data(), alpha, n, stream));
}

void add_(Tensor& dst, const Tensor& src) { axpy_(dst, src, 1.f); }

}  // namespace ipg::ops
