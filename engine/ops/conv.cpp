// conv2d over the oneDNN (CPU) and cuDNN (CUDA) twins in kernels/*/conv2d. Each pass
// takes its workspace as a tensor from the device's caching allocator, so a loop with
// fixed shapes allocates nothing new after its first iteration. Backward computes only
// the gradients the graph asks for: with frozen weights (the fingerprint loop) it runs
// the backward-data pass alone.
#include "engine/ops/conv.h"

#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/trace.h"
#include "kernels/cpu/conv2d.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/conv2d.h"
#endif

namespace ipg::ops {

namespace {

using kernels::Conv2dShape;

// A workspace of at least `bytes` on `dev`; undefined (null pointer) when none is needed.
Tensor workspace(size_t bytes, Device dev) {
  if (bytes == 0) return Tensor();
  return Tensor::empty({static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float))}, dev);
}

void* pointer(const Tensor& t) { return t.defined() ? t.raw() : nullptr; }

void run_forward(const Conv2dShape& s, Device dev, const float* x, const float* w, const float* b,
                 float* y) {
  size_t bytes = 0;
  IPG_ON_DEVICE("conv2d", dev, bytes = kernels::cpu::conv2d_forward_workspace(s, b != nullptr),
                bytes = kernels::cuda::conv2d_forward_workspace(s, b != nullptr, stream));
  const Tensor ws = workspace(bytes, dev);
  IPG_ON_DEVICE("conv2d", dev, kernels::cpu::conv2d_forward(s, x, w, b, y, pointer(ws), bytes),
                kernels::cuda::conv2d_forward(s, x, w, b, y, pointer(ws), bytes, stream));
}

void run_backward_data(const Conv2dShape& s, Device dev, const float* dy, const float* w,
                       float* dx) {
  size_t bytes = 0;
  IPG_ON_DEVICE("conv2d_backward", dev, bytes = kernels::cpu::conv2d_backward_data_workspace(s),
                bytes = kernels::cuda::conv2d_backward_data_workspace(s, stream));
  const Tensor ws = workspace(bytes, dev);
  IPG_ON_DEVICE("conv2d_backward", dev,
                kernels::cpu::conv2d_backward_data(s, dy, w, dx, pointer(ws), bytes),
                kernels::cuda::conv2d_backward_data(s, dy, w, dx, pointer(ws), bytes, stream));
}

void run_backward_weights(const Conv2dShape& s, Device dev, const float* x, const float* dy,
                          float* dw, float* db) {
  size_t bytes = 0;
  IPG_ON_DEVICE("conv2d_backward", dev,
                bytes = kernels::cpu::conv2d_backward_weights_workspace(s, db != nullptr),
                bytes = kernels::cuda::conv2d_backward_weights_workspace(s, db != nullptr, stream));
  const Tensor ws = workspace(bytes, dev);
  IPG_ON_DEVICE(
      "conv2d_backward", dev,
      kernels::cpu::conv2d_backward_weights(s, x, dy, dw, db, pointer(ws), bytes),
      kernels::cuda::conv2d_backward_weights(s, x, dy, dw, db, pointer(ws), bytes, stream));
}

void run_backward_bias(const Conv2dShape& s, Device dev, const float* dy, float* db) {
  IPG_ON_DEVICE("conv2d_backward", dev, kernels::cpu::conv2d_backward_bias(s, dy, db),
                kernels::cuda::conv2d_backward_bias(s, dy, db, stream));
}

[[noreturn]] void shape_error(const std::string& what, const Tensor& x, const Tensor& weight) {
  throw ShapeError("conv2d: " + what + " (input " + shape_str(x.shape()) + ", weight " +
                   shape_str(weight.shape()) + ")");
}

Conv2dShape check_shapes(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride,
                         int padding) {
  if (!x.defined() || !weight.defined())
    throw std::invalid_argument("conv2d: input and weight must be defined tensors");
  if (x.ndim() != 4)
    throw ShapeError("conv2d: input must be 4-D [n, c_in, h, w], got " + shape_str(x.shape()));
  if (weight.ndim() != 4)
    throw ShapeError("conv2d: weight must be 4-D [c_out, c_in, kh, kw], got " +
                     shape_str(weight.shape()));
  detail::check_dtype("conv2d", x, DType::F32);
  detail::check_dtype("conv2d", weight, DType::F32);
  detail::check_same_device("conv2d", x, weight);
  Conv2dShape s;
  s.n = x.dim(0);
  s.c_in = x.dim(1);
  s.h = x.dim(2);
  s.w = x.dim(3);
  s.c_out = weight.dim(0);
  s.kh = weight.dim(2);
  s.kw = weight.dim(3);
  s.stride = stride;
  s.padding = padding;
  if (stride <= 0) shape_error("stride must be positive, got " + std::to_string(stride), x, weight);
  if (padding < 0)
    shape_error("padding must be non-negative, got " + std::to_string(padding), x, weight);
  if (s.c_out == 0 || s.kh == 0 || s.kw == 0 || weight.dim(1) == 0)
    shape_error("weight has an empty dimension", x, weight);
  if (weight.dim(1) != s.c_in)
    shape_error("input has " + std::to_string(s.c_in) + " channels but the weight expects " +
                    std::to_string(weight.dim(1)) + " (weight is [c_out, c_in, kh, kw])",
                x, weight);
  if (s.h == 0 || s.w == 0) shape_error("input has an empty spatial dimension", x, weight);
  if (s.kh > s.h + 2 * s.padding || s.kw > s.w + 2 * s.padding)
    shape_error("kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) +
                    " is larger than the input padded by " + std::to_string(padding) + " (" +
                    std::to_string(s.h + 2 * s.padding) + "x" +
                    std::to_string(s.w + 2 * s.padding) + ")",
                x, weight);
  if (bias.defined()) {
    detail::check_dtype("conv2d", bias, DType::F32);
    detail::check_same_device("conv2d", x, bias);
    if (bias.shape() != Shape{s.c_out})
      throw ShapeError("conv2d: bias " + shape_str(bias.shape()) + " for weight " +
                       shape_str(weight.shape()) + " (expected [" + std::to_string(s.c_out) + "])");
  }
  return s;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int padding) {
  const Conv2dShape s = check_shapes(x, weight, bias, stride, padding);
  const Device dev = x.device();
  Tensor y = Tensor::empty({s.n, s.c_out, s.h_out(), s.w_out()}, dev);
  if (y.numel() == 0) return y;
  run_forward(s, dev, x.data(), weight.data(), bias.defined() ? bias.data() : nullptr, y.data());
  if (autograd::needs_graph({x, weight, bias})) {
    // x and weight are held by the node anyway; detached copies share their storage.
    autograd::attach(y, "conv2d", {x, weight, bias},
                     [x = x.detach(), w = weight.detach(), s](const Tensor& g, GradSink& sink) {
                       const Device dev = g.device();
                       if (sink.wants(0))
                         run_backward_data(s, dev, g.data(), w.data(), sink.at(0).data());
                       float* db = sink.wants(2) ? sink.at(2).data() : nullptr;
                       if (sink.wants(1))
                         run_backward_weights(s, dev, x.data(), g.data(), sink.at(1).data(), db);
                       else if (db)
                         run_backward_bias(s, dev, g.data(), db);
                     });
    if (trace::active()) {
      trace::Attrs a;
      a.stride = stride;
      a.padding = padding;
      trace::describe(y, trace::Op::Conv2d, a);
    }
  }
  return y;
}

}  // namespace ipg::ops
