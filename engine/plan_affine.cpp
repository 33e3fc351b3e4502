// The planner's per-channel lowerings: arithmetic with a constant (x + k, x - k, k - x,
// x * k, x / k), eval-mode batch norm and ReLU on [n, C, H, W] maps, folded chain by chain
// into one affine step (x * scale + shift, then ReLU).
#include <cmath>
#include <vector>

#include "engine/plan_internal.h"

namespace ipg::plan_detail {

std::vector<float> Planner::per_channel(int v, int64_t channels, int node_for_error) const {
  const Shape& s = shape(v);
  int64_t numel = 1;
  for (int64_t d : s) numel *= d;
  bool ok = numel == 1;
  if (!ok && numel == channels && s.size() >= 3 && s.size() <= 4) {
    ok = s[s.size() - 1] == 1 && s[s.size() - 2] == 1 && s[s.size() - 3] == channels;
  }
  if (!ok) return {};
  std::vector<float> c = host(v, node_for_error);
  if (c.size() == 1) c.assign(size_t(channels), c[0]);
  return c;
}

bool Planner::affine_of(int i, int x, std::vector<float>& scale, std::vector<float>& shift) const {
  const Node& n = node(i);
  if (n.op == Op::ScalarAffine && n.inputs.size() == 1 && n.inputs[0] == x) {
    scale.assign(size_t(shape(x)[1]), n.attrs.a);
    shift.assign(size_t(shape(x)[1]), n.attrs.b);
    return true;
  }
  if (n.inputs.size() != 2 || shape(n.output) != shape(x)) return false;
  const bool x_first = n.inputs[0] == x;
  const int c = n.inputs[x_first ? 1 : 0];
  if (!g_.is_constant(c) || n.inputs[x_first ? 0 : 1] != x) return false;
  const int64_t channels = shape(x)[1];
  const std::vector<float> k = per_channel(c, channels, i);
  if (k.empty()) return false;
  scale.assign(size_t(channels), 1.f);
  shift.assign(size_t(channels), 0.f);
  for (size_t ch = 0; ch < k.size(); ++ch) {
    switch (n.op) {
      case Op::Add: shift[ch] = k[ch]; break;
      case Op::Sub:  // x - k, or k - x
        if (x_first) {
          shift[ch] = -k[ch];
        } else {
          scale[ch] = -1.f;
          shift[ch] = k[ch];
        }
        break;
      case Op::Mul: scale[ch] = k[ch]; break;
      case Op::Div:
        if (!x_first) return false;
        scale[ch] = 1.f / k[ch];
        break;
      default: return false;
    }
  }
  return true;
}

bool Planner::bn_affine(int i, int x, std::vector<float>& scale, std::vector<float>& shift) const {
  const Node& n = node(i);
  if (n.op != Op::BatchNorm || n.attrs.training || n.inputs.size() != 3 || n.inputs[0] != x)
    return false;
  const std::vector<float> gamma = host(n.inputs[1], i), beta = host(n.inputs[2], i);
  const std::vector<float> mean = n.attrs.running_mean.cpu().to_vector();
  const std::vector<float> var = n.attrs.running_var.cpu().to_vector();
  scale.resize(gamma.size());
  shift.resize(gamma.size());
  for (size_t c = 0; c < gamma.size(); ++c) {
    const double s = gamma[c] / std::sqrt(double(var[c]) + n.attrs.eps);
    scale[c] = float(s);
    shift[c] = float(beta[c] - mean[c] * s);
  }
  return true;
}

void Planner::affine(int i) {
  const Node& n = node(i);
  const int x = n.inputs.empty() ? -1 : (n.op == Op::Relu || n.op == Op::BatchNorm)
                                             ? n.inputs[0]
                                             : (g_.is_constant(n.inputs[0]) ? n.inputs[1]
                                                                            : n.inputs[0]);
  if (x < 0 || !is_map(x))
    throw Refused{where(i) + ": no fused lowering (only per-channel arithmetic with "
                  "constants on [n, C, H, W] maps, or an add that ends a convolution)"};
  Chain c;
  PlanStep& s = c.step;
  s.kind = PlanStep::Kind::Affine;
  s.x = lowered(x, i);
  const size_t channels = size_t(shape(x)[1]);
  s.scale.assign(channels, 1.f);
  s.shift.assign(channels, 0.f);
  c.out = x;
  int cur = i;
  bool first = true;
  while (cur >= 0) {
    std::vector<float> k, b;
    const Node& m = node(cur);
    if (m.op == Op::Relu && m.inputs[0] == c.out) {
      s.relu = true;
    } else if (!(bn_affine(cur, c.out, k, b) || affine_of(cur, c.out, k, b))) {
      if (first)
        throw Refused{where(i) + ": no fused lowering (only per-channel arithmetic with "
                      "constants on [n, C, H, W] maps, or an add that ends a convolution)"};
      break;
    } else {
      // (x * s + t) * k + b
      for (size_t ch = 0; ch < channels; ++ch) {
        s.scale[ch] *= k[ch];
        s.shift[ch] = s.shift[ch] * k[ch] + b[ch];
      }
    }
    if (first) {
      s.from = m.name;
      c.out = m.output;
      done_[size_t(cur)] = true;
    } else {
      absorb(c, cur, m.name.c_str());
    }
    first = false;
    if (s.relu) break;
    cur = sole_consumer(c.out);
  }
  finish(std::move(c), i);
}

}  // namespace ipg::plan_detail
