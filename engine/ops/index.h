// Ops that select by index: row argmax (labels from logits), and the per-row picks the
// fingerprint losses are made of (Z_i, Z_j, max_{t != i,j} Z_t).
#pragma once

#include "engine/tensor.h"

namespace ipg::ops {

// [n, k] float -> int32 [n], index of each row's maximum (ties: smallest index).
Tensor argmax(const Tensor& scores);

// x [n, k], index int32 [n] -> [n] with out[r] = x[r, index[r]]; differentiable in x.
Tensor gather_rows(const Tensor& x, const Tensor& index);

// A copy of x [n, k] with x[r, index[r]] = values[r] (index int32 [n], values [n]);
// differentiable in x (zero at the overwritten elements) and in values.
Tensor scatter_rows(const Tensor& x, const Tensor& index, const Tensor& values);

// Row max of x [n, k] over the classes not excluded: exclude int32 [n, m] ([n] is taken
// as [n, 1]); entries -1, and any outside [0, k), exclude nothing. -> [n]; a row with
// every class excluded gives -inf. The gradient goes to the first arg-max element; a NaN
// in a row wins (as in torch.max). For IPGuard's max_{t != i,j} Z_t and CW's
// max_{t != y*} Z_t.
Tensor max_excluding(const Tensor& x, const Tensor& exclude);

// A 64-bit hash of each row's float bits (kernels/common/row_hash_math.h): x [n, ...] float
// -> int32 [n, 2], the low then the high 32 bits; the same bits on every device. For
// comparing points where they are (IGSM's cycle watch) without copying them to the host.
Tensor row_hash(const Tensor& x);

// Throws std::invalid_argument naming `op`, the first row r whose index[r] is outside
// [0, bound), and its value ("what" names the entries, e.g. "label"). index is int32 [n]
// on any device; on CUDA the check reads one int back (a stream sync).
void check_row_indices(const char* op, const Tensor& index, int64_t bound,
                       const char* what = "index");

}  // namespace ipg::ops
