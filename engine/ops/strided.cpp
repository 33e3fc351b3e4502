// permute and slice: one strided view each (kernels/common/strided_math.h), gathered
// forward; the backward adds the gradient back into the same places (a scatter through
// the same view, one-to-one, so each place receives one value).
#include "engine/ops/strided.h"

#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/cpu/strided.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/strided.h"
#endif

namespace ipg::ops {

using kernels::StridedView;

namespace {

Tensor strided_copy(const char* op, const Tensor& x, const StridedView& v) {
  Shape out(v.dims, v.dims + v.rank);
  Tensor y = Tensor::empty(out, x.device());
  if (y.numel() > 0)
    IPG_ON_DEVICE(op, x.device(), kernels::cpu::strided_gather(x.data(), y.data(), v),
                  kernels::cuda::strided_gather(x.data(), y.data(), v, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, op, {x}, [v](const Tensor& g, GradSink& sink) {
      if (v.numel() == 0) return;
      float* dx = sink.at(0).data();  // zero-filled on first use: the places outside the view
      IPG_ON_DEVICE("strided_copy_backward", g.device(),
                    kernels::cpu::strided_scatter_add(g.data(), dx, v),
                    kernels::cuda::strided_scatter_add(g.data(), dx, v, stream));
    });
  }
  return y;
}

// x's row-major strides, as a view of all of x.
StridedView whole(const Tensor& x) {
  StridedView v;
  v.rank = static_cast<int>(x.ndim());
  int64_t s = 1;
  for (int d = v.rank - 1; d >= 0; --d) {
    v.dims[d] = x.dim(d);
    v.strides[d] = s;
    s *= x.dim(d);
  }
  return v;
}

void check_rank(const char* op, const Tensor& x) {
  detail::check_dtype(op, x, DType::F32);
  if (x.ndim() < 1 || x.ndim() > kernels::kMaxViewRank)
    throw ShapeError(std::string(op) + ": input " + shape_str(x.shape()) + " must have 1 to " +
                     std::to_string(kernels::kMaxViewRank) + " dimensions");
}

}  // namespace

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  check_rank("permute", x);
  const StridedView all = whole(x);
  StridedView v = all;
  std::string p;
  for (int k : perm) p += (p.empty() ? "" : ", ") + std::to_string(k);
  const std::string what = "permute: input " + shape_str(x.shape()) + ", perm [" + p + "]";
  if (static_cast<int>(perm.size()) != all.rank) throw ShapeError(what + ": one axis per dimension needed");
  bool seen[kernels::kMaxViewRank] = {};
  for (int k = 0; k < all.rank; ++k) {
    const int a = perm[size_t(k)];
    if (a < 0 || a >= all.rank || seen[a]) throw ShapeError(what + ": not a permutation");
    seen[a] = true;
    v.dims[k] = all.dims[a];
    v.strides[k] = all.strides[a];
  }
  return strided_copy("permute", x, v);
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end, int64_t step) {
  check_rank("slice", x);
  const int rank = static_cast<int>(x.ndim());
  const std::string what = "slice: input " + shape_str(x.shape()) + ", axis " +
                           std::to_string(axis) + ", " + std::to_string(start) + ":" +
                           std::to_string(end) + ":" + std::to_string(step);
  const int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw ShapeError(what + ": no such axis");
  const int64_t dim = x.dim(a);
  if (step == 0) throw ShapeError(what + ": the step is 0");
  if (start < 0 || start >= dim || end < -1 || end > dim)
    throw ShapeError(what + ": start must lie inside the axis, end in [-1, " + std::to_string(dim) + "]");
  const int64_t count = step > 0 ? (end - start + step - 1) / step : (start - end - step - 1) / -step;
  if (count < 1) throw ShapeError(what + ": no element");
  if (count == 1) step = 1;  // the same view, and a step of any size cannot overflow below
  StridedView v = whole(x);
  v.offset = start * v.strides[a];
  v.strides[a] *= step;
  v.dims[a] = count;
  return strided_copy("slice", x, v);
}

}  // namespace ipg::ops
