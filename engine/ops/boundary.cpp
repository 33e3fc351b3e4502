// Boundary-search steps: checks, then kernels/{cpu,cuda}/boundary. Label ranges are
// checked on the host only for CPU tensors (reading CUDA labels back would synchronize
// the loop); the fingerprint code makes its labels on the host and checks them there.
#include "engine/ops/boundary.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/cpu/boundary.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/boundary.h"
#endif

namespace ipg::ops {

namespace {

void check_like(const char* op, const char* what, const Tensor& t, const Tensor& ref, DType d) {
  if (!t.defined() || t.shape() != ref.shape())
    throw ShapeError(std::string(op) + ": " + what + " must be shaped like " +
                     shape_str(ref.shape()) +
                     (t.defined() ? ", got " + shape_str(t.shape()) : ", got none"));
  detail::check_dtype(op, t, d);
  detail::check_same_device(op, t, ref);
}

void check_rows(const char* op, const char* what, const Tensor& t, int64_t n, DType d,
                const Tensor& ref) {
  if (!t.defined()) return;
  if (t.ndim() != 1 || t.dim(0) != n)
    throw ShapeError(std::string(op) + ": " + what + " must be [" + std::to_string(n) + "], got " +
                     shape_str(t.shape()));
  detail::check_dtype(op, t, d);
  detail::check_same_device(op, t, ref);
}

const int32_t* rows_of(const Tensor& active) {
  return active.defined() ? active.data_i32() : nullptr;
}

}  // namespace

namespace {

// k_rows: float [n] or undefined (k for every row).
void boundary_loss_impl(BoundaryLoss kind, const Tensor& logits, const Tensor& src,
                        const Tensor& dst, float k, const Tensor& k_rows, const Tensor& weight,
                        Tensor& loss, Tensor& dlogits, Tensor* active) {
  const char* op = "boundary_loss";
  detail::check_dtype(op, logits, DType::F32);
  if (logits.ndim() != 2 || logits.dim(0) < 1 || logits.dim(1) < 2)
    throw ShapeError(std::string(op) + ": logits must be [n, classes >= 2], got " +
                     shape_str(logits.shape()));
  const int64_t n = logits.dim(0), classes = logits.dim(1);
  for (const Tensor* t : {&src, &dst})
    if (!t->defined()) throw ShapeError(std::string(op) + ": labels missing");
  check_rows(op, "src", src, n, DType::I32, logits);
  check_rows(op, "dst", dst, n, DType::I32, logits);
  check_rows(op, "weight", weight, n, DType::F32, logits);
  check_rows(op, "k_rows", k_rows, n, DType::F32, logits);
  if (active) check_rows(op, "active", *active, n, DType::I32, logits);
  if (logits.device().is_cpu()) {
    const int32_t* s = src.data_i32();
    const int32_t* d = dst.data_i32();
    for (int64_t r = 0; r < n; ++r) {
      if (s[r] < 0 || s[r] >= classes || d[r] < 0 || d[r] >= classes)
        throw std::invalid_argument(std::string(op) + ": row " + std::to_string(r) +
                                    " has a label outside [0, " + std::to_string(classes) + ")");
      if (kind == BoundaryLoss::IPGuard && s[r] == d[r])
        throw std::invalid_argument(std::string(op) + ": row " + std::to_string(r) +
                                    ": IPGuard needs a target label other than the source");
    }
  }
  if (!loss.defined() || loss.shape() != Shape{n} || loss.device() != logits.device())
    loss = Tensor::empty({n}, logits.device());
  if (!dlogits.defined() || dlogits.shape() != logits.shape() ||
      dlogits.device() != logits.device())
    dlogits = Tensor::empty(logits.shape(), logits.device());
  const float* w = weight.defined() ? weight.data() : nullptr;
  const float* kr = k_rows.defined() ? k_rows.data() : nullptr;
  int32_t* a = active && active->defined() ? active->data_i32() : nullptr;
  IPG_ON_DEVICE(
      op, logits.device(),
      kernels::cpu::boundary_loss(kind, logits.data(), n, classes, src.data_i32(), dst.data_i32(),
                                  k, kr, w, loss.data(), dlogits.data(), a),
      kernels::cuda::boundary_loss(kind, logits.data(), n, classes, src.data_i32(), dst.data_i32(),
                                   k, kr, w, loss.data(), dlogits.data(), a, stream));
}

}  // namespace

void boundary_loss(BoundaryLoss kind, const Tensor& logits, const Tensor& src, const Tensor& dst,
                   float k, const Tensor& weight, Tensor& loss, Tensor& dlogits, Tensor* active) {
  boundary_loss_impl(kind, logits, src, dst, k, Tensor(), weight, loss, dlogits, active);
}

void boundary_loss(BoundaryLoss kind, const Tensor& logits, const Tensor& src, const Tensor& dst,
                   const Tensor& k_rows, const Tensor& weight, Tensor& loss, Tensor& dlogits,
                   Tensor* active) {
  if (!k_rows.defined()) throw ShapeError("boundary_loss: k_rows missing");
  boundary_loss_impl(kind, logits, src, dst, 0.f, k_rows, weight, loss, dlogits, active);
}

namespace {
// The checks both Adam steps share; returns the row count.
int64_t check_adam_operands(const char* op, const Tensor& x, const Tensor& grad, const Tensor& m,
                            const Tensor& v, const Tensor& active) {
  detail::check_dtype(op, x, DType::F32);
  if (x.ndim() < 1 || x.numel() == 0) throw ShapeError(std::string(op) + ": empty batch");
  check_like(op, "grad", grad, x, DType::F32);
  check_like(op, "m", m, x, DType::F32);
  check_like(op, "v", v, x, DType::F32);
  check_rows(op, "active", active, x.dim(0), DType::I32, x);
  return x.dim(0);
}
}  // namespace

void boundary_adam_step(Tensor& x, const Tensor& grad, Tensor& m, Tensor& v, const Tensor& active,
                        const AdamCoeffs& c, float lo, float hi) {
  const char* op = "boundary_adam_step";
  const int64_t n = check_adam_operands(op, x, grad, m, v, active), row = x.numel() / n;
  IPG_ON_DEVICE(op, x.device(),
                kernels::cpu::boundary_adam_step(x.data(), grad.data(), m.data(), v.data(), n, row,
                                                 rows_of(active), c, lo, hi),
                kernels::cuda::boundary_adam_step(x.data(), grad.data(), m.data(), v.data(), n, row,
                                                  rows_of(active), c, lo, hi, stream));
}

namespace {
static_assert(sizeof(AdamCoeffs) == 6 * sizeof(float), "AdamCoeffs is six floats");
const AdamCoeffs* coeffs_of(const Tensor& table) {
  return reinterpret_cast<const AdamCoeffs*>(table.data());
}
// An Adam coefficient table [T, 6] and its step [1] on x's device.
void check_table(const char* op, const Tensor& x, const Tensor& table, const Tensor& step) {
  detail::check_dtype(op, table, DType::F32);
  detail::check_dtype(op, step, DType::I32);
  detail::check_same_device(op, x, table);
  detail::check_same_device(op, x, step);
  if (table.ndim() != 2 || table.dim(1) != 6 || step.numel() != 1)
    throw ShapeError(std::string(op) + ": table must be [T, 6] and step [1], got " +
                     shape_str(table.shape()) + " and " + shape_str(step.shape()));
}
}  // namespace

void boundary_adam_step_at(Tensor& x, const Tensor& grad, Tensor& m, Tensor& v,
                           const Tensor& active, const Tensor& table, const Tensor& step, float lo,
                           float hi) {
  const char* op = "boundary_adam_step_at";
  const int64_t n = check_adam_operands(op, x, grad, m, v, active), row = x.numel() / n;
  check_table(op, x, table, step);
  IPG_ON_DEVICE(op, x.device(),
                kernels::cpu::boundary_adam_step_at(x.data(), grad.data(), m.data(), v.data(), n,
                                                    row, rows_of(active), coeffs_of(table),
                                                    step.data_i32(), lo, hi),
                kernels::cuda::boundary_adam_step_at(x.data(), grad.data(), m.data(), v.data(), n,
                                                     row, rows_of(active), coeffs_of(table),
                                                     step.data_i32(), lo, hi, stream));
}

void boundary_step_advance(Tensor& step) {
  const char* op = "boundary_step_advance";
  detail::check_dtype(op, step, DType::I32);
  if (step.numel() != 1) throw ShapeError(std::string(op) + ": step must have one element");
  IPG_ON_DEVICE(op, step.device(), kernels::cpu::boundary_step_advance(step.data_i32()),
                kernels::cuda::boundary_step_advance(step.data_i32(), stream));
}

Tensor adam_table(float lr, float beta1, float beta2, float eps, float weight_decay,
                  int64_t first, int64_t count, Device dev) {
  if (count < 1 || first < 1) throw std::invalid_argument("adam_table: needs count >= 1, first >= 1");
  std::vector<float> rows(static_cast<size_t>(count) * 6);
  for (int64_t i = 0; i < count; ++i) {
    const AdamCoeffs c = kernels::adam_coeffs(lr, beta1, beta2, eps, weight_decay, first + i);
    std::memcpy(rows.data() + i * 6, &c, sizeof c);
  }
  return Tensor::from_vector(rows, {count, 6}, dev);
}

void boundary_sign_step(Tensor& x, const Tensor& x0, const Tensor& grad, const Tensor& active,
                        float alpha, float eps, float lo, float hi) {
  const char* op = "boundary_sign_step";
  detail::check_dtype(op, x, DType::F32);
  if (x.ndim() < 1 || x.numel() == 0) throw ShapeError(std::string(op) + ": empty batch");
  check_like(op, "x0", x0, x, DType::F32);
  check_like(op, "grad", grad, x, DType::F32);
  const int64_t n = x.dim(0), row = x.numel() / n;
  check_rows(op, "active", active, n, DType::I32, x);
  IPG_ON_DEVICE(op, x.device(),
                kernels::cpu::boundary_sign_step(x.data(), x0.data(), grad.data(), n, row,
                                                 rows_of(active), alpha, eps, lo, hi),
                kernels::cuda::boundary_sign_step(x.data(), x0.data(), grad.data(), n, row,
                                                  rows_of(active), alpha, eps, lo, hi, stream));
}

namespace {
// boundary_cw_step's operand checks; the batch's rows.
int64_t check_cw_operands(const char* op, const Tensor& u, const Tensor& th, const Tensor& x,
                          const Tensor& x0s, const Tensor& grad, const Tensor& m, const Tensor& v) {
  detail::check_dtype(op, u, DType::F32);
  if (u.ndim() < 1 || u.numel() == 0) throw ShapeError(std::string(op) + ": empty batch");
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"t", &th},
                                {"x", &x},
                                {"x0s", &x0s},
                                {"grad", &grad},
                                {"m", &m},
                                {"v", &v}})
    check_like(op, name, *t, u, DType::F32);
  // The CPU kernel is compiled on the promise that no two of them overlap (__restrict): the
  // five it writes among themselves and with the two it reads.
  const std::pair<const char*, const Tensor*> all[] = {{"u", &u},     {"t", &th},   {"x", &x},
                                                       {"m", &m},     {"v", &v},    {"x0s", &x0s},
                                                       {"grad", &grad}};
  const auto overlap = [](const Tensor& a, const Tensor& b) {
    const auto pa = reinterpret_cast<std::uintptr_t>(a.raw());
    const auto pb = reinterpret_cast<std::uintptr_t>(b.raw());
    return pa < pb + b.nbytes() && pb < pa + a.nbytes();
  };
  for (int i = 0; i < 5; ++i)
    for (int j = i + 1; j < 7; ++j)
      if (overlap(*all[i].second, *all[j].second))
        throw ShapeError(std::string(op) + ": " + all[i].first + " and " + all[j].first +
                         " share memory");
  return u.dim(0);
}
}  // namespace

void boundary_cw_step(Tensor& u, Tensor& t, Tensor& x, const Tensor& x0s, const Tensor& grad,
                      Tensor& m, Tensor& v, const AdamCoeffs& c) {
  const char* op = "boundary_cw_step";
  const int64_t n = check_cw_operands(op, u, t, x, x0s, grad, m, v), row = u.numel() / n;
  IPG_ON_DEVICE(op, u.device(),
                kernels::cpu::boundary_cw_step(u.data(), t.data(), x.data(), x0s.data(),
                                               grad.data(), m.data(), v.data(), n, row, c),
                kernels::cuda::boundary_cw_step(u.data(), t.data(), x.data(), x0s.data(),
                                                grad.data(), m.data(), v.data(), n, row, c,
                                                stream));
}

void boundary_cw_step_at(Tensor& u, Tensor& t, Tensor& x, const Tensor& x0s, const Tensor& grad,
                         Tensor& m, Tensor& v, const Tensor& table, const Tensor& step) {
  const char* op = "boundary_cw_step_at";
  const int64_t n = check_cw_operands(op, u, t, x, x0s, grad, m, v), row = u.numel() / n;
  check_table(op, u, table, step);
  IPG_ON_DEVICE(op, u.device(),
                kernels::cpu::boundary_cw_step_at(u.data(), t.data(), x.data(), x0s.data(),
                                                  grad.data(), m.data(), v.data(), n, row,
                                                  coeffs_of(table), step.data_i32()),
                kernels::cuda::boundary_cw_step_at(u.data(), t.data(), x.data(), x0s.data(),
                                                   grad.data(), m.data(), v.data(), n, row,
                                                   coeffs_of(table), step.data_i32(), stream));
}

namespace {

// kappa_rows: float [n] or undefined (kappa for every row).
void cw_track(const Tensor& x, const Tensor& x0s, const Tensor& logits, const Tensor& dst,
              float kappa, const Tensor& kappa_rows, Tensor& l2, Tensor& success, Tensor& best_l2,
              Tensor& best_x) {
  const char* op = "boundary_cw_track";
  detail::check_dtype(op, x, DType::F32);
  if (x.ndim() < 1 || x.numel() == 0) throw ShapeError(std::string(op) + ": empty batch");
  const int64_t n = x.dim(0), row = x.numel() / n;
  check_like(op, "x0s", x0s, x, DType::F32);
  check_like(op, "best_x", best_x, x, DType::F32);
  if (logits.ndim() != 2 || logits.dim(0) != n)
    throw ShapeError(std::string(op) + ": logits must be [" + std::to_string(n) +
                     ", classes], got " + shape_str(logits.shape()));
  detail::check_dtype(op, logits, DType::F32);
  detail::check_same_device(op, logits, x);
  check_rows(op, "dst", dst, n, DType::I32, x);
  check_rows(op, "best_l2", best_l2, n, DType::F32, x);
  check_rows(op, "kappa_rows", kappa_rows, n, DType::F32, x);
  if (!dst.defined() || !best_l2.defined())
    throw ShapeError(std::string(op) + ": dst and best_l2 are required");
  if (!l2.defined() || l2.shape() != Shape{n} || l2.device() != x.device())
    l2 = Tensor::empty({n}, x.device());
  if (!success.defined() || success.shape() != Shape{n} || success.device() != x.device())
    success = Tensor::empty({n}, x.device(), DType::I32);
  const int64_t classes = logits.dim(1);
  const float* kr = kappa_rows.defined() ? kappa_rows.data() : nullptr;
  IPG_ON_DEVICE(op, x.device(),
                kernels::cpu::boundary_cw_track(x.data(), x0s.data(), logits.data(), dst.data_i32(),
                                                kappa, kr, n, row, classes, l2.data(),
                                                success.data_i32(), best_l2.data(), best_x.data()),
                kernels::cuda::boundary_cw_track(
                    x.data(), x0s.data(), logits.data(), dst.data_i32(), kappa, kr, n, row, classes,
                    l2.data(), success.data_i32(), best_l2.data(), best_x.data(), stream));
}

}  // namespace

void boundary_cw_track(const Tensor& x, const Tensor& x0s, const Tensor& logits, const Tensor& dst,
                       float kappa, Tensor& l2, Tensor& success, Tensor& best_l2, Tensor& best_x) {
  cw_track(x, x0s, logits, dst, kappa, Tensor(), l2, success, best_l2, best_x);
}

void boundary_cw_track(const Tensor& x, const Tensor& x0s, const Tensor& logits, const Tensor& dst,
                       const Tensor& kappa_rows, Tensor& l2, Tensor& success, Tensor& best_l2,
                       Tensor& best_x) {
  if (!kappa_rows.defined())
    throw ShapeError("boundary_cw_track: kappa_rows missing");
  cw_track(x, x0s, logits, dst, 0.f, kappa_rows, l2, success, best_l2, best_x);
}

}  // namespace ipg::ops
