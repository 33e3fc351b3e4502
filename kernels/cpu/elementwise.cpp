// CPU elementwise kernels (OpenMP). Every element is computed independently, so the
// results do not depend on the thread count. The op switch is resolved once per call
// (with_unary / with_binary), not per element, and the loops are marked simd: each element
// depends only on its own index, so vectorizing is safe even where pointers alias (dx and
// dy may be one buffer), and the compiler cannot prove that on its own. Lambdas capture
// the pointers by value: a by-reference capture is reloaded after every store, which
// defeats vectorization.
#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <type_traits>

namespace ipg::kernels::cpu {

namespace {

// Below this, thread start-up costs more than the loop.
constexpr int64_t kParallelMin = 1 << 14;
// Broadcast loops work in pieces of at most this many elements of the innermost
// dimension: enough tasks for all threads even when there are few rows.
constexpr int64_t kPiece = 4096;

template <UnaryOp O>
using UnaryTag = std::integral_constant<UnaryOp, O>;
template <BinaryOp O>
using BinaryTag = std::integral_constant<BinaryOp, O>;

template <class F>
void with_unary(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::Relu:
      return f(UnaryTag<UnaryOp::Relu>{});
    case UnaryOp::Neg:
      return f(UnaryTag<UnaryOp::Neg>{});
    case UnaryOp::Sign:
      return f(UnaryTag<UnaryOp::Sign>{});
    case UnaryOp::Tanh:
      return f(UnaryTag<UnaryOp::Tanh>{});
    case UnaryOp::Atanh:
      return f(UnaryTag<UnaryOp::Atanh>{});
    case UnaryOp::Square:
      return f(UnaryTag<UnaryOp::Square>{});
    case UnaryOp::Exp:
      return f(UnaryTag<UnaryOp::Exp>{});
    case UnaryOp::Log:
      return f(UnaryTag<UnaryOp::Log>{});
    case UnaryOp::Abs:
      return f(UnaryTag<UnaryOp::Abs>{});
    case UnaryOp::Sqrt:
      return f(UnaryTag<UnaryOp::Sqrt>{});
    case UnaryOp::Sigmoid:
      return f(UnaryTag<UnaryOp::Sigmoid>{});
    case UnaryOp::HardSwish:
      return f(UnaryTag<UnaryOp::HardSwish>{});
    case UnaryOp::Erf:
      return f(UnaryTag<UnaryOp::Erf>{});
    case UnaryOp::Gelu:
      return f(UnaryTag<UnaryOp::Gelu>{});
  }
}

template <class F>
void with_binary(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::Add:
      return f(BinaryTag<BinaryOp::Add>{});
    case BinaryOp::Sub:
      return f(BinaryTag<BinaryOp::Sub>{});
    case BinaryOp::Mul:
      return f(BinaryTag<BinaryOp::Mul>{});
    case BinaryOp::Div:
      return f(BinaryTag<BinaryOp::Div>{});
  }
}

// Calls body(out_begin, a_offset, b_offset, a_step, b_step, len) for runs of the output
// along its innermost dimension; offsets are computed once per run, not per element.
template <class Body>
void for_each_run(const BroadcastIndex& bi, int64_t n, Body body) {
  const int last = bi.ndim - 1;
  const int64_t inner = bi.ndim > 0 ? bi.out_shape[last] : 1;
  const int64_t sa = bi.ndim > 0 ? bi.a_stride[last] : 0;
  const int64_t sb = bi.ndim > 0 ? bi.b_stride[last] : 0;
  if (n == 0 || inner == 0) return;
  const int64_t pieces = (inner + kPiece - 1) / kPiece;
  const int64_t tasks = n / inner * pieces;
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t begin = (t / pieces) * inner + (t % pieces) * kPiece;
    const int64_t len = std::min(kPiece, inner - (t % pieces) * kPiece);
    int64_t ia, ib;
    broadcast_offsets(bi, begin, &ia, &ib);
    body(begin, ia, ib, sa, sb, len);
  }
}

// The loops live in plain function templates, not lambdas: OpenMP's outlined body then
// sees plain pointer arguments and vectorizes.
template <UnaryOp O>
void unary_forward_loop(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = unary_apply(O, x[i]);
}

template <UnaryOp O, bool Acc>
void unary_backward_loop(const float* x, const float* y, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = unary_grad(O, x[i], y[i], dy[i]);
    dx[i] = Acc ? dx[i] + g : g;
  }
}

}  // namespace

void fill(float* y, float value, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void fill_i32(int32_t* y, int32_t value, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void affine(const float* x, float* y, float a, float b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b;
}

void axpy(const float* x, float* y, float alpha, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n) {
  with_unary(op, [=](auto tag) { unary_forward_loop<decltype(tag)::value>(x, y, n); });
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n, bool accumulate) {
  with_unary(op, [=](auto tag) {
    if (accumulate)
      unary_backward_loop<decltype(tag)::value, true>(x, y, dy, dx, n);
    else
      unary_backward_loop<decltype(tag)::value, false>(x, y, dy, dx, n);
  });
}

void binary_forward(BinaryOp op, const float* a, const float* b, float* out,
                    const BroadcastIndex& bi, int64_t n) {
  with_binary(op, [=](auto tag) {
    for_each_run(bi, n,
                 [&](int64_t o, int64_t ia, int64_t ib, int64_t sa, int64_t sb, int64_t len) {
                   for (int64_t j = 0; j < len; ++j)
                     out[o + j] = binary_apply(tag.value, a[ia + j * sa], b[ib + j * sb]);
                 });
  });
}

void binary_backward(BinaryOp op, const float* a, const float* b, const float* dy, float* da,
                     float* db, const BroadcastIndex& bi, int64_t n, bool acc_a, bool acc_b) {
  with_binary(op, [=](auto tag) {
    for_each_run(
        bi, n, [&](int64_t o, int64_t ia, int64_t ib, int64_t sa, int64_t sb, int64_t len) {
          if (da)
            for (int64_t j = 0; j < len; ++j) {
              const float g = dy[o + j] * binary_grad_a(tag.value, a[ia + j * sa], b[ib + j * sb]);
              da[o + j] = acc_a ? da[o + j] + g : g;
            }
          if (db)
            for (int64_t j = 0; j < len; ++j) {
              const float g = dy[o + j] * binary_grad_b(tag.value, a[ia + j * sa], b[ib + j * sb]);
              db[o + j] = acc_b ? db[o + j] + g : g;
            }
        });
  });
}

}  // namespace ipg::kernels::cpu
