// Index ops (not differentiable: their outputs are integers).
#include "engine/ops/index.h"

#include "engine/dispatch.h"
#include "kernels/cpu/argmax.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/argmax.h"
#endif

namespace ipg::ops {

Tensor argmax(const Tensor& scores) {
  if (scores.ndim() != 2 || scores.dim(1) == 0)
    throw ShapeError("argmax: expected [n, k] scores with k > 0, got " + shape_str(scores.shape()));
  detail::check_dtype("argmax", scores, DType::F32);
  const int64_t rows = scores.dim(0), cols = scores.dim(1);
  Tensor out = Tensor::empty({rows}, scores.device(), DType::I32);
  IPG_ON_DEVICE("argmax", scores.device(),
                kernels::cpu::argmax_rows(scores.data(), out.data_i32(), rows, cols),
                kernels::cuda::argmax_rows(scores.data(), out.data_i32(), rows, cols, stream));
  return out;
}

}  // namespace ipg::ops
