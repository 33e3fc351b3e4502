// conv2d over the oneDNN (CPU) and cuDNN (CUDA) twins in kernels/*/conv2d. Each pass
// takes its workspace as a tensor from the device's caching allocator, so a loop with
// fixed shapes allocates nothing new after its first iteration. Backward computes only
// the gradients the graph asks for: with frozen weights (the fingerprint loop) it runs
// the backward-data pass alone.
#include "engine/ops/conv.h"

#include <algorithm>
#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/pool.h"
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

// acc: add into dx (or dw and db) rather than write them (GradSink::target()).
void run_backward_data(const Conv2dShape& s, Device dev, const float* dy, const float* w,
                       float* dx, bool acc) {
  size_t bytes = 0;
  IPG_ON_DEVICE("conv2d_backward", dev,
                bytes = kernels::cpu::conv2d_backward_data_workspace(s, acc),
                bytes = kernels::cuda::conv2d_backward_data_workspace(s, acc, stream));
  const Tensor ws = workspace(bytes, dev);
  IPG_ON_DEVICE("conv2d_backward", dev,
                kernels::cpu::conv2d_backward_data(s, dy, w, dx, acc, pointer(ws), bytes),
                kernels::cuda::conv2d_backward_data(s, dy, w, dx, acc, pointer(ws), bytes, stream));
}

void run_backward_weights(const Conv2dShape& s, Device dev, const float* x, const float* dy,
                          float* dw, float* db, bool acc) {
  size_t bytes = 0;
  IPG_ON_DEVICE(
      "conv2d_backward", dev,
      bytes = kernels::cpu::conv2d_backward_weights_workspace(s, db != nullptr, acc),
      bytes = kernels::cuda::conv2d_backward_weights_workspace(s, db != nullptr, acc, stream));
  const Tensor ws = workspace(bytes, dev);
  IPG_ON_DEVICE(
      "conv2d_backward", dev,
      kernels::cpu::conv2d_backward_weights(s, x, dy, dw, db, acc, pointer(ws), bytes),
      kernels::cuda::conv2d_backward_weights(s, x, dy, dw, db, acc, pointer(ws), bytes, stream));
}

// The weight and bias gradients share one accumulate flag in the kernels: when only one
// of them is new, it is zero-filled and both are added to.
float* zero_if_mixed(Tensor& t, bool acc, bool kernel_adds) {
  if (!acc && kernel_adds) t.fill_(0.f);
  return t.data();
}

// Both passes at once (training): dy is converted to the kernels' layout once for both.
void run_backward(const Conv2dShape& s, Device dev, const float* x, const float* dy,
                  const float* w, float* dx, bool acc_dx, float* dw, float* db, bool acc_w) {
  size_t bytes = 0;
  IPG_ON_DEVICE(
      "conv2d_backward", dev,
      bytes = kernels::cpu::conv2d_backward_workspace(s, db != nullptr, acc_dx, acc_w),
      bytes = kernels::cuda::conv2d_backward_workspace(s, db != nullptr, acc_dx, acc_w, stream));
  const Tensor ws = workspace(bytes, dev);
  IPG_ON_DEVICE("conv2d_backward", dev,
                kernels::cpu::conv2d_backward(s, x, dy, w, dx, acc_dx, dw, db, acc_w, pointer(ws),
                                              bytes),
                kernels::cuda::conv2d_backward(s, x, dy, w, dx, acc_dx, dw, db, acc_w,
                                               pointer(ws), bytes, stream));
}

void run_backward_bias(const Conv2dShape& s, Device dev, const float* dy, float* db) {
  IPG_ON_DEVICE("conv2d_backward", dev, kernels::cpu::conv2d_backward_bias(s, dy, db),
                kernels::cuda::conv2d_backward_bias(s, dy, db, stream));
}

std::string geometry_str(const Conv2dParams& p) {
  return "stride " + std::to_string(p.stride_h) + "x" + std::to_string(p.stride_w) +
         ", pads (top " + std::to_string(p.pad_top) + ", left " + std::to_string(p.pad_left) +
         ", bottom " + std::to_string(p.pad_bottom) + ", right " + std::to_string(p.pad_right) +
         "), dilation " + std::to_string(p.dilation_h) + "x" + std::to_string(p.dilation_w) +
         ", groups " + std::to_string(p.groups);
}

[[noreturn]] void shape_error(const std::string& what, const Tensor& x, const Tensor& weight,
                              const Conv2dParams& p) {
  throw ShapeError("conv2d: " + what + " (input " + shape_str(x.shape()) + ", weight " +
                   shape_str(weight.shape()) + ", " + geometry_str(p) + ")");
}

// p's pads must be symmetric per axis here (conv2d pads the excess beforehand).
Conv2dShape check_shapes(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Conv2dParams& p) {
  if (!x.defined() || !weight.defined())
    throw std::invalid_argument("conv2d: input and weight must be defined tensors");
  if (x.ndim() != 4)
    throw ShapeError("conv2d: input must be 4-D [n, c_in, h, w], got " + shape_str(x.shape()));
  if (weight.ndim() != 4)
    throw ShapeError("conv2d: weight must be 4-D [c_out, c_in / groups, kh, kw], got " +
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
  s.stride = p.stride_h;
  s.stride_w = p.stride_w;
  s.padding = p.pad_top;
  s.pad_w = p.pad_left;
  s.dilation_h = p.dilation_h;
  s.dilation_w = p.dilation_w;
  s.groups = p.groups;
  if (p.stride_h <= 0 || p.stride_w <= 0) shape_error("strides must be positive", x, weight, p);
  if (p.pad_top < 0 || p.pad_left < 0 || p.pad_bottom < 0 || p.pad_right < 0)
    shape_error("padding (pads) must be non-negative", x, weight, p);
  if (p.dilation_h <= 0 || p.dilation_w <= 0)
    shape_error("dilations must be positive", x, weight, p);
  if (p.groups <= 0) shape_error("groups must be positive", x, weight, p);
  if (s.c_out == 0 || s.kh == 0 || s.kw == 0 || weight.dim(1) == 0)
    shape_error("weight has an empty dimension", x, weight, p);
  if (s.c_in % p.groups != 0 || s.c_out % p.groups != 0)
    shape_error("input channels (" + std::to_string(s.c_in) + ") and output channels (" +
                    std::to_string(s.c_out) + ") must both divide into " +
                    std::to_string(p.groups) + " groups",
                x, weight, p);
  if (weight.dim(1) != s.c_in_group())
    shape_error("input has " + std::to_string(s.c_in) + " channels in " +
                    std::to_string(p.groups) + " group(s), " + std::to_string(s.c_in_group()) +
                    " per group, but the weight expects " + std::to_string(weight.dim(1)) +
                    " (weight is [c_out, c_in / groups, kh, kw])",
                x, weight, p);
  if (s.h == 0 || s.w == 0) shape_error("input has an empty spatial dimension", x, weight, p);
  if (s.kh_eff() > s.h + 2 * s.ph() || s.kw_eff() > s.w + 2 * s.pw())
    shape_error("kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) +
                    (p.dilation_h != 1 || p.dilation_w != 1
                         ? " (dilated: " + std::to_string(s.kh_eff()) + "x" +
                               std::to_string(s.kw_eff()) + ")"
                         : std::string()) +
                    " is larger than the padded input (" + std::to_string(s.h + 2 * s.ph()) +
                    "x" + std::to_string(s.w + 2 * s.pw()) + ")",
                x, weight, p);
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

Tensor conv2d(const Tensor& x_in, const Tensor& weight, const Tensor& bias,
              const Conv2dParams& params) {
  Conv2dParams p = params;
  Tensor x = x_in;
  // cuDNN pads symmetrically per axis; the excess on one side becomes an explicit zero pad
  // (in the trace too, where the planner refuses it by name as an uneven padding).
  const int ph = std::min(p.pad_top, p.pad_bottom), pw = std::min(p.pad_left, p.pad_right);
  if (x.defined() && x.ndim() == 4 && ph >= 0 && pw >= 0 &&
      (p.pad_top != p.pad_bottom || p.pad_left != p.pad_right)) {
    x = zero_pad2d(x, p.pad_top - ph, p.pad_bottom - ph, p.pad_left - pw, p.pad_right - pw);
    p.pad_top = p.pad_bottom = ph;
    p.pad_left = p.pad_right = pw;
  }
  const Conv2dShape s = check_shapes(x, weight, bias, p);
  const Device dev = x.device();
  Tensor y = Tensor::empty({s.n, s.c_out, s.h_out(), s.w_out()}, dev);
  if (y.numel() == 0) return y;
  run_forward(s, dev, x.data(), weight.data(), bias.defined() ? bias.data() : nullptr, y.data());
  if (autograd::needs_graph({x, weight, bias})) {
    // x and weight are held by the node anyway; detached copies share their storage.
    autograd::attach(y, "conv2d", {x, weight, bias},
                     [x = x.detach(), w = weight.detach(), s](const Tensor& g, GradSink& sink) {
                       const Device dev = g.device();
                       bool acc_dx = false;
                       float* dx = sink.wants(0) ? sink.target(0, acc_dx).data() : nullptr;
                       if (sink.wants(1)) {
                         bool acc_w = false, acc_b = false;
                         Tensor& tw = sink.target(1, acc_w);
                         Tensor* tb = sink.wants(2) ? &sink.target(2, acc_b) : nullptr;
                         const bool acc = acc_w || (tb && acc_b);
                         float* dw = zero_if_mixed(tw, acc_w, acc);
                         float* db = tb ? zero_if_mixed(*tb, acc_b, acc) : nullptr;
                         if (dx)
                           run_backward(s, dev, x.data(), g.data(), w.data(), dx, acc_dx, dw, db,
                                        acc);
                         else
                           run_backward_weights(s, dev, x.data(), g.data(), dw, db, acc);
                       } else {
                         if (dx) run_backward_data(s, dev, g.data(), w.data(), dx, acc_dx);
                         if (sink.wants(2)) run_backward_bias(s, dev, g.data(), sink.at(2).data());
                       }
                     });
    if (trace::active()) {
      trace::Attrs a;
      a.stride = p.stride_h;
      a.stride_w = p.stride_w;
      a.padding = p.pad_top;
      a.pad[0] = p.pad_top, a.pad[1] = p.pad_bottom, a.pad[2] = p.pad_left, a.pad[3] = p.pad_right;
      a.dilation[0] = p.dilation_h, a.dilation[1] = p.dilation_w;
      a.groups = p.groups;
      trace::describe(y, trace::Op::Conv2d, a);
    }
  }
  return y;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int padding) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = padding;
  return conv2d(x, weight, bias, p);
}

}  // namespace ipg::ops
