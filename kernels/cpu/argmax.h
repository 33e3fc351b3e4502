// CPU twin of kernels/cuda/argmax.cu: index of the row maximum of an [n, k] matrix.
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// out[r] = argmax_c x[r, c]; ties go to the smallest index; NaN never wins.
void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols);

}  // namespace ipg::kernels::cpu
