// Boundary-search kernels on CUDA. The loss runs one thread per candidate row (a row is
// at most ~1,000 logits and a batch ~100 rows: the kernel is tiny next to the network);
// the updates run one thread per pixel, a row's pixels skipped when it is inactive.
#include "kernels/cuda/boundary.h"
#include "kernels/cuda/launch.cuh"

namespace ipg::kernels::cuda {

void boundary_loss(BoundaryLoss kind, const float* z, int64_t rows, int64_t classes,
                   const int32_t* src, const int32_t* dst, float k, const float* weight,
                   float* loss, float* dz, int32_t* active, cudaStream_t stream) {
  launch(rows, stream, [=] __device__(int64_t r) {
    const float l = boundary_loss_row(kind, z + r * classes, static_cast<int>(classes), src[r],
                                      dst[r], k, weight ? weight[r] : 1.f, dz + r * classes);
    loss[r] = l;
    if (active && !(l > 0.f)) active[r] = 0;
  });
}

void boundary_adam_step(float* x, const float* g, float* m, float* v, int64_t rows, int64_t row_len,
                        const int32_t* active, const AdamCoeffs& c, float lo, float hi,
                        cudaStream_t stream) {
  launch(rows * row_len, stream, [=] __device__(int64_t e) {
    if (active && !active[e / row_len]) return;
    x[e] = boundary_adam_element(x[e], g[e], m + e, v + e, c, lo, hi);
  });
}

void boundary_sign_step(float* x, const float* x0, const float* g, int64_t rows, int64_t row_len,
                        const int32_t* active, float alpha, float eps, float lo, float hi,
                        cudaStream_t stream) {
  launch(rows * row_len, stream, [=] __device__(int64_t e) {
    if (active && !active[e / row_len]) return;
    x[e] = boundary_sign_element(x[e], x0[e], g[e], alpha, eps, lo, hi);
  });
}

}  // namespace ipg::kernels::cuda
