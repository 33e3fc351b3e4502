// CUDA elementwise kernels: grid-stride loops over the per-element math of
// kernels/common/elementwise_math.h.
#include "kernels/cuda/check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

void fill(float* y, float value, int64_t n, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) { y[i] = value; });
}

void fill_i32(int32_t* y, int32_t value, int64_t n, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) { y[i] = value; });
}

void affine(const float* x, float* y, float a, float b, int64_t n, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) { y[i] = a * x[i] + b; });
}

void axpy(const float* x, float* y, float alpha, int64_t n, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) { y[i] += alpha * x[i]; });
}

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) { y[i] = unary_apply(op, x[i]); });
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n, bool accumulate, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) {
    const float g = unary_grad(op, x[i], y[i], dy[i]);
    dx[i] = accumulate ? dx[i] + g : g;
  });
}

void binary_forward(BinaryOp op, const float* a, const float* b, float* out,
                    const BroadcastIndex& bi, int64_t n, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) {
    int64_t ia, ib;
    broadcast_offsets(bi, i, &ia, &ib);
    out[i] = binary_apply(op, a[ia], b[ib]);
  });
}

void binary_backward(BinaryOp op, const float* a, const float* b, const float* dy, float* da,
                     float* db, const BroadcastIndex& bi, int64_t n, bool acc_a, bool acc_b,
                     cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t i) {
    int64_t ia, ib;
    broadcast_offsets(bi, i, &ia, &ib);
    if (da) {
      const float g = dy[i] * binary_grad_a(op, a[ia], b[ib]);
      da[i] = acc_a ? da[i] + g : g;
    }
    if (db) {
      const float g = dy[i] * binary_grad_b(op, a[ia], b[ib]);
      db[i] = acc_b ? db[i] + g : g;
    }
  });
}

}  // namespace ipg::kernels::cuda
