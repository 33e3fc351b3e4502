// CPU twins of kernels/cuda/boundary.cu: the fused per-iteration kernels of boundary
// search on a batch of candidates (kernels/common/boundary_math.h has the formulas).
// Rows are candidates; `active` (int32 per row, nonzero: still searching; null: all
// rows) freezes converged rows in place so that shapes never change.
#pragma once

#include <stdint.h>

#include "kernels/common/boundary_math.h"

namespace ipg::kernels::cpu {

// loss [rows] and dz [rows, classes] for logits z [rows, classes]; src/dst [rows] are the
// labels i and j, weight [rows] the per-row scale (null: 1), k_rows [rows] the per-row
// margin (null: k for every row: several settings' candidates share a batch with it). When
// `active` is not null, a row whose loss is 0 (the search reached its goal) is marked
// inactive; rows already inactive are still evaluated.
void boundary_loss(BoundaryLoss kind, const float* z, int64_t rows, int64_t classes,
                   const int32_t* src, const int32_t* dst, float k, const float* k_rows,
                   const float* weight, float* loss, float* dz, int32_t* active);

// x [rows, row_len] one Adam step along g with moments m, v, clipped to [lo, hi]; rows
// inactive in `active` are left untouched (x, m and v).
void boundary_adam_step(float* x, const float* g, float* m, float* v, int64_t rows, int64_t row_len,
                        const int32_t* active, const AdamCoeffs& c, float lo, float hi);

// boundary_adam_step with this iteration's coefficients read from memory: table[*step]
// (the host fills the table with adam_coeffs of every iteration). The arguments stay the
// same from one iteration to the next, so a captured iteration can be replayed
// (engine/replay.h); boundary_step_advance moves *step on.
void boundary_adam_step_at(float* x, const float* g, float* m, float* v, int64_t rows,
                           int64_t row_len, const int32_t* active, const AdamCoeffs* table,
                           const int32_t* step, float lo, float hi);
// ++*step.
void boundary_step_advance(int32_t* step);

// x [rows, row_len] one signed step of alpha along -g, within eps of x0 and in [lo, hi];
// inactive rows untouched.
void boundary_sign_step(float* x, const float* x0, const float* g, int64_t rows, int64_t row_len,
                        const int32_t* active, float alpha, float eps, float lo, float hi);

// CW-L2, one Adam step of the search variables u [rows, row_len] (moments m, v) along the
// network's gradient g at the current pixels, plus the L2 term to x0s; then writes the new
// pixels x = tanh(u)/2 + 1/2. t holds tanh(u) for the current u and is advanced with it
// (one tanh per element and step instead of two). Every row steps (CW-L2 has no per-row
// stop).
void boundary_cw_step(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                      float* v, int64_t rows, int64_t row_len, const AdamCoeffs& c);
// The same with this iteration's coefficients read from memory, table[*step] (as
// boundary_adam_step_at): CW-L2's iterations replayed.
void boundary_cw_step_at(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                         float* v, int64_t rows, int64_t row_len, const AdamCoeffs* table,
                         const int32_t* step);

// CW-L2's bookkeeping after a forward pass at pixels x with logits z [rows, classes]:
// l2[r] = ||x_r - x0s_r||^2, success[r] = boundary_cw_success; where a row succeeds with
// l2 below best_l2[r], best_l2[r] and best_x (row r) take it. kappa_rows: each row's
// confidence (several settings' rows in one batch), or null (kappa for every row).
void boundary_cw_track(const float* x, const float* x0s, const float* z, const int32_t* dst,
                       float kappa, const float* kappa_rows, int64_t rows, int64_t row_len,
                       int64_t classes, float* l2, int32_t* success, float* best_l2,
                       float* best_x);

}  // namespace ipg::kernels::cpu
