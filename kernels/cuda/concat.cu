// Concatenation on CUDA: grid-stride loops over a part's elements through the index map of
// kernels/common/concat_math.h.
#include "kernels/cuda/concat.h"
#include "kernels/cuda/launch.cuh"

namespace ipg::kernels::cuda {

void concat_forward(const float* x, float* y, const ConcatPart& p, cudaStream_t stream) {
  launch(p.numel(), stream, [=] __device__(int64_t i) { y[concat_out_index(p, i)] = x[i]; });
}

void concat_backward(const float* dy, float* dx, const ConcatPart& p, cudaStream_t stream) {
  launch(p.numel(), stream, [=] __device__(int64_t i) { dx[i] += dy[concat_out_index(p, i)]; });
}

}  // namespace ipg::kernels::cuda
