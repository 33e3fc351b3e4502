// ONNX reader, run time: each supported operator as a function of engine ops
// (engine/ops/*.h), so autodiff gives input gradients and the frozen network's trace
// (models/frozen_network.h) sees the same ops as in our own networks. The layers with
// weights or windows are in onnx_layers.cpp.
#include <algorithm>
#include <cmath>

#include "engine/ops/batchnorm.h"
#include "engine/ops/clamp.h"
#include "engine/ops/concat.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/linalg.h"
#include "engine/ops/loss.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduce.h"
#include "engine/ops/strided.h"
#include "engine/ops/view.h"
#include "models/onnx_fold_internal.h"
#include "models/onnx_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = {
      "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
      "ConstantOfShape", "Conv", "Div", "Dropout", "Elu", "Equal", "Erf", "Expand", "Flatten",
      "Gather", "Gelu", "Gemm",
      "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "InstanceNormalization",
      "LayerNormalization", "LeakyRelu", "LogSoftmax",
      "MatMul", "MaxPool", "Mod", "Mul", "Not", "Pad", "Pow", "PRelu", "Range", "Reciprocal", "ReduceMean", "ReduceSum",
      "Relu", "Reshape", "ScatterND", "Selu", "Shape", "Sigmoid", "Slice", "Softmax", "Sqrt", "Squeeze", "Sub",
      "Tanh", "Transpose", "Unsqueeze", "Where"};
  return ops;
}

namespace {

Tensor hard_sigmoid(const Tensor& x, float alpha, float beta) {
  return ops::clamp(ops::affine(x, alpha, beta), 0.f, 1.f);
}

// The negative part of x, -min(x, 0) = relu(-x), through which the leaky activations are
// written: relu(x) - a * relu(-x) is x above 0 and a * x below, with a * x's one rounding.
Tensor negative_part(const Tensor& x) { return ops::relu(ops::neg(x)); }

// alpha (e^min(x, 0) - 1) + relu(x): ELU; times gamma, SELU.
Tensor elu(const Tensor& x, float alpha) {
  return ops::add(ops::relu(x), ops::affine(ops::exp(ops::neg(negative_part(x))), alpha, -alpha));
}

// (x - mean) / sqrt(var + eps) over the axes after C, each sample and channel apart
// (InstanceNormalization; GroupNorm's export): one layer norm of [n, C, rest] viewed flat,
// without gamma and beta.
Tensor instance_standardize(const Tensor& x, float eps) {
  const Shape& s = x.shape();
  int64_t rest = 1;
  for (size_t a = 2; a < s.size(); ++a) rest *= s[a];
  return ops::reshape(ops::layer_norm(ops::reshape(x, {s[0], s[1], rest}), Tensor(), Tensor(), eps), s);
}

// The mean of each [H, W] plane (times `scale`: a sum), [n, C, 1, 1] with keepdims: the
// global pool the planner lowers.
RunFn plane_mean(bool keepdims, float scale) {
  return [keepdims, scale](const std::vector<Tensor>& v) {
    Tensor y = ops::global_avg_pool2d(v[0]);
    if (scale != 1.f) y = ops::mul_scalar(y, scale);
    return keepdims ? ops::reshape(y, {y.dim(0), y.dim(1), 1, 1}) : y;
  };
}

}  // namespace

RunFn make_op(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep,
              std::vector<int>& runtime_inputs, const OpContext& ctx) {
  const std::string& op = n.op_type();
  const int64_t declared_batch = ctx.declared_batch, opset = ctx.opset;
  const bool fixed = ctx.fixed_batch;
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
  if (op == "Conv") { need_first(); return make_conv(n, in, keep); }
  if (op == "MaxPool" || op == "AveragePool") { need_first(); return make_pool(n, in, op == "MaxPool"); }
  if (op == "Gemm" || op == "MatMul") return make_gemm(n, in, keep, ctx);
  if (op == "Concat") return make_concat(n, in, keep, ctx);
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    check_attrs(n, {});
    if (in.size() != 2 || !in[0] || !in[1]) throw OnnxError("needs two inputs");
    Tensor* c[2] = {nullptr, nullptr};
    for (int k = 0; k < 2; ++k)
      if (in[size_t(k)]->is_const) c[k] = keep(in[size_t(k)]->c(), "operand" + std::to_string(k));
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
    // A mask output (torch names it even when nothing reads it) stays uncomputed: a node
    // that reads it is refused by name.
    if (present(in, 2)) {
      const HostTensor& t = constant(in, 2, "training_mode");
      // In training mode only a ratio of 0 leaves the input as it is (Swin's attention
      // dropout, exported with training on and p = 0).
      const bool zero_ratio = present(in, 1) && constant(in, 1, "ratio").numel() == 1 &&
                              constant(in, 1, "ratio").value(0) == 0;
      if (t.numel() != 1 || (t.value(0) != 0 && !zero_ratio))
        throw OnnxError("training_mode must be false (or the ratio 0)");
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
    return [](const std::vector<Tensor>& v) { return ops::sigmoid(v[0]); };
  }
  if (op == "Tanh") {
    check_attrs(n, {});
    return [](const std::vector<Tensor>& v) { return ops::tanh(v[0]); };
  }
  if (op == "Erf") {  // GELU's exact form exports as x * (1 + erf(x / sqrt 2)) / 2
    check_attrs(n, {});
    return [](const std::vector<Tensor>& v) { return ops::erf(v[0]); };
  }
  if (op == "Gelu") {  // opset 20; also the exported Div/Erf/Add/Mul/Mul pattern (onnx_fuse.cpp)
    check_attrs(n, {"approximate"});
    const std::string approx = attr_string(n, "approximate", "none");
    if (approx != "none")
      throw OnnxError("only approximate 'none' (the exact form) is supported");
    return [](const std::vector<Tensor>& v) { return ops::gelu(v[0]); };
  }
  if (op == "LeakyRelu") {
    check_attrs(n, {"alpha"});
    const float a = attr_float(n, "alpha", 0.01f);
    return [a](const std::vector<Tensor>& v) {
      return ops::sub(ops::relu(v[0]), ops::mul_scalar(negative_part(v[0]), a));
    };
  }
  if (op == "Elu" || op == "Selu") {
    const bool selu = op == "Selu";
    check_attrs(n, selu ? std::vector<const char*>{"alpha", "gamma"}
                        : std::vector<const char*>{"alpha"});
    const float a = attr_float(n, "alpha", selu ? 1.67326319217681884765625f : 1.f);
    const float g = selu ? attr_float(n, "gamma", 1.05070102214813232421875f) : 1.f;
    return [a, g, selu](const std::vector<Tensor>& v) {
      const Tensor y = elu(v[0], a);
      return selu ? ops::mul_scalar(y, g) : y;
    };
  }
  if (op == "PRelu") {  // relu(x) - slope * relu(-x), the slope broadcast as ONNX does
    check_attrs(n, {});
    const HostTensor& h = constant(in, 1, "slope");
    if (h.is_int) throw OnnxError("slope must be float");
    if (h.shape.size() > xs.size()) throw OnnxError("slope " + shape_text(h.shape) + " has more dimensions than the input");
    for (size_t k = 0; k < h.shape.size(); ++k) {
      const size_t at = xs.size() - h.shape.size() + k;  // aligned from the right
      if (h.shape[k] != 1 && (at == 0 || h.shape[k] != xs[at]))
        throw OnnxError("slope " + shape_text(h.shape) + " does not broadcast to the input " + shape_text(xs));
    }
    Tensor* slope = keep(h, "slope");
    return [slope](const std::vector<Tensor>& v) {
      return ops::sub(ops::relu(v[0]), ops::mul(*slope, negative_part(v[0])));
    };
  }
  if (op == "HardSigmoid") {
    check_attrs(n, {"alpha", "beta"});
    const float a = attr_float(n, "alpha", 0.2f), b = attr_float(n, "beta", 0.5f);
    return [a, b](const std::vector<Tensor>& v) { return hard_sigmoid(v[0], a, b); };
  }
  if (op == "HardSwish") {  // opset 14; also the exported HardSigmoid/Mul pair (onnx_fuse.cpp)
    check_attrs(n, {});
    return [](const std::vector<Tensor>& v) { return ops::hard_swish(v[0]); };
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
  if (op == "ReduceMean" || op == "ReduceSum") {
    const bool sum = op == "ReduceSum";
    check_attrs(n, sum ? std::vector<const char*>{"axes", "keepdims", "noop_with_empty_axes"}
                       : std::vector<const char*>{"axes", "keepdims"});
    auto axes = attr_ints(n, "axes", {});
    if (sum && present(in, 1)) {  // opset 13: the axes are an input
      const HostTensor& a = constant(in, 1, "axes");
      if (!a.is_int) throw OnnxError("axes must be integers");
      axes = a.i;
    }
    const int64_t r = int64_t(xs.size());
    for (auto& a : axes) a = norm_axis(a, r, "axis");
    std::sort(axes.begin(), axes.end());
    if (axes.empty() && fixed)  // no axes: all of them
      for (int64_t a = 0; a < r; ++a) axes.push_back(a);
    if (axes.empty() || (axes[0] == 0 && !fixed))  // all of them or the first: the batch
      throw BatchRuleError(std::string("a ") + (sum ? "sum" : "mean") + " over the batch dimension is not supported");
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) throw OnnxError("axes repeat an axis");
    const bool keepdims = attr_int(n, "keepdims", 1) != 0;
    if (!(r == 4 && axes == std::vector<int64_t>{2, 3})) {
      // Other axes (a LayerNorm over the channels of [n, h, w, c], a mean over the
      // channels): one engine reduction per axis, the last first.
      return [axes, keepdims, sum](const std::vector<Tensor>& v) {
        Tensor y = v[0];
        for (size_t k = axes.size(); k-- > 0;)
          y = sum ? ops::sum(y, int(axes[k]), keepdims) : ops::mean(y, int(axes[k]), keepdims);
        return y;
      };
    }
    // Over H and W: the global average pool the planner lowers (a sum as the mean times
    // the pixels of a plane).
    return plane_mean(keepdims, sum ? float(xs[2] * xs[3]) : 1.f);
  }
  if (op == "LayerNormalization") {  // opset 17, or the written-out form fused (onnx_fuse.cpp)
    check_attrs(n, {"axis", "epsilon", "stash_type"});
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty()) throw OnnxError("the Mean and InvStdDev outputs are not supported");
    const int64_t r = int64_t(xs.size());
    if (norm_axis(attr_int(n, "axis", -1), r, "axis") != r - 1)
      throw OnnxError("only a normalization over the last axis is supported");
    const float eps = attr_float(n, "epsilon", 1e-5f);
    if (!(eps > 0)) throw OnnxError("epsilon must be positive");
    Tensor* t[2] = {nullptr, nullptr};
    const char* names[2] = {"scale", "bias"};
    for (size_t k = 0; k < 2; ++k) {
      if (k == 1 && !present(in, 2)) break;
      const HostTensor& h = constant(in, k + 1, names[k]);
      if (h.is_int || h.shape != Shape{xs.back()})
        throw OnnxError(std::string(names[k]) + " must be float [" + std::to_string(xs.back()) + "]");
      t[k] = keep(h, names[k]);
    }
    return [scale = t[0], bias = t[1], eps](const std::vector<Tensor>& v) {
      return ops::layer_norm(v[0], *scale, bias ? *bias : Tensor(), eps);
    };
  }
  if (op == "InstanceNormalization") {  // GroupNorm's export: over [n, groups, rest]
    check_attrs(n, {"epsilon"});
    const int64_t r = int64_t(xs.size());
    if (r < 3) throw OnnxError("needs an [n, C, ...] input with at least one axis after C");
    const float eps = attr_float(n, "epsilon", 1e-5f);
    if (!(eps > 0)) throw OnnxError("epsilon must be positive");
    Tensor* t[2];
    const char* names[2] = {"scale", "B"};
    for (size_t k = 0; k < 2; ++k) {
      HostTensor h = constant(in, k + 1, names[k]);
      if (h.is_int || h.shape != Shape{xs[1]})
        throw OnnxError(std::string(names[k]) + " must be float [" + std::to_string(xs[1]) + "]");
      h.shape.resize(size_t(r - 1), 1);  // [C, 1, ...]: broadcast over the axes after C
      t[k] = keep(h, names[k]);
    }
    return [scale = t[0], bias = t[1], eps](const std::vector<Tensor>& v) {
      return ops::add(ops::mul(instance_standardize(v[0], eps), *scale), *bias);
    };
  }
  if (op == "Sqrt") {
    check_attrs(n, {});
    return [](const std::vector<Tensor>& v) { return ops::sqrt(v[0]); };
  }
  if (op == "Reciprocal") {
    check_attrs(n, {});
    HostTensor one;
    one.shape = {1};
    one.f = {1.f};
    Tensor* c = keep(one, "one");
    return [c](const std::vector<Tensor>& v) { return ops::div(*c, v[0]); };
  }
  if (op == "Pow") {  // LayerNorm's variance: (x - mean)^2
    check_attrs(n, {});
    const HostTensor& e = constant(in, 1, "the exponent");
    if (e.numel() != 1) throw OnnxError("the exponent must be a scalar");
    const double p = e.value(0);
    if (p != 1 && p != 2 && p != 3 && p != 0.5)
      throw OnnxError("exponent " + std::to_string(p) + " is not supported (1, 2, 3 and 0.5 are)");
    return [p](const std::vector<Tensor>& v) {
      if (p == 2) return ops::square(v[0]);
      if (p == 3) return ops::mul(ops::square(v[0]), v[0]);
      if (p == 0.5) return ops::sqrt(v[0]);
      return v[0];
    };
  }
  if (op == "GlobalAveragePool") {
    map_shape(*in[0], op.c_str());
    check_attrs(n, {});
    return plane_mean(true, 1.f);
  }
  if (op == "Flatten") {
    check_attrs(n, {"axis"});
    int64_t axis = attr_int(n, "axis", 1);
    if (axis < 0) axis += int64_t(xs.size());
    if (fixed) {  // every shape a number: [the axes before, the axes from `axis`]
      if (axis < 0 || axis > int64_t(xs.size())) throw OnnxError("axis out of range");
      int64_t a = 1, b = 1;
      for (int64_t k = 0; k < int64_t(xs.size()); ++k) (k < axis ? a : b) *= xs[size_t(k)];
      return [a, b](const std::vector<Tensor>& v) { return ops::reshape(v[0], {a, b}); };
    }
    if (axis != 1) throw BatchRuleError("only Flatten at axis 1 is supported");
    return [](const std::vector<Tensor>& v) { return ops::flatten(v[0]); };
  }
  if (op == "Reshape") {
    check_attrs(n, {"allowzero"});
    const HostTensor& s = constant(in, 1, "the shape");
    if (!s.is_int || s.shape.size() != 1 || s.numel() > kMaxRank) throw OnnxError("the shape must be a list of at most 8 integers");
    std::vector<int64_t> spec = s.i;
    const bool allowzero = attr_int(n, "allowzero", 0) != 0;
    if (fixed) {  // the target is a number in every dimension but -1
      const Shape target = reshape_target(xs, spec, allowzero);
      return [target](const std::vector<Tensor>& v) { return ops::reshape(v[0], target); };
    }
    // A graph exported with a fixed batch (torch.onnx.export without dynamic axes) writes
    // that batch as a number, e.g. [1, -1] for a flatten: it is the batch dimension.
    if (!spec.empty() && declared_batch >= 1 && spec[0] == declared_batch) spec[0] = kBatch;
    // Dimension 0 must stay the batch: a reshape that moves rows into features (or back)
    // would mix the inputs of a batch.
    if (spec.empty() || !(spec[0] == kBatch || (spec[0] == 0 && !allowzero) || spec[0] == -1))
      throw BatchRuleError("the shape " + shape_text(spec) + " does not keep the batch dimension first");
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
        bool overflow = false;
        for (size_t k = 1; k < target.size(); ++k) overflow |= __builtin_mul_overflow(rest, target[k], &rest);
        if (overflow || rest <= 0 || v[0].numel() / std::max<int64_t>(v[0].dim(0), 1) != rest)
          throw BatchRuleError("the shape does not keep the batch dimension first");
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
    // No padding at all, of any rank (Swin's pad to whole windows when the map has them).
    if (std::all_of(p.begin(), p.end(), [](int64_t a) { return a == 0; }) && p.size() == 2 * xs.size())
      return [](const std::vector<Tensor>& v) { return v[0]; };
    const size_t rank = xs.size();
    if (p.size() != 2 * rank) throw OnnxError("pads " + shape_text(p) + " do not fit the input " + shape_text(xs));
    for (int64_t a : p) {
      if (a < 0) throw OnnxError("negative padding (a crop) is not supported");
      if (a > kMaxElements) throw OnnxError("padding of " + std::to_string(a) + " is out of range");
    }
    if (!(rank == 4 && !p[0] && !p[1] && !p[4] && !p[5])) {
      // Other axes (Swin pads [n, h, w, c] to whole windows): zeros joined on each side.
      if ((p[0] || p[rank]) && !fixed) throw BatchRuleError("padding of the batch dimension is not supported");
      Shape out = xs;
      for (size_t a = 0; a < rank; ++a) out[a] += p[a] + p[a + rank];
      checked_numel(out, "output");
      return [p, r = rank](const std::vector<Tensor>& v) {
        Tensor y = v[0];
        for (size_t a = 0; a < r; ++a) {
          if (!p[a] && !p[a + r]) continue;
          std::vector<Tensor> parts;
          Shape side = y.shape();
          if (p[a]) side[a] = p[a], parts.push_back(Tensor::zeros(side, y.device()));
          parts.push_back(y);
          if (p[a + r]) side[a] = p[a + r], parts.push_back(Tensor::zeros(side, y.device()));
          y = ops::concat(parts, int(a));
        }
        return y;
      };
    }
    map_shape(*in[0], "Pad");
    const int t = to_int(p[2], "padding"), l = to_int(p[3], "padding"), b = to_int(p[6], "padding"), r = to_int(p[7], "padding");
    checked_numel({xs[1], xs[2] + t + b, xs[3] + l + r}, "output");
    // No padding at all (PyTorch exports an average pool with count_include_pad so, even
    // without padding: DenseNet's transitions): the input itself, for the planner too.
    if (t == 0 && b == 0 && l == 0 && r == 0) return [](const std::vector<Tensor>& v) { return v[0]; };
    return [t, b, l, r](const std::vector<Tensor>& v) { return ops::zero_pad2d(v[0], t, b, l, r); };
  }
  if (op == "LogSoftmax")  // as the graph's output it is dropped (onnx_graph.cpp)
    throw OnnxError("LogSoftmax is supported only where it computes the graph's output");
  if (op == "Softmax") {
    check_attrs(n, {"axis"});
    // From opset 13 along one axis (default the last); before, over the axes from `axis`
    // (default 1) to the end flattened into one. Never across the batch.
    const int64_t r = int64_t(xs.size());
    const bool per_axis = opset >= 13;
    const int64_t axis = norm_axis(attr_int(n, "axis", per_axis ? -1 : 1), r, "axis");
    if (axis == 0 && !fixed) throw BatchRuleError("a softmax across the batch dimension is not supported");
    if (axis == r - 1) return [](const std::vector<Tensor>& v) { return ops::softmax(v[0]); };
    if (!per_axis)  // [n, ..., the rest flattened]: a softmax over its last axis
      return [axis](const std::vector<Tensor>& v) {
        Shape s(v[0].shape().begin(), v[0].shape().begin() + axis);
        s.push_back(-1);
        return ops::reshape(ops::softmax(ops::reshape(v[0], s)), v[0].shape());
      };
    std::vector<int> to_last, back;  // the axis moved to the end, and back
    for (int64_t k = 0; k < r; ++k)
      if (k != axis) to_last.push_back(int(k));
    to_last.push_back(int(axis));
    back.assign(size_t(r), 0);
    for (int64_t k = 0; k < r; ++k) back[size_t(to_last[size_t(k)])] = int(k);
    return [to_last, back](const std::vector<Tensor>& v) {
      return ops::permute(ops::softmax(ops::permute(v[0], to_last)), back);
    };
  }
  if (op == "Squeeze" || op == "Unsqueeze") {
    // A classifier head's x.squeeze(-1).squeeze(-1) after a global pool: a reshape that
    // leaves the batch dimension where it is (axes from the attribute, or the constant
    // input from opset 13).
    check_attrs(n, {"axes"});
    std::vector<int64_t> axes = attr_ints(n, "axes", {});
    if (present(in, 1)) {
      const HostTensor& a = constant(in, 1, "axes");
      if (!a.is_int || a.shape.size() != 1) throw OnnxError("axes must be a list of integers");
      axes = a.i;
    }
    const Shape out = squeeze_shape(xs, axes, op == "Unsqueeze", !fixed);
    if (fixed) return [out](const std::vector<Tensor>& v) { return ops::reshape(v[0], out); };
    const std::vector<int64_t> dims(out.begin() + 1, out.end());  // after the batch
    return [dims](const std::vector<Tensor>& v) {
      Shape s{v[0].dim(0)};
      s.insert(s.end(), dims.begin(), dims.end());
      return ops::reshape(v[0], s);
    };
  }
  if (op == "Transpose") {  // ShuffleNet's channel shuffle: [n, g, c/g, h, w] -> [n, c/g, g, h, w]
    check_attrs(n, {"perm"});
    const int64_t r = int64_t(xs.size());
    std::vector<int64_t> perm = attr_ints(n, "perm", {});
    if (perm.empty() && fixed)  // ONNX's default: the axes reversed
      for (int64_t a = r - 1; a >= 0; --a) perm.push_back(a);
    if (perm.empty())  // ONNX's default reverses the axes, the batch last
      throw BatchRuleError("a Transpose without perm would move the batch dimension");
    if (int64_t(perm.size()) != r) throw OnnxError("perm does not match the rank " + std::to_string(r));
    std::vector<int> p;
    for (int64_t a : perm) p.push_back(int(norm_axis(a, r, "perm")));
    if (p[0] != 0 && !fixed) throw BatchRuleError("perm " + shape_text(perm) + " moves the batch dimension");
    std::vector<bool> seen(size_t(r), false);
    for (int a : p) {
      if (seen[size_t(a)]) throw OnnxError("perm repeats an axis");
      seen[size_t(a)] = true;
    }
    return [p](const std::vector<Tensor>& v) { return ops::permute(v[0], p); };
  }
  if (op == "Slice") {  // ShuffleNet's channel split, a flip for test-time augmentation
    check_attrs(n, {"starts", "ends", "axes"});
    std::vector<int64_t> starts, ends, axes, steps;
    if (in.size() >= 3) {  // opset 10 on: inputs
      auto ints = [&](size_t k, const char* what) {
        if (!present(in, k)) return std::vector<int64_t>{};
        const HostTensor& t = constant(in, k, what);
        if (!t.is_int || t.shape.size() != 1) throw OnnxError(std::string(what) + " must be a list of integers");
        return t.i;
      };
      starts = ints(1, "starts"), ends = ints(2, "ends"), axes = ints(3, "axes"), steps = ints(4, "steps");
    } else {
      starts = attr_ints(n, "starts", {}), ends = attr_ints(n, "ends", {}), axes = attr_ints(n, "axes", {});
    }
    slice_defaults(starts, ends, axes, steps);
    struct Cut {
      int axis;
      int64_t start, end, step;
    };
    std::vector<Cut> cuts;
    for (size_t k = 0; k < starts.size(); ++k) {
      const int64_t a = norm_axis(axes[k], int64_t(xs.size()), "axis");
      if (a == 0 && !fixed) throw BatchRuleError("a slice of the batch dimension is not supported");
      const int64_t dim = xs[size_t(a)];
      const SliceAxis s = slice_axis(dim, starts[k], ends[k], steps[k]);
      if (s.count == 0) throw OnnxError("the slice of axis " + std::to_string(a) + " is empty");
      if (s.begin == 0 && s.count == dim && s.step == 1) continue;  // the whole axis
      const int64_t last = s.begin + (s.count - 1) * s.step;
      cuts.push_back({int(a), s.begin, s.step > 0 ? last + 1 : last - 1, s.step});
    }
    return [cuts](const std::vector<Tensor>& v) {
      Tensor y = v[0];
      for (const Cut& c : cuts) y = ops::slice(y, c.axis, c.start, c.end, c.step);
      return y;
    };
  }
  if (op == "Gather") {  // constant indices along one axis: a ViT's class token, x[:, 0]
    check_attrs(n, {"axis"});
    const int64_t r = int64_t(xs.size());
    const int64_t axis = norm_axis(attr_int(n, "axis", 0), r, "axis");
    if (axis == 0 && !fixed) throw BatchRuleError("a Gather along the batch dimension is not supported");
    const HostTensor& idx = constant(in, 1, "the indices");
    if (!idx.is_int || idx.shape.size() > 1) throw OnnxError("the indices must be an integer scalar or list");
    const int64_t dim = xs[size_t(axis)];
    std::vector<int64_t> ix;
    for (int64_t i : idx.i) {
      if (i < -dim || i >= dim) throw OnnxError("index " + std::to_string(i) + " is out of range for a dimension of " + std::to_string(dim));
      ix.push_back(i < 0 ? i + dim : i);
    }
    if (ix.empty()) throw OnnxError("no indices");
    const bool scalar = idx.shape.empty();
    // One slice per index, joined along the axis; a scalar index drops the axis.
    return [axis, ix, scalar](const std::vector<Tensor>& v) {
      std::vector<Tensor> parts;
      for (int64_t i : ix) parts.push_back(ops::slice(v[0], int(axis), i, i + 1));
      const Tensor y = parts.size() == 1 ? parts[0] : ops::concat(parts, int(axis));
      if (!scalar) return y;
      Shape s = y.shape();
      s.erase(s.begin() + axis);
      return ops::reshape(y, s);
    };
  }
  if (op == "Equal" || op == "Where" || op == "Expand" || op == "Mod" || op == "Range" ||
      op == "ScatterND" || op == "Not")
    throw OnnxError(op + " on values computed from the input is not supported (on constants it is)");
  std::string list;
  for (const auto& s : supported_ops()) list += (list.empty() ? "" : ", ") + s;
  throw OnnxError("operator " + op + " is not supported (supported: " + list + ")");
}

}  // namespace ipg::onnx_detail
