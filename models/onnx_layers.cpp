// ONNX reader, run time: the layers with weights or windows (Conv, MaxPool and
// AveragePool, Gemm and MatMul, Concat) as engine ops. Constant operands are prepared once
// here (a Gemm's weight transposed and scaled; a Conv's weight kept as it is, grouped or
// dilated: engine/ops/conv.h takes both) and captured as tensors the network owns.
#include <algorithm>
#include <cmath>

#include "engine/ops/concat.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/pool.h"
#include "engine/ops/view.h"
#include "models/onnx_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

const HostTensor& constant(const std::vector<const Value*>& in, size_t k, const char* what) {
  if (k >= in.size() || !in[k]) throw OnnxError(std::string(what) + " (input " + std::to_string(k) + ") is missing");
  if (!in[k]->is_const)
    throw OnnxError(std::string(what) + " computed from the input is not supported (a constant is)");
  return in[k]->c();
}

bool present(const std::vector<const Value*>& in, size_t k) { return k < in.size() && in[k]; }

int to_int(int64_t v, const char* what) {
  if (v < 0 || v > 4096) throw OnnxError(std::string(what) + " " + std::to_string(v) + " is out of range");
  return int(v);
}

// Runtime [n, C, H, W] input: its load-time shape.
const Shape& map_shape(const Value& v, const char* op) {
  if (v.shape.size() != 4)
    throw OnnxError(std::string(op) + " needs an [n, C, H, W] input, got " + shape_text(v.shape));
  return v.shape;
}

namespace {

struct Window {
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pt = 0, pl = 0, pb = 0, pr = 0;
};

// kernel_shape, strides, dilations, pads and auto_pad of a Conv or pool over a 4-D input.
Window window(const onnx::NodeProto& n, const Shape& x, int64_t kh, int64_t kw) {
  Window w;
  const auto ks = attr_ints(n, "kernel_shape", {kh, kw});
  if (ks.size() != 2 || (kh > 0 && (ks[0] != kh || ks[1] != kw)))
    throw OnnxError("kernel_shape " + shape_text(ks) + " does not match the 2-D weights");
  w.kh = to_int(ks[0], "kernel size");
  w.kw = to_int(ks[1], "kernel size");
  const auto st = attr_ints(n, "strides", {1, 1});
  const auto dl = attr_ints(n, "dilations", {1, 1});
  if (st.size() != 2 || dl.size() != 2) throw OnnxError("strides/dilations need two values");
  w.sh = to_int(st[0], "stride");
  w.sw = to_int(st[1], "stride");
  w.dh = to_int(dl[0], "dilation");
  w.dw = to_int(dl[1], "dilation");
  if (!w.kh || !w.kw || !w.sh || !w.sw || !w.dh || !w.dw)
    throw OnnxError("kernel, strides and dilations must be positive");
  const std::string ap = attr_string(n, "auto_pad", "NOTSET");
  if (ap == "NOTSET") {
    const auto p = attr_ints(n, "pads", {0, 0, 0, 0});
    if (p.size() != 4) throw OnnxError("pads needs four values");
    w.pt = to_int(p[0], "padding");
    w.pl = to_int(p[1], "padding");
    w.pb = to_int(p[2], "padding");
    w.pr = to_int(p[3], "padding");
  } else if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    auto same = [&](int64_t size, int k, int s, int d, int& begin, int& end) {
      const int64_t total =
          std::max<int64_t>((size + s - 1) / s * s - s + (int64_t(k) - 1) * d + 1 - size, 0);
      begin = int(ap == "SAME_UPPER" ? total / 2 : total - total / 2);
      end = int(total - begin);
    };
    same(x[2], w.kh, w.sh, w.dh, w.pt, w.pb);
    same(x[3], w.kw, w.sw, w.dw, w.pl, w.pr);
  } else if (ap != "VALID") {
    throw OnnxError("auto_pad " + ap + " is not supported");
  }
  return w;
}

// ceil: a pooling's ceil mode, whose last window may hang over the end (one more output
// at most; the windows of the pools are never dilated).
void check_out(const Shape& x, const Window& w, int64_t channels, bool ceil = false) {
  const int64_t eh = (int64_t(w.kh) - 1) * w.dh + 1, ew = (int64_t(w.kw) - 1) * w.dw + 1;
  const int64_t h = x[2] + w.pt + w.pb, wd = x[3] + w.pl + w.pr;
  if (h < eh || wd < ew)
    throw OnnxError("the window " + std::to_string(eh) + "x" + std::to_string(ew) +
                    " is larger than the padded input " + shape_text(x));
  checked_numel({channels, (h - eh) / w.sh + 1 + ceil, (wd - ew) / w.sw + 1 + ceil}, "output");
}

Tensor pad_if(const Tensor& x, const Window& w, bool asym) {
  return asym ? ops::zero_pad2d(x, w.pt, w.pb, w.pl, w.pr) : x;
}

}  // namespace

RunFn make_conv(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep) {
  check_attrs(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const Shape& x = map_shape(*in.at(0), "Conv");
  const HostTensor& w = constant(in, 1, "a Conv weight");
  if (w.is_int || w.shape.size() != 4) throw OnnxError("Conv weight must be a 4-D float tensor");
  const int64_t m = w.shape[0], cg = w.shape[1], g = attr_int(n, "group", 1);
  if (g < 1 || m % g || cg * g != x[1])
    throw OnnxError("Conv weight " + shape_text(w.shape) + " with group " + std::to_string(g) +
                    " does not fit the input " + shape_text(x));
  const Window win = window(n, x, w.shape[2], w.shape[3]);
  check_out(x, win, m);
  // The native op with the weight as it is: groups (depthwise) and dilations run in the
  // backends' own kernels, and the frozen network's plan keeps them (engine/plan.h).
  Tensor* weight = keep(w, "weight");
  Tensor* bias = nullptr;
  if (present(in, 2)) {
    const HostTensor& b = constant(in, 2, "a Conv bias");
    if (b.is_int || b.shape != Shape{m}) throw OnnxError("Conv bias must be float [" + std::to_string(m) + "]");
    bias = keep(b, "bias");
  }
  ops::Conv2dParams p;
  p.stride_h = win.sh, p.stride_w = win.sw;
  p.pad_top = win.pt, p.pad_left = win.pl, p.pad_bottom = win.pb, p.pad_right = win.pr;
  p.dilation_h = win.dh, p.dilation_w = win.dw;
  p.groups = int(g);
  return [weight, bias, p](const std::vector<Tensor>& v) {
    return ops::conv2d(v[0], *weight, bias ? *bias : Tensor(), p);
  };
}

RunFn make_pool(const onnx::NodeProto& n, const std::vector<const Value*>& in, bool max) {
  check_attrs(n, {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                  "storage_order", "strides"});
  if (n.output_size() > 1 && !n.output(1).empty()) throw OnnxError("the Indices output is not supported");
  if (!find_attr(n, "kernel_shape")) throw OnnxError("kernel_shape is required");
  const Shape& x = map_shape(*in.at(0), max ? "MaxPool" : "AveragePool");
  const Window win = window(n, x, 0, 0);
  // ceil_mode: the output size rounded up, PyTorch's rule (GoogLeNet, SqueezeNet).
  const bool ceil = attr_int(n, "ceil_mode", 0) != 0;
  if (win.dh != 1 || win.dw != 1) throw OnnxError("dilated pooling is not supported");
  if (win.kh != win.kw || win.sh != win.sw) throw OnnxError("non-square windows are not supported");
  check_out(x, win, x[1], ceil);
  const bool sym = win.pt == win.pb && win.pl == win.pr && win.pt == win.pl;
  const bool cip = attr_int(n, "count_include_pad", 0) != 0;
  if (2 * std::max({win.pt, win.pb, win.pl, win.pr}) > win.kh)
    throw OnnxError("padding above half the kernel is not supported");
  // A 1x1 window at stride 1 without padding passes its input through (torchvision's
  // AlexNet and VGG at 224x224: the adaptive pool to the size it already has): nothing to
  // run, and nothing to stop the planner.
  if (win.kh == 1 && win.sh == 1 && win.pt == 0 && win.pb == 0 && win.pl == 0 && win.pr == 0)
    return [](const std::vector<Tensor>& v) { return v[0]; };
  if (!sym && (max || !cip || ceil))
    throw OnnxError("asymmetric padding is supported for AveragePool with count_include_pad and without ceil_mode only");
  if (max)
    return [win, ceil](const std::vector<Tensor>& v) { return ops::max_pool2d(v[0], win.kh, win.sh, win.pt, ceil); };
  return [win, sym, cip, ceil](const std::vector<Tensor>& v) {
    return ops::avg_pool2d(pad_if(v[0], win, !sym), win.kh, win.sh, sym ? win.pt : 0, cip, ceil);
  };
}

// y = x W^T + b from a Gemm or a MatMul with a constant right operand; a MatMul of two
// values computed from the input (attention's Q K^T and P V) as a batched product.
RunFn make_gemm(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep,
                const OpContext& ctx) {
  const bool is_gemm = n.op_type() == "Gemm";
  if (is_gemm) check_attrs(n, {"alpha", "beta", "transA", "transB"});
  else check_attrs(n, {});
  const Value& a = *in.at(0);
  if (!present(in, 1)) throw OnnxError("the second operand is missing");
  if (!is_gemm && !a.is_const && !in[1]->is_const) {
    // [..., m, k] x [..., k, n] with the same leading dimensions. With the batch first in
    // both (the usual mode), each row multiplies only its own matrices; in a graph
    // specialized to its batch, the leading dimensions may hold it anywhere.
    const Shape& bs = in[1]->shape;
    const size_t r = a.shape.size();
    bool fits = r == bs.size() && (r >= 3 || (r == 2 && ctx.fixed_batch));
    for (size_t d = 0; fits && d + 2 < r; ++d) fits = a.shape[d] == bs[d];
    if (!fits || a.shape[r - 1] != bs[r - 2])
      throw OnnxError("a product of two computed values needs [..., m, k] and [..., k, n] with the same "
                      "leading dimensions, got " + shape_text(a.shape) + " and " + shape_text(bs));
    return [](const std::vector<Tensor>& v) { return ops::bmm(v[0], v[1]); };
  }
  if (a.is_const || !in[1]->is_const)
    throw OnnxError("only a product of a value computed from the input with constant weights is supported");
  // A MatMul's first operand may have more dimensions (a linear layer over the channels
  // of [n, h, w, c], as ConvNeXt has): its rows are every index but the last.
  if (a.shape.size() != 2 && (is_gemm || a.shape.size() < 2))
    throw OnnxError("the first operand must be 2-D, got " + shape_text(a.shape));
  if (is_gemm && attr_int(n, "transA", 0)) throw OnnxError("transA 1 is not supported");
  const HostTensor& b = in[1]->c();
  if (b.is_int || b.shape.size() != 2) throw OnnxError("the weights must be a 2-D float tensor");
  const bool tb = is_gemm && attr_int(n, "transB", 0);
  const int64_t k = tb ? b.shape[1] : b.shape[0], out = tb ? b.shape[0] : b.shape[1];
  if (k != a.shape.back())
    throw OnnxError("weights " + shape_text(b.shape) + " do not fit the input " + shape_text(a.shape));
  const float alpha = is_gemm ? attr_float(n, "alpha", 1.f) : 1.f;
  const float beta = is_gemm ? attr_float(n, "beta", 1.f) : 1.f;
  HostTensor w;
  w.shape = {out, k};
  w.f.resize(size_t(out * k));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < k; ++i)
      w.f[size_t(o * k + i)] = alpha * b.f[size_t(tb ? o * k + i : i * out + o)];
  Tensor* weight = keep(w, "weight");
  Tensor* bias = nullptr;
  if (is_gemm && present(in, 2)) {
    const HostTensor& c = constant(in, 2, "Gemm's C");
    const bool vec = c.shape == Shape{out} || c.shape == Shape{1, out};
    const bool scalar = c.numel() == 1 && c.shape.size() <= 2;
    if (c.is_int || !(vec || scalar)) throw OnnxError("Gemm's C must be [" + std::to_string(out) + "] or a scalar");
    HostTensor bv;
    bv.shape = {out};
    for (int64_t o = 0; o < out; ++o) bv.f.push_back(beta * c.f[size_t(vec ? o : 0)]);
    bias = keep(bv, "bias");
  }
  if (a.shape.size() > 2)
    return [weight, k, out](const std::vector<Tensor>& v) {
      Shape s = v[0].shape();
      const Tensor y = ops::linear(ops::reshape(v[0], {-1, k}), *weight, Tensor());
      s.back() = out;
      return ops::reshape(y, s);
    };
  return [weight, bias](const std::vector<Tensor>& v) {
    return ops::linear(v[0], *weight, bias ? *bias : Tensor());
  };
}

// Concatenation: along the channels (or features) as a sum of products with selection
// weights (ones on a shifted diagonal): exact, and made of the convolutions and linear
// layers the frozen network's planner already lowers. Along another axis, the engine's concat.
RunFn make_concat(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep,
                  const OpContext& ctx) {
  check_attrs(n, {"axis"});
  if (in.empty()) throw OnnxError("no inputs");
  for (const Value* v : in)
    if (!v) throw OnnxError("an input is missing");
  auto shape_of = [](const Value* v) -> const Shape& { return v->is_const ? v->c().shape : v->shape; };
  const size_t r = shape_of(in[0]).size();
  int64_t axis = attr_int(n, "axis", 1);
  if (axis < 0) axis += int64_t(r);
  if (axis < 0 || axis >= int64_t(r) || (axis == 0 && !ctx.fixed_batch))
    throw BatchRuleError("only concatenation along a dimension after the batch is supported");
  if ((r != 4 && r != 2) || axis != 1 || ctx.fixed_batch) {  // rows or columns (a circular pad, a mosaic)
    // A constant part (a ViT's class token, expanded to the batch) only where every
    // shape is a number: elsewhere its first dimension could not follow the batch.
    std::vector<Tensor*> parts;  // per input, its constant or nullptr
    for (const Value* v : in) {
      if (v->is_const && !ctx.fixed_batch) throw BatchRuleError("every input must be computed from the input");
      if (shape_of(v).size() != r) throw OnnxError("inputs of different ranks");
      for (size_t d = ctx.fixed_batch ? 0 : 1; d < r; ++d)
        if (int64_t(d) != axis && shape_of(v)[d] != shape_of(in[0])[d])
          throw OnnxError("shapes " + shape_text(shape_of(in[0])) + " and " + shape_text(shape_of(v)) + " do not concatenate");
      if (v->is_const && v->c().is_int) throw OnnxError("an integer input");
      parts.push_back(v->is_const ? keep(v->c(), "part" + std::to_string(parts.size())) : nullptr);
    }
    return [axis, parts](const std::vector<Tensor>& v) {
      std::vector<Tensor> all;
      size_t next = 0;
      for (Tensor* c : parts) all.push_back(c ? *c : v[next++]);
      return ops::concat(all, int(axis));
    };
  }
  int64_t total = 0;
  for (const Value* v : in) {
    if (v->is_const) throw OnnxError("every input must be computed from the input");
    if (v->shape.size() != r) throw OnnxError("inputs of different ranks");
    for (size_t d = 2; d < r; ++d)
      if (v->shape[d] != in[0]->shape[d]) throw OnnxError("shapes " + shape_text(in[0]->shape) + " and " + shape_text(v->shape) + " do not concatenate");
    total += v->shape[1];
  }
  std::vector<Tensor*> sel;
  int64_t offset = 0;
  for (const Value* v : in) {
    HostTensor s;
    s.shape = r == 4 ? Shape{total, v->shape[1], 1, 1} : Shape{total, v->shape[1]};
    s.f.assign(size_t(checked_numel(s.shape, "Concat selection")), 0.f);
    for (int64_t j = 0; j < v->shape[1]; ++j) s.f[size_t((offset + j) * v->shape[1] + j)] = 1.f;
    offset += v->shape[1];
    sel.push_back(keep(s, "select" + std::to_string(sel.size())));
  }
  return [sel, r](const std::vector<Tensor>& v) {
    Tensor y;
    for (size_t k = 0; k < v.size(); ++k) {
      const Tensor part = r == 4 ? ops::conv2d(v[k], *sel[k], Tensor()) : ops::linear(v[k], *sel[k]);
      y = k ? ops::add(y, part) : part;
    }
    return y;
  };
}

}  // namespace ipg::onnx_detail
