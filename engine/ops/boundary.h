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

// x [n, ...] -= Adam step along grad (moments m, v shaped like x), clipped to [lo, hi];
// rows with active[r] == 0 untouched (active undefined: every row).
void boundary_adam_step(Tensor& x, const Tensor& grad, Tensor& m, Tensor& v, const Tensor& active,
                        const AdamCoeffs& c, float lo, float hi);

// x [n, ...] -= alpha * sign(grad), kept within eps of x0 and in [lo, hi]; rows with
// active[r] == 0 untouched.
void boundary_sign_step(Tensor& x, const Tensor& x0, const Tensor& grad, const Tensor& active,
                        float alpha, float eps, float lo, float hi);

}  // namespace ipg::ops
