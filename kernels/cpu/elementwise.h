// CPU twins of kernels/cuda/elementwise.cu: fills, unary and broadcast binary ops,
// forward and backward. Backward kernels add into their gradient buffers (dx += ...) when
// `accumulate` is true and write them (dx = ...) when it is false: autodiff hands a new,
// uninitialized buffer to the first gradient of a value (engine/autograd.h, target()).
#pragma once

#include <stdint.h>

#include "kernels/common/broadcast.h"
#include "kernels/common/elementwise_math.h"

namespace ipg::kernels::cpu {

void fill(float* y, float value, int64_t n);
void fill_i32(int32_t* y, int32_t value, int64_t n);

// y = a*x + b (in place allowed).
void affine(const float* x, float* y, float a, float b, int64_t n);
// y += alpha*x.
void axpy(const float* x, float* y, float alpha, int64_t n);

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n);
// dx (+)= dy * f'(x) (y = f(x) is passed for ops whose derivative is cheaper from it).
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n, bool accumulate);

// out[i] = a[ia] op b[ib] over the output described by bi (n = its element count).
void binary_forward(BinaryOp op, const float* a, const float* b, float* out,
                    const BroadcastIndex& bi, int64_t n);
// da[i] (+)= dy[i] * d/da, db[i] (+)= dy[i] * d/db, with da and db output-shaped (either
// may be null; each with its own accumulate flag); reducing a broadcast operand's gradient
// is sum_to_shape's job. da and db may be one buffer (a op a): da is done first, so then
// acc_b must be true.
void binary_backward(BinaryOp op, const float* a, const float* b, const float* dy, float* da,
                     float* db, const BroadcastIndex& bi, int64_t n, bool acc_a, bool acc_b);

}  // namespace ipg::kernels::cpu
