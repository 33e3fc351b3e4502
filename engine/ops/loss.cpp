// Softmax and cross-entropy: dispatch to kernels/{cpu,cuda}/softmax_xent and their
// backward. The forward pass keeps each row's (max, sum of exponentials) so the backward
// pass recomputes the softmax without a second reduction.
#include "engine/ops/loss.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/index.h"
#include "kernels/cpu/softmax_xent.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/softmax_xent.h"
#endif

namespace ipg::ops {

namespace {

void check_logits(const char* op, const Tensor& logits) {
  if (logits.ndim() != 2 || logits.dim(0) == 0 || logits.dim(1) == 0)
    throw ShapeError(std::string(op) + ": expected [n, k] logits with n, k > 0, got " +
                     shape_str(logits.shape()));
  detail::check_dtype(op, logits, DType::F32);
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  check_logits("cross_entropy", logits);
  detail::check_dtype("cross_entropy", labels, DType::I32);
  detail::check_same_device("cross_entropy", logits, labels);
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  if (labels.shape() != Shape{rows})
    throw ShapeError("cross_entropy: logits " + shape_str(logits.shape()) + " and labels " +
                     shape_str(labels.shape()) + " do not match (labels must be [n])");
  check_row_indices("cross_entropy", labels, cols, "label");

  const Device dev = logits.device();
  Tensor row_stats = Tensor::empty({rows, 2}, dev);
  Tensor loss = Tensor::empty({}, dev);
  IPG_ON_DEVICE(
      "cross_entropy", dev,
      kernels::cpu::softmax_xent_forward(logits.data(), labels.data_i32(), row_stats.data(),
                                         loss.data(), rows, cols),
      kernels::cuda::softmax_xent_forward(logits.data(), labels.data_i32(), row_stats.data(),
                                          loss.data(), rows, cols, stream));
  if (autograd::needs_graph({logits})) {
    autograd::attach(
        loss, "cross_entropy", {logits},
        [z = logits.detach(), labels, row_stats, rows, cols](const Tensor& gout, GradSink& sink) {
          float* dz = sink.at(0).data();
          IPG_ON_DEVICE(
              "cross_entropy_backward", gout.device(),
              kernels::cpu::softmax_xent_backward(z.data(), labels.data_i32(), row_stats.data(),
                                                  gout.data(), dz, rows, cols),
              kernels::cuda::softmax_xent_backward(z.data(), labels.data_i32(), row_stats.data(),
                                                   gout.data(), dz, rows, cols, stream));
        });
  }
  return loss;
}

Tensor softmax(const Tensor& logits) {
  if (logits.ndim() < 1)
    throw ShapeError("softmax: expected at least one dimension, got " + shape_str(logits.shape()));
  detail::check_dtype("softmax", logits, DType::F32);
  // Along the last axis: any leading dimensions are rows.
  const int64_t cols = logits.dim(logits.ndim() - 1);
  const int64_t rows = cols == 0 ? 0 : logits.numel() / cols;
  Tensor y = Tensor::empty(logits.shape(), logits.device());
  IPG_ON_DEVICE("softmax", logits.device(),
                kernels::cpu::softmax_forward(logits.data(), y.data(), rows, cols),
                kernels::cuda::softmax_forward(logits.data(), y.data(), rows, cols, stream));
  if (autograd::needs_graph({logits})) {
    autograd::attach(
        y, "softmax", {logits}, [y = y.detach(), rows, cols](const Tensor& gout, GradSink& sink) {
          float* dx = sink.at(0).data();
          IPG_ON_DEVICE(
              "softmax_backward", gout.device(),
              kernels::cpu::softmax_backward(y.data(), gout.data(), dx, rows, cols),
              kernels::cuda::softmax_backward(y.data(), gout.data(), dx, rows, cols, stream));
        });
  }
  return y;
}

}  // namespace ipg::ops
