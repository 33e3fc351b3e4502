// CPU twins of kernels/cuda/rowwise.cu: ops that pick one element per row of an [rows, cols]
// matrix by an int32 index. Backward kernels accumulate (dx += ...). An index outside
// [0, cols) reads as NaN and writes nothing (callers validate with first_invalid_index).
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// out[0] = the first r with index[r] outside [0, bound), or -1 when all are inside.
void first_invalid_index(const int32_t* index, int64_t n, int64_t bound, int32_t* out);

// out[r] = x[r, index[r]].
void gather_rows_forward(const float* x, const int32_t* index, float* out, int64_t rows,
                         int64_t cols);
// dx[r, index[r]] += dy[r].
void gather_rows_backward(const int32_t* index, const float* dy, float* dx, int64_t rows,
                          int64_t cols);

// out = x with out[r, index[r]] = values[r].
void scatter_rows_forward(const float* x, const int32_t* index, const float* values, float* out,
                          int64_t rows, int64_t cols);
// dx += dy except at the overwritten elements; dvalues[r] += dy[r, index[r]]. Either
// output may be null.
void scatter_rows_backward(const int32_t* index, const float* dy, float* dx, float* dvalues,
                           int64_t rows, int64_t cols);

// out[r] = max of x[r, c] over the c not among exclude[r, 0..m); arg[r] = that c (the
// first one on ties; NaN wins), or -1 with out[r] = -inf when every class is excluded.
void max_excluding_forward(const float* x, const int32_t* exclude, float* out, int32_t* arg,
                           int64_t rows, int64_t cols, int64_t m);
// dx[r, arg[r]] += dy[r] where arg[r] >= 0.
void max_excluding_backward(const int32_t* arg, const float* dy, float* dx, int64_t rows,
                            int64_t cols);

}  // namespace ipg::kernels::cpu
