// GEMM-based ops. Backward uses the same GEMM with transposes and beta = 1, so input
// gradients accumulate without temporaries.
#include "engine/ops/linalg.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/reduce.h"
#endif

namespace ipg::ops {

namespace {

// c = alpha * op(a) op(b) + beta * c on the device of c (row-major, leading dims = widths).
void gemm(Device dev, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c) {
  IPG_ON_DEVICE("gemm", dev, kernels::cpu::gemm(ta, tb, m, n, k, 1.f, a, lda, b, ldb, beta, c, n),
                kernels::cuda::gemm(ta, tb, m, n, k, 1.f, a, lda, b, ldb, beta, c, n, stream));
}

// The batched gemm: `batch` products of [m, k]-by-[k, n] (as op(a) op(b)), packed matrices.
void gemm_batched(Device dev, bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k,
                  const float* a, int64_t lda, int64_t sa, const float* b, int64_t ldb,
                  int64_t sb, float beta, float* c) {
  IPG_ON_DEVICE("bmm", dev,
                kernels::cpu::gemm_batched(ta, tb, batch, m, n, k, 1.f, a, lda, sa, b, ldb, sb,
                                           beta, c, n, m * n),
                kernels::cuda::gemm_batched(ta, tb, batch, m, n, k, 1.f, a, lda, sa, b, ldb, sb,
                                            beta, c, n, m * n, stream));
}

void check_2d(const char* op, const char* what, const Tensor& t) {
  if (t.ndim() != 2)
    throw ShapeError(std::string(op) + ": " + what + " must be 2-D, got " + shape_str(t.shape()));
  detail::check_dtype(op, t, DType::F32);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_2d("matmul", "a", a);
  check_2d("matmul", "b", b);
  detail::check_same_device("matmul", a, b);
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
  if (b.dim(0) != k)
    throw ShapeError("matmul: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                     " do not multiply");
  Tensor c = Tensor::empty({m, n}, a.device());
  gemm(a.device(), false, false, m, n, k, a.data(), k, b.data(), n, 0.f, c.data());
  if (autograd::needs_graph({a, b})) {
    autograd::attach(
        c, "matmul", {a, b},
        [a = a.detach(), b = b.detach(), m, n, k](const Tensor& g, GradSink& sink) {
          const Device dev = g.device();
          // da [m,k] (+)= g [m,n] b^T; db [k,n] (+)= a^T g. beta 0 writes a new buffer
          // (GradSink::target(); gemm does not read C then).
          bool acc = false;
          if (sink.wants(0)) {
            float* da = sink.target(0, acc).data();
            gemm(dev, false, true, m, k, n, g.data(), n, b.data(), n, acc ? 1.f : 0.f, da);
          }
          if (sink.wants(1)) {
            float* db = sink.target(1, acc).data();
            gemm(dev, true, false, k, n, m, a.data(), k, g.data(), n, acc ? 1.f : 0.f, db);
          }
        });
  }
  return c;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  detail::check_dtype("bmm", a, DType::F32);
  detail::check_dtype("bmm", b, DType::F32);
  detail::check_same_device("bmm", a, b);
  const int64_t r = a.ndim();
  auto mismatch = [&]() {
    return ShapeError("bmm: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                      " do not multiply (equal leading dimensions, then [m, k] and [k, n])");
  };
  if (r < 2 || b.ndim() != r) throw mismatch();
  for (int64_t d = 0; d + 2 < r; ++d)
    if (a.dim(int(d)) != b.dim(int(d))) throw mismatch();
  const int64_t m = a.dim(int(r - 2)), k = a.dim(int(r - 1)), n = b.dim(int(r - 1));
  if (b.dim(int(r - 2)) != k) throw mismatch();
  int64_t batch = 1;  // the product of the leading dimensions
  for (int64_t d = 0; d + 2 < r; ++d) batch *= a.dim(int(d));
  Shape out = a.shape();
  out[size_t(r - 1)] = n;
  Tensor c = k == 0 ? Tensor::zeros(out, a.device()) : Tensor::empty(out, a.device());
  if (k > 0)
    gemm_batched(a.device(), false, false, batch, m, n, k, a.data(), k, m * k, b.data(), n, k * n,
                 0.f, c.data());
  if (autograd::needs_graph({a, b})) {
    autograd::attach(
        c, "bmm", {a, b},
        [a = a.detach(), b = b.detach(), batch, m, n, k](const Tensor& g, GradSink& sink) {
          const Device dev = g.device();
          // Per matrix, as matmul: da (+)= g b^T, db (+)= a^T g.
          bool acc = false;
          if (sink.wants(0)) {
            float* da = sink.target(0, acc).data();
            gemm_batched(dev, false, true, batch, m, k, n, g.data(), n, m * n, b.data(), n, k * n,
                         acc ? 1.f : 0.f, da);
          }
          if (sink.wants(1)) {
            float* db = sink.target(1, acc).data();
            gemm_batched(dev, true, false, batch, k, n, m, a.data(), k, m * k, g.data(), n, m * n,
                         acc ? 1.f : 0.f, db);
          }
        });
  }
  return c;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_2d("linear", "input", x);
  check_2d("linear", "weight", weight);
  detail::check_same_device("linear", x, weight);
  const int64_t batch = x.dim(0), in = x.dim(1), out = weight.dim(0);
  if (weight.dim(1) != in)
    throw ShapeError("linear: input " + shape_str(x.shape()) + " and weight " +
                     shape_str(weight.shape()) + " do not match (weight is [out, in])");
  if (bias.defined()) {
    detail::check_same_device("linear", x, bias);
    if (bias.shape() != Shape{out})
      throw ShapeError("linear: bias " + shape_str(bias.shape()) + " for weight " +
                       shape_str(weight.shape()) + " (expected [" + std::to_string(out) + "])");
  }
  Tensor y = Tensor::empty({batch, out}, x.device());
  float beta = 0.f;
  if (bias.defined()) {
    // Seed each row with the bias, then accumulate x W^T on top (beta = 1).
    Tensor ones = Tensor::ones({batch, 1}, x.device());
    gemm(x.device(), false, false, batch, out, 1, ones.data(), 1, bias.data(), out, 0.f, y.data());
    beta = 1.f;
  }
  gemm(x.device(), false, true, batch, out, in, x.data(), in, weight.data(), in, beta, y.data());
  if (autograd::needs_graph({x, weight, bias})) {
    autograd::attach(
        y, "linear", {x, weight, bias},
        [x = x.detach(), w = weight.detach(), batch, in, out](const Tensor& g, GradSink& sink) {
          const Device dev = g.device();
          // dx [b,in] (+)= g [b,out] W [out,in]; beta 0 writes a new buffer
          // (GradSink::target(); gemm does not read C then).
          bool acc = false;
          if (sink.wants(0)) {
            float* dx = sink.target(0, acc).data();
            gemm(dev, false, false, batch, in, out, g.data(), out, w.data(), in, acc ? 1.f : 0.f,
                 dx);
          }
          // dW [out,in] (+)= g^T x
          if (sink.wants(1)) {
            float* dw = sink.target(1, acc).data();
            gemm(dev, true, false, out, in, batch, g.data(), out, x.data(), in, acc ? 1.f : 0.f,
                 dw);
          }
          // db [out] += column sums of g
          if (sink.wants(2)) {
            float* db = sink.at(2).data();
            IPG_ON_DEVICE("linear_bias_backward", dev,
                          kernels::cpu::sum_dim(g.data(), db, 1, batch, out, 1.f, 1.f),
                          (void)stream;
                          detail::cuda_sum_dim(dev, g.data(), db, 1, batch, out, 1.f, 1.f));
          }
        });
  }
  return y;
}

}  // namespace ipg::ops
