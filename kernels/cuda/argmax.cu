// Row argmax on CUDA: one thread per row, the same scan as the CPU twin.
#include "kernels/common/argmax_math.h"
#include "kernels/cuda/argmax.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {
__global__ void argmax_rows_kernel(const float* x, int32_t* out, int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x)
    out[r] = argmax_row(x + r * cols, cols);
}
}  // namespace

void argmax_rows(const float* x, int32_t* out, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0) return;
  argmax_rows_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(x, out, rows, cols);
  IPG_CUDA_CHECK_LAUNCH();
}

}  // namespace ipg::kernels::cuda
