// Per-row hash of float bits on CPU: one row per iteration, terms summed modulo 2^64.
#include "kernels/cpu/row_hash.h"

#include <cstring>

#include "kernels/common/row_hash_math.h"

namespace ipg::kernels::cpu {

void row_hash(const float* x, int32_t* out, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = x + r * cols;
    uint64_t sum = 0;
    for (int64_t i = 0; i < cols; ++i) {
      uint32_t bits;
      std::memcpy(&bits, p + i, sizeof bits);
      sum += row_hash_term(i, bits);
    }
    const uint64_t h = row_hash_finish(sum, cols);
    out[2 * r] = static_cast<int32_t>(static_cast<uint32_t>(h));
    out[2 * r + 1] = static_cast<int32_t>(static_cast<uint32_t>(h >> 32));
  }
}

}  // namespace ipg::kernels::cpu
