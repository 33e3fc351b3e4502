// Row-indexed ops on CUDA. Per-row ops take one thread per row (class counts are small and
// the scans are the shared ones of kernels/common/rowwise_math.h); scatter takes one
// thread per element, and the single element of a row that matches the index is the only
// writer of that row's value gradient, so no atomics are needed.
#include "kernels/common/rowwise_math.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/rowwise.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

// One block takes the minimum invalid row with a fixed tree (min is exact in any order;
// the tree only avoids atomics and a separate initialization).
__global__ void first_invalid_index_kernel(const int32_t* index, int64_t n, int64_t bound,
                                           int32_t* out) {
  __shared__ int64_t buf[kThreads];
  int64_t first = n;
  for (int64_t r = threadIdx.x; r < n && first == n; r += blockDim.x)
    if (!index_in_range(index[r], bound)) first = r;
  buf[threadIdx.x] = first;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && buf[threadIdx.x + s] < buf[threadIdx.x])
      buf[threadIdx.x] = buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = buf[0] == n ? -1 : static_cast<int32_t>(buf[0]);
}

}  // namespace

void first_invalid_index(const int32_t* index, int64_t n, int64_t bound, int32_t* out,
                         cudaStream_t stream) {
  first_invalid_index_kernel<<<1, kThreads, 0, stream>>>(index, n, bound, out);
  IPG_CUDA_CHECK_LAUNCH();
}

void gather_rows_forward(const float* x, const int32_t* index, float* out, int64_t rows,
                         int64_t cols, cudaStream_t stream) {
  launch(rows, stream, [=] __device__(int64_t r) {
    out[r] = index_in_range(index[r], cols) ? x[r * cols + index[r]] : NAN;
  });
}

void gather_rows_backward(const int32_t* index, const float* dy, float* dx, int64_t rows,
                          int64_t cols, cudaStream_t stream) {
  launch(rows, stream, [=] __device__(int64_t r) {
    if (index_in_range(index[r], cols)) dx[r * cols + index[r]] += dy[r];
  });
}

void scatter_rows_forward(const float* x, const int32_t* index, const float* values, float* out,
                          int64_t rows, int64_t cols, cudaStream_t stream) {
  launch(rows * cols, stream, [=] __device__(int64_t i) {
    const int64_t r = i / cols;
    out[i] = i - r * cols == index[r] ? values[r] : x[i];
  });
}

void scatter_rows_backward(const int32_t* index, const float* dy, float* dx, float* dvalues,
                           int64_t rows, int64_t cols, cudaStream_t stream) {
  launch(rows * cols, stream, [=] __device__(int64_t i) {
    const int64_t r = i / cols;
    if (i - r * cols == index[r]) {
      if (dvalues) dvalues[r] += dy[i];
    } else if (dx) {
      dx[i] += dy[i];
    }
  });
}

void max_excluding_forward(const float* x, const int32_t* exclude, float* out, int32_t* arg,
                           int64_t rows, int64_t cols, int64_t m, cudaStream_t stream) {
  launch(rows, stream, [=] __device__(int64_t r) {
    const int32_t a = max_excluding_row(x + r * cols, cols, exclude + r * m, m);
    arg[r] = a;
    out[r] = a >= 0 ? x[r * cols + a] : -INFINITY;
  });
}

void max_excluding_backward(const int32_t* arg, const float* dy, float* dx, int64_t rows,
                            int64_t cols, cudaStream_t stream) {
  launch(rows, stream, [=] __device__(int64_t r) {
    if (arg[r] >= 0) dx[r * cols + arg[r]] += dy[r];
  });
}

}  // namespace ipg::kernels::cuda
