// Pooling and zero padding: dispatch to kernels/{cpu,cuda}/{pool,pad}. Backward closures
// hold only the window geometry, plus the argmax indices for max pooling.
#include "engine/ops/pool.h"

#include <limits>
#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/trace.h"
#include "kernels/common/pool_math.h"
#include "kernels/cpu/pad.h"
#include "kernels/cpu/pool.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/pad.h"
#include "kernels/cuda/pool.h"
#endif

namespace ipg::ops {

using kernels::PadGeometry;
using kernels::PoolGeometry;

namespace {

void check_nchw(const char* op, const Tensor& x) {
  detail::check_dtype(op, x, DType::F32);
  if (x.ndim() != 4)
    throw ShapeError(std::string(op) + ": input must be [n, c, h, w], got " + shape_str(x.shape()));
}

PoolGeometry pool_geometry(const char* op, const Tensor& x, int kernel, int stride, int padding,
                           bool ceil_mode) {
  check_nchw(op, x);
  const std::string what = std::string(op) + ": input " + shape_str(x.shape()) + ", kernel " +
                           std::to_string(kernel) + ", stride " + std::to_string(stride) +
                           ", padding " + std::to_string(padding) + (ceil_mode ? ", ceil mode" : "");
  if (kernel < 1 || stride < 1 || padding < 0)
    throw ShapeError(what + ": kernel and stride must be positive, padding non-negative");
  // PyTorch's rule; it also guarantees every window holds at least one real pixel.
  if (2 * padding > kernel) throw ShapeError(what + ": padding must be at most half the kernel");
  const PoolGeometry g = kernels::pool_geometry(x.dim(2), x.dim(3), kernel, stride, padding, ceil_mode);
  if (g.oh < 1 || g.ow < 1) throw ShapeError(what + ": the window does not fit the input");
  // Max pooling keeps int32 indices into a plane.
  if (g.h * g.w > std::numeric_limits<int32_t>::max())
    throw ShapeError(what + ": planes of 2^31 pixels or more are not supported");
  return g;
}

// What the trace records of a pooling (the planner's input).
trace::Attrs pool_attrs(const PoolGeometry& g, bool ceil, bool include_pad) {
  trace::Attrs a;
  a.kernel = g.kernel;
  a.stride = g.stride;
  a.padding = g.pad;
  a.ceil = ceil;
  a.include_pad = include_pad;
  return a;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int padding, bool ceil_mode) {
  const PoolGeometry g = pool_geometry("max_pool2d", x, kernel, stride, padding, ceil_mode);
  const int64_t planes = x.dim(0) * x.dim(1);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), g.oh, g.ow}, x.device());
  const bool graph = autograd::needs_graph({x});
  // The backward routes through the forward's choice, so ties and NaNs resolve the same
  // way in both passes and x need not be kept.
  Tensor argmax = graph ? Tensor::empty(y.shape(), x.device(), DType::I32) : Tensor();
  int32_t* idx = graph ? argmax.data_i32() : nullptr;
  IPG_ON_DEVICE("max_pool2d", x.device(),
                kernels::cpu::max_pool2d_forward(x.data(), y.data(), idx, planes, g),
                kernels::cuda::max_pool2d_forward(x.data(), y.data(), idx, planes, g, stream));
  if (graph) {
    autograd::attach(y, "max_pool2d", {x}, [argmax, g, planes](const Tensor& gy, GradSink& sink) {
      float* dx = sink.at(0).data();
      IPG_ON_DEVICE(
          "max_pool2d_backward", gy.device(),
          kernels::cpu::max_pool2d_backward(gy.data(), argmax.data_i32(), dx, planes, g),
          kernels::cuda::max_pool2d_backward(gy.data(), argmax.data_i32(), dx, planes, g, stream));
    });
    if (trace::active()) trace::describe(y, trace::Op::MaxPool2d, pool_attrs(g, ceil_mode, true));
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, int kernel, int stride, int padding, bool count_include_pad,
                  bool ceil_mode) {
  const PoolGeometry g = pool_geometry("avg_pool2d", x, kernel, stride, padding, ceil_mode);
  const int64_t planes = x.dim(0) * x.dim(1);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), g.oh, g.ow}, x.device());
  IPG_ON_DEVICE(
      "avg_pool2d", x.device(),
      kernels::cpu::avg_pool2d_forward(x.data(), y.data(), planes, g, count_include_pad),
      kernels::cuda::avg_pool2d_forward(x.data(), y.data(), planes, g, count_include_pad, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(
        y, "avg_pool2d", {x}, [g, planes, count_include_pad](const Tensor& gy, GradSink& sink) {
          float* dx = sink.at(0).data();
          IPG_ON_DEVICE(
              "avg_pool2d_backward", gy.device(),
              kernels::cpu::avg_pool2d_backward(gy.data(), dx, planes, g, count_include_pad),
              kernels::cuda::avg_pool2d_backward(gy.data(), dx, planes, g, count_include_pad,
                                                 stream));
        });
    if (trace::active())
      trace::describe(y, trace::Op::AvgPool2d, pool_attrs(g, ceil_mode, count_include_pad));
  }
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_nchw("global_avg_pool2d", x);
  const int64_t planes = x.dim(0) * x.dim(1), s = x.dim(2) * x.dim(3);
  if (s == 0)
    throw ShapeError("global_avg_pool2d: input " + shape_str(x.shape()) + " has empty planes");
  Tensor y = Tensor::empty({x.dim(0), x.dim(1)}, x.device());
  IPG_ON_DEVICE("global_avg_pool2d", x.device(),
                kernels::cpu::global_avg_pool2d_forward(x.data(), y.data(), planes, s),
                kernels::cuda::global_avg_pool2d_forward(x.data(), y.data(), planes, s, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, "global_avg_pool2d", {x}, [planes, s](const Tensor& gy, GradSink& sink) {
      float* dx = sink.at(0).data();
      IPG_ON_DEVICE("global_avg_pool2d_backward", gy.device(),
                    kernels::cpu::global_avg_pool2d_backward(gy.data(), dx, planes, s),
                    kernels::cuda::global_avg_pool2d_backward(gy.data(), dx, planes, s, stream));
    });
  }
  return y;
}

Tensor zero_pad2d(const Tensor& x, int top, int bottom, int left, int right) {
  check_nchw("zero_pad2d", x);
  if (top < 0 || bottom < 0 || left < 0 || right < 0)
    throw ShapeError("zero_pad2d: input " + shape_str(x.shape()) + ", padding (top " +
                     std::to_string(top) + ", bottom " + std::to_string(bottom) + ", left " +
                     std::to_string(left) + ", right " + std::to_string(right) +
                     "): amounts must be non-negative");
  PadGeometry g{};
  g.h = x.dim(2);
  g.w = x.dim(3);
  g.oh = g.h + top + bottom;
  g.ow = g.w + left + right;
  g.top = top;
  g.left = left;
  const int64_t planes = x.dim(0) * x.dim(1);
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), g.oh, g.ow}, x.device());
  IPG_ON_DEVICE("zero_pad2d", x.device(),
                kernels::cpu::zero_pad2d_forward(x.data(), y.data(), planes, g),
                kernels::cuda::zero_pad2d_forward(x.data(), y.data(), planes, g, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, "zero_pad2d", {x}, [g, planes](const Tensor& gy, GradSink& sink) {
      float* dx = sink.at(0).data();
      IPG_ON_DEVICE("zero_pad2d_backward", gy.device(),
                    kernels::cpu::zero_pad2d_backward(gy.data(), dx, planes, g),
                    kernels::cuda::zero_pad2d_backward(gy.data(), dx, planes, g, stream));
    });
    if (trace::active()) {
      trace::Attrs a;
      a.pad[0] = top, a.pad[1] = bottom, a.pad[2] = left, a.pad[3] = right;
      trace::describe(y, trace::Op::ZeroPad2d, a);
    }
  }
  return y;
}

}  // namespace ipg::ops
