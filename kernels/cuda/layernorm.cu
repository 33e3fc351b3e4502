// Layer normalization on CUDA: one warp per row (warp_rows.cuh) for the statistics and the
// input gradient, two passes over the row like the CPU twin (the mean, then the squared
// deviations), in float; the parameter gradients one thread per column, rows in order, in
// double. No atomics: the same bits on every run.
#include "kernels/common/layernorm_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda/runtime.h"
#include "kernels/cuda/warp_rows.cuh"

namespace ipg::kernels::cuda {

namespace {

__global__ void layer_norm_forward_kernel(const float* x, const float* gamma, const float* beta,
                                          float* y, float* mean, float* rstd, int64_t rows,
                                          int64_t cols, float eps) {
  for_each_warp_row(rows, [&](int64_t r, int lane) {
    const float* xr = x + r * cols;
    float s = 0.f;
    for (int64_t c = lane; c < cols; c += kWarp) s += xr[c];
    const float m = warp_sum(s) / static_cast<float>(cols);
    float v = 0.f;
    for (int64_t c = lane; c < cols; c += kWarp) {
      const float d = xr[c] - m;
      v += d * d;
    }
    const float rs = layer_norm_rstd(warp_sum(v) / static_cast<float>(cols), eps);
    if (lane == 0) {
      mean[r] = m;
      rstd[r] = rs;
    }
    float* yr = y + r * cols;
    for (int64_t c = lane; c < cols; c += kWarp)
      yr[c] = layer_norm_value(xr[c], m, rs, gamma, beta, c);
  });
}

__global__ void layer_norm_backward_input_kernel(const float* x, const float* mean,
                                                 const float* rstd, const float* gamma,
                                                 const float* dy, float* dx, int64_t rows,
                                                 int64_t cols, bool accumulate) {
  for_each_warp_row(rows, [&](int64_t r, int lane) {
    const float* xr = x + r * cols;
    const float* gr = dy + r * cols;
    const float m = mean[r], rs = rstd[r];
    float sg = 0.f, sgx = 0.f;
    for (int64_t c = lane; c < cols; c += kWarp) {
      const float g = layer_norm_scaled_grad(gr[c], gamma, c);
      sg += g;
      sgx += g * layer_norm_xhat(xr[c], m, rs);
    }
    const float mg = warp_sum(sg) / static_cast<float>(cols);
    const float mgx = warp_sum(sgx) / static_cast<float>(cols);
    float* d = dx + r * cols;
    for (int64_t c = lane; c < cols; c += kWarp) {
      const float v = layer_norm_input_grad(layer_norm_scaled_grad(gr[c], gamma, c),
                                            layer_norm_xhat(xr[c], m, rs), rs, mg, mgx);
      d[c] = accumulate ? d[c] + v : v;
    }
  });
}

// Training only (a fingerprint's parameters are frozen): few threads when the rows are
// short, each reading a column down the rows, coalesced across the warp. Summed in double,
// as the CPU twin does: a column may have as many terms as the batch has tokens.
__global__ void layer_norm_backward_params_kernel(const float* x, const float* mean,
                                                  const float* rstd, const float* dy,
                                                  float* dgamma, float* dbeta, int64_t rows,
                                                  int64_t cols) {
  for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
       c += (int64_t)gridDim.x * blockDim.x) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const float g = dy[r * cols + c];
      sg += g;
      sgx += double(g) * double(layer_norm_xhat(x[r * cols + c], mean[r], rstd[r]));
    }
    if (dgamma) dgamma[c] += static_cast<float>(sgx);
    if (dbeta) dbeta[c] += static_cast<float>(sg);
  }
}

}  // namespace

void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y,
                        float* mean, float* rstd, int64_t rows, int64_t cols, float eps,
                        cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  layer_norm_forward_kernel<<<warp_blocks(rows), kThreads, 0, stream>>>(x, gamma, beta, y, mean,
                                                                        rstd, rows, cols, eps);
  IPG_CUDA_CHECK_LAUNCH();
}

void layer_norm_backward_input(const float* x, const float* mean, const float* rstd,
                               const float* gamma, const float* dy, float* dx, int64_t rows,
                               int64_t cols, bool accumulate, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  layer_norm_backward_input_kernel<<<warp_blocks(rows), kThreads, 0, stream>>>(
      x, mean, rstd, gamma, dy, dx, rows, cols, accumulate);
  IPG_CUDA_CHECK_LAUNCH();
}

void layer_norm_backward_params(const float* x, const float* mean, const float* rstd,
                                const float* dy, float* dgamma, float* dbeta, int64_t rows,
                                int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || (!dgamma && !dbeta)) return;
  layer_norm_backward_params_kernel<<<blocks_for(cols), kThreads, 0, stream>>>(
      x, mean, rstd, dy, dgamma, dbeta, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
