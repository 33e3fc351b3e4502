// Index ops: argmax and row_hash (not differentiable: their outputs are integers) and the
// row picks gather_rows, scatter_rows and max_excluding, over
// kernels/{cpu,cuda}/{argmax,row_hash,rowwise}.
#include "engine/ops/index.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/cpu/argmax.h"
#include "kernels/cpu/row_hash.h"
#include "kernels/cpu/rowwise.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/argmax.h"
#include "kernels/cuda/row_hash.h"
#include "kernels/cuda/rowwise.h"
#endif

namespace ipg::ops {

namespace {

void check_matrix(const char* op, const Tensor& x) {
  if (x.ndim() != 2)
    throw ShapeError(std::string(op) + ": expected an [n, k] matrix, got " + shape_str(x.shape()));
  detail::check_dtype(op, x, DType::F32);
}

// A per-row tensor (index or values) must be [n] for x [n, k].
void check_per_row(const char* op, const Tensor& x, const Tensor& t, const char* what, DType dt) {
  detail::check_same_device(op, x, t);
  detail::check_dtype(op, t, dt);
  if (t.shape() != Shape{x.dim(0)})
    throw ShapeError(std::string(op) + ": x " + shape_str(x.shape()) + " and " + what + " " +
                     shape_str(t.shape()) + " do not match (" + what + " must be [n])");
}

int32_t first_invalid_index(const Tensor& index, int64_t bound) {
  const int64_t n = index.numel();
  Tensor flag = Tensor::empty({1}, index.device(), DType::I32);
  IPG_ON_DEVICE(
      "check_row_indices", index.device(),
      kernels::cpu::first_invalid_index(index.data_i32(), n, bound, flag.data_i32()),
      kernels::cuda::first_invalid_index(index.data_i32(), n, bound, flag.data_i32(), stream));
  return flag.to_vector_i32()[0];
}

}  // namespace

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

Tensor row_hash(const Tensor& x) {
  if (x.ndim() < 1)
    throw ShapeError("row_hash: expected [n, ...] rows, got " + shape_str(x.shape()));
  detail::check_dtype("row_hash", x, DType::F32);
  const int64_t rows = x.dim(0), cols = rows > 0 ? x.numel() / rows : 0;
  if (cols >= (int64_t{1} << 32))
    throw ShapeError("row_hash: rows of " + std::to_string(cols) + " elements (at most 2^32 - 1)");
  Tensor out = Tensor::empty({rows, 2}, x.device(), DType::I32);
  IPG_ON_DEVICE("row_hash", x.device(),
                kernels::cpu::row_hash(x.data(), out.data_i32(), rows, cols),
                kernels::cuda::row_hash(x.data(), out.data_i32(), rows, cols, stream));
  return out;
}

void check_row_indices(const char* op, const Tensor& index, int64_t bound, const char* what) {
  detail::check_dtype(op, index, DType::I32);
  const int32_t row = first_invalid_index(index, bound);
  if (row < 0) return;
  const int32_t value = index.to_vector_i32()[static_cast<size_t>(row)];
  throw std::invalid_argument(std::string(op) + ": " + what + " " + std::to_string(value) +
                              " in row " + std::to_string(row) + " is outside [0, " +
                              std::to_string(bound) + ")");
}

Tensor gather_rows(const Tensor& x, const Tensor& index) {
  check_matrix("gather_rows", x);
  check_per_row("gather_rows", x, index, "index", DType::I32);
  const int64_t rows = x.dim(0), cols = x.dim(1);
  check_row_indices("gather_rows", index, cols);
  Tensor out = Tensor::empty({rows}, x.device());
  IPG_ON_DEVICE(
      "gather_rows", x.device(),
      kernels::cpu::gather_rows_forward(x.data(), index.data_i32(), out.data(), rows, cols),
      kernels::cuda::gather_rows_forward(x.data(), index.data_i32(), out.data(), rows, cols,
                                         stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(
        out, "gather_rows", {x}, [index, rows, cols](const Tensor& gout, GradSink& sink) {
          float* dx = sink.at(0).data();
          IPG_ON_DEVICE(
              "gather_rows_backward", gout.device(),
              kernels::cpu::gather_rows_backward(index.data_i32(), gout.data(), dx, rows, cols),
              kernels::cuda::gather_rows_backward(index.data_i32(), gout.data(), dx, rows, cols,
                                                  stream));
        });
  }
  return out;
}

Tensor scatter_rows(const Tensor& x, const Tensor& index, const Tensor& values) {
  check_matrix("scatter_rows", x);
  check_per_row("scatter_rows", x, index, "index", DType::I32);
  check_per_row("scatter_rows", x, values, "values", DType::F32);
  const int64_t rows = x.dim(0), cols = x.dim(1);
  check_row_indices("scatter_rows", index, cols);
  Tensor out = Tensor::empty(x.shape(), x.device());
  IPG_ON_DEVICE("scatter_rows", x.device(),
                kernels::cpu::scatter_rows_forward(x.data(), index.data_i32(), values.data(),
                                                   out.data(), rows, cols),
                kernels::cuda::scatter_rows_forward(x.data(), index.data_i32(), values.data(),
                                                    out.data(), rows, cols, stream));
  if (autograd::needs_graph({x, values})) {
    autograd::attach(
        out, "scatter_rows", {x, values}, [index, rows, cols](const Tensor& gout, GradSink& sink) {
          float* dx = sink.wants(0) ? sink.at(0).data() : nullptr;
          float* dv = sink.wants(1) ? sink.at(1).data() : nullptr;
          IPG_ON_DEVICE("scatter_rows_backward", gout.device(),
                        kernels::cpu::scatter_rows_backward(index.data_i32(), gout.data(), dx, dv,
                                                            rows, cols),
                        kernels::cuda::scatter_rows_backward(index.data_i32(), gout.data(), dx, dv,
                                                             rows, cols, stream));
        });
  }
  return out;
}

Tensor max_excluding(const Tensor& x, const Tensor& exclude) {
  check_matrix("max_excluding", x);
  detail::check_same_device("max_excluding", x, exclude);
  detail::check_dtype("max_excluding", exclude, DType::I32);
  const int64_t rows = x.dim(0), cols = x.dim(1);
  const bool per_row = exclude.ndim() == 1 && exclude.dim(0) == rows;
  if (!per_row && !(exclude.ndim() == 2 && exclude.dim(0) == rows))
    throw ShapeError("max_excluding: x " + shape_str(x.shape()) + " and exclude " +
                     shape_str(exclude.shape()) + " do not match (exclude must be [n, m])");
  const int64_t m = per_row ? 1 : exclude.dim(1);
  Tensor out = Tensor::empty({rows}, x.device());
  Tensor arg = Tensor::empty({rows}, x.device(), DType::I32);
  IPG_ON_DEVICE("max_excluding", x.device(),
                kernels::cpu::max_excluding_forward(x.data(), exclude.data_i32(), out.data(),
                                                    arg.data_i32(), rows, cols, m),
                kernels::cuda::max_excluding_forward(x.data(), exclude.data_i32(), out.data(),
                                                     arg.data_i32(), rows, cols, m, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(
        out, "max_excluding", {x}, [arg, rows, cols](const Tensor& gout, GradSink& sink) {
          float* dx = sink.at(0).data();
          IPG_ON_DEVICE(
              "max_excluding_backward", gout.device(),
              kernels::cpu::max_excluding_backward(arg.data_i32(), gout.data(), dx, rows, cols),
              kernels::cuda::max_excluding_backward(arg.data_i32(), gout.data(), dx, rows, cols,
                                                    stream));
        });
  }
  return out;
}

}  // namespace ipg::ops
