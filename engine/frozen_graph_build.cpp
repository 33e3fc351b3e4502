// FrozenGraph's builders (frozen_graph.h): each adds one step (frozen_graph_steps.h) with
// its output value and the slots of the gradient contributions it will write; a batch
// norm folds into the convolution before it or becomes a per-channel affine step.
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/frozen_graph.h"
#include "engine/frozen_graph_internal.h"
#include "engine/frozen_graph_steps.h"

namespace ipg {

using namespace frozen_detail;

namespace {

std::vector<float> host(const Tensor& t) { return t.cpu().to_vector(); }

// Evaluation-mode batch norm as y = x * scale + shift.
void bn_affine(const nn::BatchNorm2d& bn, std::vector<float>& scale, std::vector<float>& shift) {
  const std::vector<float> gamma = host(bn.weight), beta = host(bn.bias),
                           mean = host(bn.running_mean), var = host(bn.running_var);
  scale.resize(gamma.size());
  shift.resize(gamma.size());
  for (size_t c = 0; c < gamma.size(); ++c) {
    const double s = gamma[c] / std::sqrt(static_cast<double>(var[c]) + bn.eps);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(beta[c] - mean[c] * s);
  }
}

}  // namespace

Value FrozenGraph::normalize(Value x, const std::vector<float>& mean,
                             const std::vector<float>& std) {
  const kc::ActShape act = st_->at(x).act;
  auto step = std::make_unique<AffineStep>();
  step->x = x;
  step->relu = false;
  step->scale.assign(static_cast<size_t>(act.c), 1.f);
  step->shift.assign(static_cast<size_t>(act.c), 0.f);
  for (int64_t c = 0; c < act.c; ++c) {
    const float m = mean.empty() ? 0.f : mean.at(static_cast<size_t>(c));
    const float s = std.empty() ? 1.f : std.at(static_cast<size_t>(c));
    step->scale[c] = 1.f / s;
    step->shift[c] = -m / s;
  }
  step->dx = st_->contribution(x);
  step->y = st_->add(act, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::conv(Value x, const nn::Conv2d& conv, const nn::BatchNorm2d* bn, bool relu,
                        Value residual, int padding) {
  // Fold the batch norm: bn(conv(x) + b) = conv_{w*scale}(x) + (b*scale + shift).
  std::vector<float> weight = host(conv.weight), bias;
  if (conv.bias) bias = host(*conv.bias);
  if (bn) {
    std::vector<float> scale, shift;
    bn_affine(*bn, scale, shift);
    const size_t per = weight.size() / scale.size();
    for (size_t o = 0; o < scale.size(); ++o)
      for (size_t i = 0; i < per; ++i) weight[o * per + i] *= scale[o];
    if (bias.empty()) bias.assign(scale.size(), 0.f);
    for (size_t o = 0; o < scale.size(); ++o) bias[o] = bias[o] * scale[o] + shift[o];
  }
  return this->conv(x, weight, conv.weight.shape(), bias, conv.stride,
                    padding < 0 ? conv.padding : padding, relu, residual);
}

Value FrozenGraph::conv(Value x, const std::vector<float>& weight, const Shape& w,
                        const std::vector<float>& bias, int stride, int padding, bool relu,
                        Value residual, int groups, int dilation_h, int dilation_w,
                        float relu_max) {
  kc::ActShape in = st_->at(x).act;
  if (groups < 1 || dilation_h < 1 || dilation_w < 1)
    throw std::invalid_argument("FrozenGraph::conv: groups " + std::to_string(groups) +
                                ", dilation " + std::to_string(dilation_h) + "x" +
                                std::to_string(dilation_w));
  if (w.size() != 4 || st_->at(x).features || in.c != w[1] * groups || w[0] % groups != 0 ||
      int64_t(weight.size()) != shape_numel(w) || (!bias.empty() && int64_t(bias.size()) != w[0]))
    throw std::invalid_argument("FrozenGraph::conv: input " + shape_str(shape(x)) +
                                " does not fit weight " + shape_str(w));
  if (in.block != kc::channel_block(in.c)) {  // the input image with 16k channels
    auto step = std::make_unique<LayoutStep>();
    step->x = x;
    step->to_plain = false;
    step->dx = st_->contribution(x);
    in.block = kc::channel_block(in.c);
    x = step->y = st_->add(in, false);
    st_->steps.push_back(std::move(step));
  }
  kernels::Conv2dShape s;
  s.n = in.n, s.c_in = in.c, s.h = in.h, s.w = in.w;
  s.c_out = w[0], s.kh = w[2], s.kw = w[3];
  s.stride = stride;
  s.padding = padding;
  s.groups = groups;
  s.dilation_h = dilation_h;
  s.dilation_w = dilation_w;
  if (s.h_out() < 1 || s.w_out() < 1)
    throw std::invalid_argument("FrozenGraph::conv: kernel larger than the padded input");
  const kc::ActShape out{s.n, s.c_out, s.h_out(), s.w_out(), kc::channel_block(s.c_out)};
  if (residual != kNone) {
    const kc::ActShape& r = st_->at(residual).act;
    if (r.n != out.n || r.c != out.c || r.h != out.h || r.w != out.w || r.block != out.block)
      throw std::invalid_argument("FrozenGraph::conv: residual " + shape_str(shape(residual)) +
                                  " does not match the output");
  }
  auto step = std::make_unique<ConvStep>();
  step->x = x;
  step->residual = residual;
  step->mask = relu;
  step->mask_max = relu_max;
  step->conv = std::make_unique<kc::FusedConv>(
      s, weight.data(), bias.empty() ? nullptr : bias.data(), residual != kNone, relu, relu_max);
  step->dx = st_->contribution(x);
  if (residual != kNone) {
    // The gradient at the sum is also the residual's contribution, as it is: the step
    // always writes it into its scratch slot, which lives until the residual's producer.
    step->scratch = st_->contribution(residual);
  }
  step->y = st_->add(out, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::batch_norm(Value x, const nn::BatchNorm2d& bn, bool relu) {
  if (bn.running_mean.numel() != st_->at(x).act.c)
    throw std::invalid_argument("FrozenGraph::batch_norm: channel count differs");
  std::vector<float> scale, shift;
  bn_affine(bn, scale, shift);
  return affine(x, scale, shift, relu);
}

Value FrozenGraph::affine(Value x, const std::vector<float>& scale,
                          const std::vector<float>& shift, bool relu) {
  const kc::ActShape act = st_->at(x).act;
  if (st_->at(x).features || int64_t(scale.size()) != act.c || shift.size() != scale.size())
    throw std::invalid_argument("FrozenGraph::affine: " + std::to_string(scale.size()) +
                                " channels for " + shape_str(shape(x)));
  auto step = std::make_unique<AffineStep>();
  step->x = x;
  step->relu = relu;
  step->scale = scale;
  step->shift = shift;
  step->dx = st_->contribution(x);
  step->y = st_->add(act, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

namespace {

// One map's pooling geometry; `op` names the builder in the error.
kernels::PoolGeometry pool_geometry(const kc::ActShape& in, int kernel, int stride, int padding,
                                    bool ceil, const char* op) {
  const kernels::PoolGeometry g = kernels::pool_geometry(in.h, in.w, kernel, stride, padding, ceil);
  if (g.oh < 1 || g.ow < 1 || 2 * padding > kernel)
    throw std::invalid_argument(std::string("FrozenGraph::") + op + ": window does not fit");
  return g;
}

}  // namespace

Value FrozenGraph::max_pool(Value x, int kernel, int stride, int padding, bool ceil) {
  const kc::ActShape in = st_->at(x).act;
  auto step = std::make_unique<MaxPoolStep>();
  step->geom = pool_geometry(in, kernel, stride, padding, ceil, "max_pool");
  step->x = x;
  step->dx = st_->contribution(x);
  const kc::ActShape out{in.n, in.c, step->geom.oh, step->geom.ow, in.block};
  step->y = st_->add(out, false);
  if (out.block == 1) step->argmax = Tensor::empty({out.numel()}, Device::cpu(), DType::I32);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::avg_pool(Value x, int kernel, int stride, int padding, bool include_pad,
                            bool ceil) {
  const kc::ActShape in = st_->at(x).act;
  auto step = std::make_unique<WindowAvgPoolStep>();
  step->geom = pool_geometry(in, kernel, stride, padding, ceil, "avg_pool");
  step->include_pad = include_pad;
  step->x = x;
  step->dx = st_->contribution(x);
  step->y = st_->add(kc::ActShape{in.n, in.c, step->geom.oh, step->geom.ow, in.block}, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::global_avg_pool(Value x) {
  const kc::ActShape in = st_->at(x).act;
  auto step = std::make_unique<AvgPoolStep>();
  step->x = x;
  step->dx = st_->contribution(x);
  step->y = st_->add(kc::ActShape{in.n, in.c, 1, 1, 1}, true);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::flatten(Value x) {
  const kc::ActShape in = st_->at(x).act;
  auto step = std::make_unique<LayoutStep>();
  step->x = x;
  step->to_plain = true;
  step->dx = st_->contribution(x);
  step->y = st_->add(kc::ActShape{in.n, in.c * in.h * in.w, 1, 1, 1}, true);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::linear(Value x, const nn::Linear& layer, bool relu) {
  return linear(x, host(layer.weight), layer.weight.shape(),
                layer.bias ? host(*layer.bias) : std::vector<float>(), relu);
}

Value FrozenGraph::linear(Value x, const std::vector<float>& weight, const Shape& w,
                          const std::vector<float>& bias, bool relu) {
  const kc::ActShape in = st_->at(x).act;
  if (w.size() != 2 || !st_->at(x).features || in.c != w[1] ||
      int64_t(weight.size()) != shape_numel(w) || (!bias.empty() && int64_t(bias.size()) != w[0]))
    throw std::invalid_argument("FrozenGraph::linear: input " + shape_str(shape(x)) +
                                " does not fit weight " + shape_str(w));
  auto step = std::make_unique<LinearStep>();
  step->x = x;
  step->mask = relu;
  step->n = in.n, step->in = w[1], step->out = w[0];
  step->weight = weight;
  step->bias = bias;
  step->dx = st_->contribution(x);
  step->y = st_->add(kc::ActShape{in.n, w[0], 1, 1, 1}, true);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::activation(Value x, const kernels::Activation& f) {
  const kc::ActShape act = st_->at(x).act;  // copied: add() grows the values
  const bool features = st_->at(x).features;
  auto step = std::make_unique<ActStep>();
  step->x = x;
  step->f = f;
  step->dx = st_->contribution(x);
  step->y = st_->add(act, features);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

Value FrozenGraph::channel_scale(Value x, Value gate) {
  const kc::ActShape in = st_->at(x).act;
  const ValueInfo& g = st_->at(gate);
  if (st_->at(x).features || !g.features || g.act.n != in.n || g.act.c != in.c)
    throw std::invalid_argument("FrozenGraph::channel_scale: gate " + shape_str(shape(gate)) +
                                " for " + shape_str(shape(x)));
  auto step = std::make_unique<ChannelScaleStep>();
  step->x = x;
  step->gate = gate;
  step->dx = st_->contribution(x);
  step->dgate = st_->contribution(gate);
  step->y = st_->add(in, false);
  const Value y = step->y;
  st_->steps.push_back(std::move(step));
  return y;
}

}  // namespace ipg
