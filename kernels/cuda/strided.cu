// Strided views on CUDA: grid-stride loops over the output through the index map of
// kernels/common/strided_math.h. The scatter's places are distinct (one-to-one views), so
// its adds neither race nor depend on the launch.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/strided.h"

namespace ipg::kernels::cuda {

void strided_gather(const float* x, float* y, const StridedView& v, cudaStream_t stream) {
  launch(v.numel(), stream, [=] __device__(int64_t i) { y[i] = x[strided_source(v, i)]; });
}

void strided_scatter_add(const float* dy, float* dx, const StridedView& v, cudaStream_t stream) {
  launch(v.numel(), stream, [=] __device__(int64_t i) { dx[strided_source(v, i)] += dy[i]; });
}

}  // namespace ipg::kernels::cuda
