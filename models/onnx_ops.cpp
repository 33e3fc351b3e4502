// ONNX reader, run time: each supported operator as a function of engine ops
// (engine/ops/*.h), so autodiff gives input gradients and the frozen network's trace
// (models/frozen_network.h) sees the same ops as in our own networks. Constant operands
// are prepared once here (a Gemm's weight transposed, a grouped or dilated convolution's
// weight expanded) and captured as tensors the network owns.
#include <algorithm>
#include <cmath>

#include "engine/ops/batchnorm.h"
#include "engine/ops/clamp.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/loss.h"
#include "engine/ops/pool.h"
#include "engine/ops/view.h"
#include "models/onnx_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = {
      "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
      "ConstantOfShape", "Conv", "Div", "Dropout", "Flatten", "Gather", "Gemm",
      "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "MatMul", "MaxPool", "Mul",
      "Pad", "ReduceMean", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Squeeze",
      "Sub", "Transpose", "Unsqueeze"};
  return ops;
}

namespace {

const HostTensor& constant(const std::vector<const Value*>& in, size_t k, const char* what) {
  if (k >= in.size() || !in[k]) throw OnnxError(std::string(what) + " (input " + std::to_string(k) + ") is missing");
  if (!in[k]->is_const)
    throw OnnxError(std::string(what) + " computed from the input is not supported (a constant is)");
  return in[k]->c;
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

void check_out(const Shape& x, const Window& w, int64_t channels) {
  const int64_t eh = (int64_t(w.kh) - 1) * w.dh + 1, ew = (int64_t(w.kw) - 1) * w.dw + 1;
  const int64_t h = x[2] + w.pt + w.pb, wd = x[3] + w.pl + w.pr;
  if (h < eh || wd < ew)
    throw OnnxError("the window " + std::to_string(eh) + "x" + std::to_string(ew) +
                    " is larger than the padded input " + shape_text(x));
  checked_numel({channels, (h - eh) / w.sh + 1, (wd - ew) / w.sw + 1}, "output");
}

Tensor pad_if(const Tensor& x, const Window& w, bool asym) {
  return asym ? ops::zero_pad2d(x, w.pt, w.pb, w.pl, w.pr) : x;
}

RunFn conv(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep) {
  check_attrs(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
  const Shape& x = map_shape(*in.at(0), "Conv");
  HostTensor w = constant(in, 1, "a Conv weight");
  if (w.is_int || w.shape.size() != 4) throw OnnxError("Conv weight must be a 4-D float tensor");
  const int64_t m = w.shape[0], cg = w.shape[1], g = attr_int(n, "group", 1);
  if (g < 1 || m % g || cg * g != x[1])
    throw OnnxError("Conv weight " + shape_text(w.shape) + " with group " + std::to_string(g) +
                    " does not fit the input " + shape_text(x));
  const Window win = window(n, x, w.shape[2], w.shape[3]);
  if (win.sh != win.sw) throw OnnxError("unequal strides are not supported");
  check_out(x, win, m);
  // Dilations and groups as a plain convolution: the kernel spread out with zeros, and a
  // grouped weight as its block-diagonal full weight (exact: the added terms are zeros).
  const int64_t kh = (w.shape[2] - 1) * win.dh + 1, kw = (w.shape[3] - 1) * win.dw + 1;
  const int64_t c = x[1];
  HostTensor full;
  full.shape = {m, c, kh, kw};
  full.f.assign(size_t(checked_numel(full.shape, "Conv weight (groups and dilations expanded)")), 0.f);
  const int64_t mg = m / g;
  for (int64_t o = 0; o < m; ++o)
    for (int64_t i = 0; i < cg; ++i)
      for (int64_t a = 0; a < w.shape[2]; ++a)
        for (int64_t b = 0; b < w.shape[3]; ++b)
          full.f[size_t(((o * c + (o / mg) * cg + i) * kh + a * win.dh) * kw + b * win.dw)] =
              w.f[size_t(((o * cg + i) * w.shape[2] + a) * w.shape[3] + b)];
  if (kh != kw) throw OnnxError("non-square kernels are not supported");
  Tensor* weight = keep(full, "weight");
  Tensor* bias = nullptr;
  if (present(in, 2)) {
    const HostTensor& b = constant(in, 2, "a Conv bias");
    if (b.is_int || b.shape != Shape{m}) throw OnnxError("Conv bias must be float [" + std::to_string(m) + "]");
    bias = keep(b, "bias");
  }
  const bool sym = win.pt == win.pb && win.pl == win.pr && win.pt == win.pl;
  return [weight, bias, win, sym](const std::vector<Tensor>& v) {
    return ops::conv2d(pad_if(v[0], win, !sym), *weight, bias ? *bias : Tensor(), win.sh,
                       sym ? win.pt : 0);
  };
}

RunFn pool(const onnx::NodeProto& n, const std::vector<const Value*>& in, bool max) {
  check_attrs(n, {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                  "storage_order", "strides"});
  if (n.output_size() > 1 && !n.output(1).empty()) throw OnnxError("the Indices output is not supported");
  if (!find_attr(n, "kernel_shape")) throw OnnxError("kernel_shape is required");
  const Shape& x = map_shape(*in.at(0), max ? "MaxPool" : "AveragePool");
  const Window win = window(n, x, 0, 0);
  if (attr_int(n, "ceil_mode", 0)) throw OnnxError("ceil_mode 1 is not supported");
  if (win.dh != 1 || win.dw != 1) throw OnnxError("dilated pooling is not supported");
  if (win.kh != win.kw || win.sh != win.sw) throw OnnxError("non-square windows are not supported");
  check_out(x, win, x[1]);
  const bool sym = win.pt == win.pb && win.pl == win.pr && win.pt == win.pl;
  const bool cip = attr_int(n, "count_include_pad", 0) != 0;
  if (2 * std::max({win.pt, win.pb, win.pl, win.pr}) > win.kh)
    throw OnnxError("padding above half the kernel is not supported");
  if (!sym && (max || !cip)) throw OnnxError("asymmetric padding is supported for AveragePool with count_include_pad only");
  if (max) return [win](const std::vector<Tensor>& v) { return ops::max_pool2d(v[0], win.kh, win.sh, win.pt); };
  return [win, sym, cip](const std::vector<Tensor>& v) {
    return ops::avg_pool2d(pad_if(v[0], win, !sym), win.kh, win.sh, sym ? win.pt : 0, cip);
  };
}

// y = x W^T + b from a Gemm or a MatMul with a constant right operand.
RunFn gemm(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep) {
  const bool is_gemm = n.op_type() == "Gemm";
  if (is_gemm) check_attrs(n, {"alpha", "beta", "transA", "transB"});
  else check_attrs(n, {});
  const Value& a = *in.at(0);
  if (!present(in, 1)) throw OnnxError("the second operand is missing");
  if (a.is_const || !in[1]->is_const)
    throw OnnxError("only a product of a value computed from the input with constant weights is supported");
  if (a.shape.size() != 2) throw OnnxError("the first operand must be 2-D, got " + shape_text(a.shape));
  if (is_gemm && attr_int(n, "transA", 0)) throw OnnxError("transA 1 is not supported");
  const HostTensor& b = in[1]->c;
  if (b.is_int || b.shape.size() != 2) throw OnnxError("the weights must be a 2-D float tensor");
  const bool tb = is_gemm && attr_int(n, "transB", 0);
  const int64_t k = tb ? b.shape[1] : b.shape[0], out = tb ? b.shape[0] : b.shape[1];
  if (k != a.shape[1])
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
  return [weight, bias](const std::vector<Tensor>& v) {
    return ops::linear(v[0], *weight, bias ? *bias : Tensor());
  };
}

// Concatenation along the channels (or features) as a sum of products with selection
// weights (ones on a shifted diagonal): exact, and made of the convolutions and linear
// layers the frozen network's planner already lowers.
RunFn concat(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep) {
  check_attrs(n, {"axis"});
  if (in.empty()) throw OnnxError("no inputs");
  const size_t r = in[0]->shape.size();
  int64_t axis = attr_int(n, "axis", 1);
  if (axis < 0) axis += int64_t(r);
  if ((r != 4 && r != 2) || axis != 1) throw OnnxError("only concatenation along dimension 1 of 2-D or 4-D values is supported");
  int64_t total = 0;
  for (const Value* v : in) {
    if (!v || v->is_const) throw OnnxError("every input must be computed from the input");
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

Tensor hard_sigmoid(const Tensor& x, float alpha, float beta) {
  return ops::clamp(ops::affine(x, alpha, beta), 0.f, 1.f);
}

}  // namespace

RunFn make_op(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep,
              std::vector<int>& runtime_inputs, int64_t declared_batch) {
  (void)declared_batch;
  const std::string& op = n.op_type();
  runtime_inputs.clear();
  for (size_t k = 0; k < in.size(); ++k)
    if (in[k] && !in[k]->is_const) runtime_inputs.push_back(int(k));
  if (runtime_inputs.empty()) throw OnnxError(op + " on constants only is not supported");
  const bool first_runtime = runtime_inputs[0] == 0;
  auto need_first = [&]() {
    if (!first_runtime) throw OnnxError("its first input must be computed from the input");
    for (size_t k = 1; k < runtime_inputs.size(); ++k)
      throw OnnxError("input " + std::to_string(runtime_inputs[k]) + " must be a constant");
  };
  if (op == "Conv") { need_first(); return conv(n, in, keep); }
  if (op == "MaxPool" || op == "AveragePool") { need_first(); return pool(n, in, op == "MaxPool"); }
  if (op == "Gemm" || op == "MatMul") return gemm(n, in, keep);
  if (op == "Concat") return concat(n, in, keep);
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    check_attrs(n, {});
    if (in.size() != 2 || !in[0] || !in[1]) throw OnnxError("needs two inputs");
    Tensor* c[2] = {nullptr, nullptr};
    for (int k = 0; k < 2; ++k)
      if (in[size_t(k)]->is_const) c[k] = keep(in[size_t(k)]->c, "operand" + std::to_string(k));
    auto f = op == "Add" ? ops::add : op == "Sub" ? ops::sub : op == "Mul" ? ops::mul : ops::div;
    return [c0 = c[0], c1 = c[1], f](const std::vector<Tensor>& v) {
      const Tensor& a = c0 ? *c0 : v[0];
      const Tensor& b = c1 ? *c1 : v[c0 ? 0 : 1];
      return f(a, b);
    };
  }
  need_first();
  const Shape& xs = in[0]->shape;
  if (op == "Relu") { check_attrs(n, {}); return [](const std::vector<Tensor>& v) { return ops::relu(v[0]); }; }
  if (op == "Identity" || op == "Dropout") {
    check_attrs(n, {"seed", "ratio", "is_test"});
    if (op == "Dropout" && n.output_size() > 1 && !n.output(1).empty()) throw OnnxError("the mask output is not supported");
    if (present(in, 2)) {
      const HostTensor& t = constant(in, 2, "training_mode");
      if (t.numel() != 1 || t.value(0) != 0) throw OnnxError("training_mode must be false");
    }
    return [](const std::vector<Tensor>& v) { return v[0]; };
  }
  if (op == "Cast") {
    check_attrs(n, {"to", "saturate"});
    if (attr_int(n, "to", 0) != onnx::TensorProto::FLOAT) throw OnnxError("only a Cast to float is supported on values computed from the input");
    return [](const std::vector<Tensor>& v) { return v[0]; };
  }
  if (op == "Clip") {
    check_attrs(n, {"min", "max"});
    float lo = attr_float(n, "min", -INFINITY), hi = attr_float(n, "max", INFINITY);
    for (size_t k = 1; k <= 2; ++k)
      if (present(in, k)) {
        const HostTensor& b = constant(in, k, k == 1 ? "Clip's min" : "Clip's max");
        if (b.numel() != 1) throw OnnxError("Clip's bounds must be scalars");
        (k == 1 ? lo : hi) = float(b.value(0));
      }
    if (!(lo <= hi)) throw OnnxError("Clip's min is above its max");
    return [lo, hi](const std::vector<Tensor>& v) { return ops::clamp(v[0], lo, hi); };
  }
  if (op == "Sigmoid") {
    check_attrs(n, {});
    // sigmoid(x) = (1 + tanh(x / 2)) / 2, from the engine's differentiable tanh.
    return [](const std::vector<Tensor>& v) { return ops::affine(ops::tanh(ops::mul_scalar(v[0], 0.5f)), 0.5f, 0.5f); };
  }
  if (op == "HardSigmoid") {
    check_attrs(n, {"alpha", "beta"});
    const float a = attr_float(n, "alpha", 0.2f), b = attr_float(n, "beta", 0.5f);
    return [a, b](const std::vector<Tensor>& v) { return hard_sigmoid(v[0], a, b); };
  }
  if (op == "HardSwish") {
    check_attrs(n, {});
    return [](const std::vector<Tensor>& v) { return ops::mul(v[0], hard_sigmoid(v[0], 1.f / 6, 0.5f)); };
  }
  if (op == "BatchNormalization") {
    check_attrs(n, {"epsilon", "momentum", "spatial", "training_mode"});
    if (attr_int(n, "training_mode", 0) || attr_int(n, "spatial", 1) != 1) throw OnnxError("only inference-mode batch normalization is supported");
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty()) throw OnnxError("the running-statistics outputs are not supported");
    if (xs.size() != 4 && xs.size() != 2) throw OnnxError("needs an [n, C, H, W] or [n, C] input");
    Tensor* t[4];
    const char* names[4] = {"scale", "bias", "mean", "var"};
    for (size_t k = 0; k < 4; ++k) {
      const HostTensor& h = constant(in, k + 1, names[k]);
      if (h.is_int || h.shape != Shape{xs[1]}) throw OnnxError(std::string(names[k]) + " must be float [" + std::to_string(xs[1]) + "]");
      t[k] = keep(h, names[k]);
    }
    const float eps = attr_float(n, "epsilon", 1e-5f);
    if (!(eps > 0)) throw OnnxError("epsilon must be positive");
    return [t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], eps](const std::vector<Tensor>& v) {
      return ops::batch_norm(v[0], *t0, *t1, *t2, *t3, false, 0.1f, eps);
    };
  }
  if (op == "GlobalAveragePool" || op == "ReduceMean") {
    bool keepdims = true;
    map_shape(*in[0], op.c_str());
    if (op == "ReduceMean") {
      check_attrs(n, {"axes", "keepdims"});
      auto axes = attr_ints(n, "axes", {});
      for (auto& a : axes) a = a < 0 ? a + 4 : a;
      std::sort(axes.begin(), axes.end());
      if (axes != std::vector<int64_t>{2, 3}) throw OnnxError("only a mean over the spatial axes (2, 3) is supported");
      keepdims = attr_int(n, "keepdims", 1) != 0;
    } else {
      check_attrs(n, {});
    }
    return [keepdims](const std::vector<Tensor>& v) {
      const Tensor y = ops::global_avg_pool2d(v[0]);
      return keepdims ? ops::reshape(y, {y.dim(0), y.dim(1), 1, 1}) : y;
    };
  }
  if (op == "Flatten") {
    check_attrs(n, {"axis"});
    int64_t axis = attr_int(n, "axis", 1);
    if (axis < 0) axis += int64_t(xs.size());
    if (axis != 1) throw OnnxError("only Flatten at axis 1 is supported");
    return [](const std::vector<Tensor>& v) { return ops::flatten(v[0]); };
  }
  if (op == "Reshape") {
    check_attrs(n, {"allowzero"});
    const HostTensor& s = constant(in, 1, "the shape");
    if (!s.is_int || s.shape.size() != 1 || s.numel() > kMaxRank) throw OnnxError("the shape must be a list of at most 8 integers");
    const std::vector<int64_t> spec = s.i;
    const bool allowzero = attr_int(n, "allowzero", 0) != 0;
    // Dimension 0 must stay the batch: a reshape that moves rows into features (or back)
    // would mix the inputs of a batch.
    if (spec.empty() || !(spec[0] == kBatch || (spec[0] == 0 && !allowzero) || spec[0] == -1))
      throw OnnxError("the shape " + shape_text(spec) + " does not keep the batch dimension first");
    return [spec, allowzero](const std::vector<Tensor>& v) {
      Shape target;
      for (size_t k = 0; k < spec.size(); ++k) {
        int64_t d = spec[k];
        if (d == kBatch) d = v[0].dim(0);
        else if (d == 0 && !allowzero) d = k < size_t(v[0].ndim()) ? v[0].dim(int(k)) : 0;
        target.push_back(d);
      }
      if (target[0] == -1) {
        // -1 first: the batch is inferred when the rest is fixed.
        int64_t rest = 1;
        for (size_t k = 1; k < target.size(); ++k) rest *= target[k];
        if (rest <= 0 || v[0].numel() / std::max<int64_t>(v[0].dim(0), 1) != rest)
          throw OnnxError("the shape does not keep the batch dimension first");
      }
      return ops::reshape(v[0], target);
    };
  }
  if (op == "Pad") {
    check_attrs(n, {"mode", "pads", "value"});
    if (attr_string(n, "mode", "constant") != "constant") throw OnnxError("only mode 'constant' is supported");
    if (present(in, 3)) throw OnnxError("the axes input is not supported");
    std::vector<int64_t> p = present(in, 1) ? constant(in, 1, "pads").i : attr_ints(n, "pads", {});
    if (present(in, 1) && !constant(in, 1, "pads").is_int) throw OnnxError("pads must be integers");
    float value = attr_float(n, "value", 0.f);
    if (present(in, 2)) {
      const HostTensor& c = constant(in, 2, "constant_value");
      if (c.numel() != 1) throw OnnxError("constant_value must be a scalar");
      value = float(c.value(0));
    }
    if (value != 0.f) throw OnnxError("only zero padding is supported");
    map_shape(*in[0], "Pad");
    if (p.size() != 8 || p[0] || p[1] || p[4] || p[5]) throw OnnxError("only padding of the two spatial dimensions is supported");
    const int t = to_int(p[2], "padding"), l = to_int(p[3], "padding"), b = to_int(p[6], "padding"), r = to_int(p[7], "padding");
    checked_numel({xs[1], xs[2] + t + b, xs[3] + l + r}, "output");
    return [t, b, l, r](const std::vector<Tensor>& v) { return ops::zero_pad2d(v[0], t, b, l, r); };
  }
  if (op == "Softmax") {
    check_attrs(n, {"axis"});
    const int64_t axis = attr_int(n, "axis", -1);
    if (xs.size() != 2 || (axis != 1 && axis != -1)) throw OnnxError("only a softmax over the classes of [n, classes] is supported");
    return [](const std::vector<Tensor>& v) { return ops::softmax(v[0]); };
  }
  if (op == "Transpose" || op == "Gather" || op == "Slice" || op == "Squeeze" || op == "Unsqueeze")
    throw OnnxError(op + " on values computed from the input is not supported (on constants it is)");
  std::string list;
  for (const auto& s : supported_ops()) list += (list.empty() ? "" : ", ") + s;
  throw OnnxError("operator " + op + " is not supported (supported: " + list + ")");
}

}  // namespace ipg::onnx_detail
