// CPU twin of kernels/cuda/row_hash.cu: a 64-bit hash of each row's float bits
// (kernels/common/row_hash_math.h), for comparing points without copying them.
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

// out[2r] = low and out[2r + 1] = high 32 bits of row r's hash, x [rows, cols] with
// cols < 2^32. Bits, not values: 0.f and -0.f differ, a NaN equals only its own bits.
void row_hash(const float* x, int32_t* out, int64_t rows, int64_t cols);

}  // namespace ipg::kernels::cpu
