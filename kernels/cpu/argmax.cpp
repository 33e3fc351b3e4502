// Row argmax on CPU.
#include "kernels/cpu/argmax.h"

#include "kernels/common/argmax_math.h"

namespace ipg::kernels::cpu {

void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 14))
  for (int64_t r = 0; r < rows; ++r) out[r] = argmax_row(x + r * cols, cols);
}

}  // namespace ipg::kernels::cpu
