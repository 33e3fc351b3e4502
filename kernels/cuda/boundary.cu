// Boundary-search kernels on CUDA. The loss runs one thread per candidate row (a row is
// at most ~1,000 logits and a batch ~100 rows: the kernel is tiny next to the network);
// the updates run one thread per pixel, a row's pixels skipped when it is inactive.
#include "kernels/cuda/boundary.h"
#include "kernels/cuda/launch.cuh"

namespace ipg::kernels::cuda {

void boundary_loss(BoundaryLoss kind, const float* z, int64_t rows, int64_t classes,
                   const int32_t* src, const int32_t* dst, float k, const float* k_rows,
                   const float* weight, float* loss, float* dz, int32_t* active,
                   cudaStream_t stream) {
  launch(rows, stream, [=] __device__(int64_t r) {
    const float l = boundary_loss_row(kind, z + r * classes, static_cast<int>(classes), src[r],
                                      dst[r], k_rows ? k_rows[r] : k, weight ? weight[r] : 1.f,
                                      dz + r * classes);
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

void boundary_adam_step_at(float* x, const float* g, float* m, float* v, int64_t rows,
                           int64_t row_len, const int32_t* active, const AdamCoeffs* table,
                           const int32_t* step, float lo, float hi, cudaStream_t stream) {
  launch(rows * row_len, stream, [=] __device__(int64_t e) {
    if (active && !active[e / row_len]) return;
    const AdamCoeffs c = table[*step];  // the same word for every thread: one cached load
    x[e] = boundary_adam_element(x[e], g[e], m + e, v + e, c, lo, hi);
  });
}

void boundary_step_advance(int32_t* step, cudaStream_t stream) {
  launch(1, stream, [=] __device__(int64_t) { ++*step; });
}

void boundary_sign_step(float* x, const float* x0, const float* g, int64_t rows, int64_t row_len,
                        const int32_t* active, float alpha, float eps, float lo, float hi,
                        cudaStream_t stream) {
  launch(rows * row_len, stream, [=] __device__(int64_t e) {
    if (active && !active[e / row_len]) return;
    x[e] = boundary_sign_element(x[e], x0[e], g[e], alpha, eps, lo, hi);
  });
}

void boundary_cw_step(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                      float* v, int64_t rows, int64_t row_len, const AdamCoeffs& c,
                      cudaStream_t stream) {
  launch(rows * row_len, stream, [=] __device__(int64_t e) {
    boundary_cw_element(u + e, t + e, x + e, x0s[e], g[e], m + e, v + e, c);
  });
}

void boundary_cw_step_at(float* u, float* t, float* x, const float* x0s, const float* g, float* m,
                         float* v, int64_t rows, int64_t row_len, const AdamCoeffs* table,
                         const int32_t* step, cudaStream_t stream) {
  launch(rows * row_len, stream, [=] __device__(int64_t e) {
    const AdamCoeffs c = table[*step];  // the same word for every thread: one cached load
    boundary_cw_element(u + e, t + e, x + e, x0s[e], g[e], m + e, v + e, c);
  });
}

namespace {

// One block of kCwLanes threads per row: lane l sums the elements e = l mod kCwLanes in
// order, lane 0 adds the lanes in order: the CPU twin's exact summation (and its roundings:
// no FMA).
__global__ void cw_track_kernel(const float* x, const float* x0s, const float* z,
                                const int32_t* dst, float kappa, const float* kappa_rows,
                                int64_t row_len, int64_t classes, float* l2, int32_t* success,
                                float* best_l2, float* best_x) {
  __shared__ float part[kCwLanes];
  __shared__ int improved;
  const int64_t r = blockIdx.x;
  const int lane = threadIdx.x;
  const float* xr = x + r * row_len;
  const float* sr = x0s + r * row_len;
  float acc = 0.f;
  for (int64_t e = lane; e < row_len; e += kCwLanes) {
    const float d = xr[e] - sr[e];
    // __fmul_rn: nvcc would otherwise contract the square and the sum into one FMA (one
    // rounding where the CPU twin rounds twice), and the sums would differ in their bits.
    acc += __fmul_rn(d, d);
  }
  part[lane] = acc;
  __syncthreads();
  if (lane == 0) {
    float sum = 0.f;
    for (int l = 0; l < kCwLanes; ++l) sum += part[l];
    l2[r] = sum;
    const bool ok = boundary_cw_success(z + r * classes, static_cast<int>(classes), dst[r],
                                        kappa_rows ? kappa_rows[r] : kappa);
    success[r] = ok;
    improved = ok && sum < best_l2[r];
    if (improved) best_l2[r] = sum;
  }
  __syncthreads();
  if (improved)
    for (int64_t e = lane; e < row_len; e += kCwLanes) best_x[r * row_len + e] = xr[e];
}

}  // namespace

void boundary_cw_track(const float* x, const float* x0s, const float* z, const int32_t* dst,
                       float kappa, const float* kappa_rows, int64_t rows, int64_t row_len,
                       int64_t classes, float* l2, int32_t* success, float* best_l2,
                       float* best_x, cudaStream_t stream) {
  if (rows <= 0) return;
  cw_track_kernel<<<static_cast<unsigned>(rows), kCwLanes, 0, stream>>>(
      x, x0s, z, dst, kappa, kappa_rows, row_len, classes, l2, success, best_l2, best_x);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
