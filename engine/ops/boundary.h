// The fused steps of boundary search (design: "Fingerprint loop"), on whole batches of
// candidates, in place and outside autodiff: the loss and its gradient at the logits
// (then FrozenNetwork::input_grad carries it back to the images), and the update of the
// images. Per-row formulas: kernels/common/boundary_math.h. All tensors on one device;
// nothing here synchronizes with the host, so an iteration can run many times before
// `active` is read back.
#pragma once

#include "engine/tensor.h"
#include "kernels/common/boundary_math.h"

namespace ipg::ops {

using kernels::AdamCoeffs;
using kernels::BoundaryLoss;

// logits [n, classes] -> loss [n] and dlogits [n, classes] (both written). src, dst: int32
// [n], labels in [0, classes) (IPGuard: src != dst); weight: float [n] or undefined (1);
// active: int32 [n] or undefined; where defined, rows whose loss is 0 become inactive.
void boundary_loss(BoundaryLoss kind, const Tensor& logits, const Tensor& src, const Tensor& dst,
                   float k, const Tensor& weight, Tensor& loss, Tensor& dlogits, Tensor* active);
// The same with a margin per row, k_rows float [n]: the candidates of several settings
// (IPGuard at several k) searched as one batch.
void boundary_loss(BoundaryLoss kind, const Tensor& logits, const Tensor& src, const Tensor& dst,
                   const Tensor& k_rows, const Tensor& weight, Tensor& loss, Tensor& dlogits,
                   Tensor* active);

// x [n, ...] -= Adam step along grad (moments m, v shaped like x), clipped to [lo, hi];
// rows with active[r] == 0 untouched (active undefined: every row).
void boundary_adam_step(Tensor& x, const Tensor& grad, Tensor& m, Tensor& v, const Tensor& active,
                        const AdamCoeffs& c, float lo, float hi);

// The same step with the coefficients in memory on x's device, for a loop that is
// replayed (engine/replay.h): table float [T, 6] from adam_table, step int32 [1] the row
// to use (0 <= step < T; not checked on the device: reading it would synchronize).
void boundary_adam_step_at(Tensor& x, const Tensor& grad, Tensor& m, Tensor& v,
                           const Tensor& active, const Tensor& table, const Tensor& step, float lo,
                           float hi);
// ++step[0] on its device.
void boundary_step_advance(Tensor& step);
// adam_coeffs(lr, beta1, beta2, eps, weight_decay, t) for t = first, ..., first + count - 1,
// one row each: float [count, 6] on dev.
Tensor adam_table(float lr, float beta1, float beta2, float eps, float weight_decay,
                  int64_t first, int64_t count, Device dev);

// x [n, ...] -= alpha * sign(grad), kept within eps of x0 and in [lo, hi]; rows with
// active[r] == 0 untouched.
void boundary_sign_step(Tensor& x, const Tensor& x0, const Tensor& grad, const Tensor& active,
                        float alpha, float eps, float lo, float hi);

// CW-L2 (Carlini and Wagner's L2 attack, box [0,1]): one Adam step of the search
// variables u [n, ...] (moments m, v) for ||x - x0s||^2 plus the classification term whose
// gradient at the current pixels is grad; then x = tanh(u)/2 + 1/2 (written). t holds
// tanh(u) of the current u (the caller sets it with u) and is advanced with u.
void boundary_cw_step(Tensor& u, Tensor& t, Tensor& x, const Tensor& x0s, const Tensor& grad,
                      Tensor& m, Tensor& v, const AdamCoeffs& c);
// The same step with the coefficients in memory (table and step as boundary_adam_step_at):
// CW-L2's iterations replayed.
void boundary_cw_step_at(Tensor& u, Tensor& t, Tensor& x, const Tensor& x0s, const Tensor& grad,
                         Tensor& m, Tensor& v, const Tensor& table, const Tensor& step);

// CW-L2's bookkeeping after the forward pass at x with logits [n, classes]: l2 [n] (squared
// distance to x0s) and success [n] (int32: the target, lowered by kappa, is the first
// largest logit) are written; rows that succeed closer than best_l2 [n] move best_l2 and
// their row of best_x.
void boundary_cw_track(const Tensor& x, const Tensor& x0s, const Tensor& logits, const Tensor& dst,
                       float kappa, Tensor& l2, Tensor& success, Tensor& best_l2, Tensor& best_x);
// The same with a confidence per row, kappa_rows float [n]: the candidates of several
// settings (CW-L2 at several kappa) searched as one batch.
void boundary_cw_track(const Tensor& x, const Tensor& x0s, const Tensor& logits, const Tensor& dst,
                       const Tensor& kappa_rows, Tensor& l2, Tensor& success, Tensor& best_l2,
                       Tensor& best_x);

}  // namespace ipg::ops
