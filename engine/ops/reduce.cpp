// Reductions over [outer, dim, inner] views of contiguous tensors.
#include "engine/ops/reduce.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/cpu/reduce.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/reduce.h"
#endif

namespace ipg {

#if IPG_HAS_CUDA
void detail::cuda_sum_dim(Device d, const float* x, float* y, int64_t outer, int64_t dim,
                          int64_t inner, float scale, float beta) {
  const int64_t ws = kernels::cuda::sum_dim_workspace(outer, dim, inner);
  Tensor workspace = ws > 0 ? Tensor::empty({ws}, d) : Tensor();
  kernels::cuda::sum_dim(x, y, outer, dim, inner, scale, beta,
                         workspace.defined() ? workspace.data() : nullptr, cuda_stream(d));
}
#endif

namespace ops {

namespace {

// Sums x viewed as [outer, len, inner] over len, times scale, into out_shape.
Tensor reduce(const char* name, const Tensor& x, int64_t outer, int64_t len, int64_t inner,
              float scale, const Shape& out_shape) {
  detail::check_dtype(name, x, DType::F32);
  Tensor y = Tensor::empty(out_shape, x.device());
  IPG_ON_DEVICE(name, x.device(),
                kernels::cpu::sum_dim(x.data(), y.data(), outer, len, inner, scale, 0.f),
                (void)stream;
                detail::cuda_sum_dim(x.device(), x.data(), y.data(), outer, len, inner, scale, 0.f));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, name, {x}, [outer, len, inner, scale](const Tensor& gout, GradSink& sink) {
      float* dx = sink.at(0).data();
      IPG_ON_DEVICE(
          "sum_dim_backward", gout.device(),
          kernels::cpu::sum_dim_backward(gout.data(), dx, outer, len, inner, scale),
          kernels::cuda::sum_dim_backward(gout.data(), dx, outer, len, inner, scale, stream));
    });
  }
  return y;
}

Tensor reduce_dim(const char* name, const Tensor& x, int dim, bool keepdim, bool is_mean) {
  const int n = x.ndim();
  const int d = dim < 0 ? dim + n : dim;
  if (d < 0 || d >= n)
    throw ShapeError(std::string(name) + ": dimension " + std::to_string(dim) +
                     " out of range for shape " + shape_str(x.shape()));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int i = d + 1; i < n; ++i) inner *= x.shape()[i];
  const int64_t len = x.shape()[d];
  Shape out = x.shape();
  if (keepdim)
    out[d] = 1;
  else
    out.erase(out.begin() + d);
  const float scale = is_mean ? (len ? 1.f / static_cast<float>(len) : 0.f) : 1.f;
  return reduce(name, x, outer, len, inner, scale, out);
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce("sum", x, 1, x.numel(), 1, 1.f, {}); }

Tensor mean(const Tensor& x) {
  const int64_t n = x.numel();
  return reduce("mean", x, 1, n, 1, n ? 1.f / static_cast<float>(n) : 0.f, {});
}

Tensor sum(const Tensor& x, int dim, bool keepdim) {
  return reduce_dim("sum", x, dim, keepdim, false);
}

Tensor mean(const Tensor& x, int dim, bool keepdim) {
  return reduce_dim("mean", x, dim, keepdim, true);
}

}  // namespace ops
}  // namespace ipg
