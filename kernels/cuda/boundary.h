// CUDA twins of kernels/cpu/boundary.h (same names and semantics, stream last): the fused
// per-iteration kernels of boundary search. All candidates run as one batch; converged
// rows stay in it, frozen by `active`, so an iteration launches the same work every time
// and never synchronizes with the host.
#pragma once

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "kernels/common/boundary_math.h"

namespace ipg::kernels::cuda {

void boundary_loss(BoundaryLoss kind, const float* z, int64_t rows, int64_t classes,
                   const int32_t* src, const int32_t* dst, float k, const float* k_rows,
                   const float* weight, float* loss, float* dz, int32_t* active,
                   cudaStream_t stream);

void boundary_adam_step(float* x, const float* g, float* m, float* v, int64_t rows, int64_t row_len,
                        const int32_t* active, const AdamCoeffs& c, float lo, float hi,
                        cudaStream_t stream);

void boundary_adam_step_at(float* x, const float* g, float* m, float* v, int64_t rows,
                           int64_t row_len, const int32_t* active, const AdamCoeffs* table,
                           const int32_t* step, float lo, float hi, cudaStream_t stream);
void boundary_step_advance(int32_t* step, cudaStream_t stream);

void boundary_sign_step(float* x, const float* x0, const float* g, int64_t rows, int64_t row_len,
                        const int32_t* active, float alpha, float eps, float lo, float hi,
                        cudaStream_t stream);

void boundary_cw_step(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                      float* v, int64_t rows, int64_t row_len, const AdamCoeffs& c,
                      cudaStream_t stream);
void boundary_cw_step_at(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                         float* v, int64_t rows, int64_t row_len, const AdamCoeffs* table,
                         const int32_t* step, cudaStream_t stream);

void boundary_cw_track(const float* x, const float* x0s, const float* z, const int32_t* dst,
                       float kappa, const float* kappa_rows, int64_t rows, int64_t row_len,
                       int64_t classes, float* l2, int32_t* success, float* best_l2,
                       float* best_x, cudaStream_t stream);

}  // namespace ipg::kernels::cuda
