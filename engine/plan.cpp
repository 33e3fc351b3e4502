// The planner (plan.h): pattern matching over the trace in execution order.
//
// A fused step is a chain of trace nodes, each the only consumer of the one before
// (conv2d -> batch_norm -> add -> relu). The chain is matched at its first node and
// emitted at its last: by then every other operand (a residual computed after the main
// path, as in a ResNet block) has been lowered, so emitting in trace order keeps the
// steps in a valid order.
#include "engine/plan.h"

#include <cmath>
#include <map>
#include <sstream>

namespace ipg {

namespace {

using trace::Graph;
using trace::Node;
using trace::Op;

// Stops planning with a message naming the node.
struct Refused {
  std::string why;
};

class Planner {
 public:
  explicit Planner(const Graph& g) : g_(g) {
    const size_t nv = g.values.size();
    consumers_.assign(nv, {});
    live_.assign(g.nodes.size(), false);
    std::vector<bool> live_value(nv, false);
    live_value[size_t(g.output)] = true;
    for (size_t i = g.nodes.size(); i-- > 0;) {
      if (!live_value[size_t(g.nodes[i].output)]) continue;
      live_[i] = true;
      for (int v : g.nodes[i].inputs)
        if (v >= 0) live_value[size_t(v)] = true;
    }
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (live_[i])
        for (int v : g.nodes[i].inputs)
          if (v >= 0) consumers_[size_t(v)].push_back(int(i));
    pv_.assign(nv, -1);
    pv_[size_t(g.input)] = 0;
    pad_.assign(nv, {-1, 0});
    unsqueezed_.assign(nv, -1);
    done_.assign(g.nodes.size(), false);
  }

  Plan run() {
    plan_.input = g_.values[size_t(g_.input)].shape();
    if (plan_.input.size() != 4) throw Refused{"the input must be [n, C, H, W] images"};
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (!live_[i]) continue;
      const auto pending = tails_.find(int(i));
      if (pending != tails_.end()) {
        emit(pending->second);
        continue;
      }
      if (done_[i]) continue;
      start(int(i));
    }
    plan_.logits = pv_[size_t(g_.output)];
    if (plan_.logits < 0 || plan_.shape(plan_.logits).size() != 2)
      throw Refused{"the output is not a lowered [n, classes] value"};
    return std::move(plan_);
  }

 private:
  struct Chain {
    PlanStep step;
    int in = -1;   // trace value read
    int out = -1;  // trace value written (the last node's output)
    int residual = -1;  // Conv: the trace value added, lowered when the chain is emitted
  };

  const Graph& g_;
  std::vector<std::vector<int>> consumers_;
  std::vector<bool> live_, done_;
  std::vector<int> pv_;                    // trace value -> plan value
  std::vector<std::pair<int, int>> pad_;   // zero pad absorbed: (source value, amount)
  std::vector<int> unsqueezed_;            // [n, k, 1, 1] view of a [n, k] value: that value
  std::map<int, Chain> tails_;             // chains waiting for their last node
  Plan plan_;

  const Shape& shape(int v) const { return g_.values[size_t(v)].shape(); }
  std::string where(int node) const {
    const Node& n = g_.nodes[size_t(node)];
    return "'" + n.name + "' (trace node " + std::to_string(node) + ", output " +
           shape_str(shape(n.output)) + ")";
  }
  // The node that alone consumes v (v not the output) and is not yet in a chain, or -1.
  // (Both operands of a residual add may end a chain; the first to reach it takes it.)
  int sole_consumer(int v) const {
    if (v == g_.output || consumers_[size_t(v)].size() != 1) return -1;
    const int c = consumers_[size_t(v)][0];
    return done_[size_t(c)] ? -1 : c;
  }
  const Node& node(int i) const { return g_.nodes[size_t(i)]; }
  std::vector<float> host(int v, int node_for_error) const {
    if (!g_.is_constant(v))
      throw Refused{where(node_for_error) + ": a weight computed from the input"};
    const Tensor& t = g_.values[size_t(v)];
    if (t.dtype() != DType::F32) throw Refused{where(node_for_error) + ": weights not float32"};
    return t.cpu().to_vector();
  }
  int lowered(int v, int node_for_error) const {
    if (v < 0 || pv_[size_t(v)] < 0)
      throw Refused{where(node_for_error) + ": reads a value no step computes"};
    return pv_[size_t(v)];
  }

  void emit(Chain& c) {
    if (c.residual >= 0) c.step.residual = lowered(c.residual, producer(c.out));
    c.step.out = shape(c.out);
    plan_.steps.push_back(std::move(c.step));
    pv_[size_t(c.out)] = int(plan_.steps.size());
    tails_.erase(tails_.find(producer(c.out)));
  }
  int producer(int v) const { return g_.producer[size_t(v)]; }
  // Marks node i as part of a chain whose last node it now is.
  void absorb(Chain& c, int i, const char* what) {
    done_[size_t(i)] = true;
    c.out = node(i).output;
    c.step.from += std::string("+") + what;
  }
  // Emits now (every operand is lowered) or when the walk reaches the chain's last node.
  void finish(Chain c, int first) {
    if (producer(c.out) == first) {
      tails_[first] = std::move(c);
      emit(tails_[first]);
    } else {
      tails_[producer(c.out)] = std::move(c);
    }
  }

  // Per-channel constant of a [n, C, H, W] map: C values (or 1, broadcast), else empty.
  std::vector<float> per_channel(int v, int64_t channels, int node_for_error) const {
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

  // x * scale + shift from an arithmetic node with one constant operand; false if not.
  bool affine_of(int i, int x, std::vector<float>& scale, std::vector<float>& shift) const {
    const Node& n = node(i);
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
  // Eval-mode batch norm of x as x * scale + shift; false if not one.
  bool bn_affine(int i, int x, std::vector<float>& scale, std::vector<float>& shift) const {
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
  bool is_map(int v) const { return shape(v).size() == 4; }

  void start(int i) {
    const Node& n = node(i);
    switch (n.op) {
      case Op::Conv2d: return conv(i);
      case Op::Linear: return linear(i);
      case Op::BatchNorm: case Op::Add: case Op::Sub: case Op::Mul: case Op::Div: case Op::Relu:
        return affine(i);
      case Op::MaxPool2d: return max_pool(i);
      case Op::GlobalAvgPool: {
        Chain c;
        c.step.kind = PlanStep::Kind::GlobalAvgPool;
        c.step.x = lowered(n.inputs[0], i);
        c.step.from = n.name;
        c.out = n.output;
        return finish(std::move(c), i);
      }
      case Op::ZeroPad2d: return zero_pad(i);
      case Op::Reshape: return reshape(i);
      default:
        throw Refused{where(i) + ": no fused lowering for this op"};
    }
  }

  // Reads x through an absorbed zero pad: (value, extra padding).
  std::pair<int, int> through_pad(int x) const {
    if (pad_[size_t(x)].first >= 0) return pad_[size_t(x)];
    return {x, 0};
  }

  void conv(int i) {
    const Node& n = node(i);
    // The fused lowerings take one stride and one padding for both axes (with any groups
    // and dilations); anything else is refused by name rather than planned wrongly.
    const trace::Attrs& a = n.attrs;
    if (a.groups < 1 || a.dilation[0] < 1 || a.dilation[1] < 1)
      throw Refused{where(i) + ": convolution with groups " + std::to_string(a.groups) +
                    ", dilation " + std::to_string(a.dilation[0]) + "x" +
                    std::to_string(a.dilation[1])};
    if (a.stride_w != a.stride || a.pad[0] != a.padding || a.pad[1] != a.padding ||
        a.pad[2] != a.padding || a.pad[3] != a.padding)
      throw Refused{where(i) + ": convolution with unequal strides or paddings (stride " +
                    std::to_string(a.stride) + "x" + std::to_string(a.stride_w) + ", pads " +
                    std::to_string(a.pad[0]) + "/" + std::to_string(a.pad[1]) + "/" +
                    std::to_string(a.pad[2]) + "/" + std::to_string(a.pad[3]) +
                    ") has no fused lowering"};
    Chain c;
    PlanStep& s = c.step;
    s.kind = PlanStep::Kind::Conv;
    const auto [x, extra] = through_pad(n.inputs[0]);
    s.x = lowered(x, i);
    s.stride = n.attrs.stride;
    s.padding = n.attrs.padding + extra;
    s.groups = a.groups;
    s.dilation_h = a.dilation[0];
    s.dilation_w = a.dilation[1];
    s.weight = host(n.inputs[1], i);
    s.weight_shape = shape(n.inputs[1]);
    const int64_t c_out = s.weight_shape[0];
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) s.bias = host(n.inputs[2], i);
    s.from = "conv2d";
    c.out = n.output;
    int next = sole_consumer(c.out);
    std::vector<float> scale, shift;
    if (next >= 0 && bn_affine(next, c.out, scale, shift)) {
      const size_t per = s.weight.size() / size_t(c_out);
      for (size_t o = 0; o < size_t(c_out); ++o)
        for (size_t k = 0; k < per; ++k) s.weight[o * per + k] *= scale[o];
      if (s.bias.empty()) s.bias.assign(size_t(c_out), 0.f);
      for (size_t o = 0; o < size_t(c_out); ++o) s.bias[o] = s.bias[o] * scale[o] + shift[o];
      absorb(c, next, "batch_norm");
      next = sole_consumer(c.out);
    }
    if (next >= 0 && node(next).op == Op::Add && node(next).inputs.size() == 2) {
      const Node& add = node(next);
      const int other = add.inputs[0] == c.out ? add.inputs[1] : add.inputs[0];
      if (other != c.out && !g_.is_constant(other) && shape(other) == shape(c.out)) {
        c.residual = other;
        absorb(c, next, "add");
        next = sole_consumer(c.out);
      }
    }
    if (next >= 0 && node(next).op == Op::Relu) {
      s.relu = true;
      absorb(c, next, "relu");
    }
    finish(std::move(c), i);
  }

  void linear(int i) {
    const Node& n = node(i);
    Chain c;
    PlanStep& s = c.step;
    s.kind = PlanStep::Kind::Linear;
    s.x = lowered(n.inputs[0], i);
    if (plan_.shape(s.x).size() != 2) throw Refused{where(i) + ": input is not [n, features]"};
    s.weight = host(n.inputs[1], i);
    s.weight_shape = shape(n.inputs[1]);
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) s.bias = host(n.inputs[2], i);
    s.from = "linear";
    c.out = n.output;
    const int next = sole_consumer(c.out);
    if (next >= 0 && node(next).op == Op::Relu) {
      s.relu = true;
      absorb(c, next, "relu");
    }
    finish(std::move(c), i);
  }

  void affine(int i) {
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

  void max_pool(int i) {
    const Node& n = node(i);
    const auto [x, extra] = through_pad(n.inputs[0]);
    Chain c;
    PlanStep& s = c.step;
    s.kind = PlanStep::Kind::MaxPool;
    s.x = lowered(x, i);
    s.kernel = n.attrs.kernel;
    s.stride = n.attrs.stride;
    s.padding = n.attrs.padding + extra;
    if (2 * s.padding > s.kernel) throw Refused{where(i) + ": padding wider than half the window"};
    s.from = extra ? "zero_pad2d+max_pool2d" : "max_pool2d";
    c.out = n.output;
    finish(std::move(c), i);
  }

  void zero_pad(int i) {
    const Node& n = node(i);
    const int* p = n.attrs.pad;
    const int x = n.inputs[0];
    const int next = sole_consumer(n.output);
    const bool symmetric = p[0] == p[1] && p[1] == p[2] && p[2] == p[3];
    if (symmetric && next >= 0 && pad_[size_t(x)].first < 0) {
      const Node& m = node(next);
      // Zero padding before a convolution is the convolution's own padding.
      const bool conv = m.op == Op::Conv2d && m.inputs[0] == n.output;
      // Before a max pooling it is the pooling's -inf padding when the input is a ReLU's
      // output: no window is all padding, so its max is >= 0 either way.
      bool pool = false;
      if (m.op == Op::MaxPool2d && m.attrs.padding == 0 && pv_[size_t(x)] > 0) {
        const PlanStep& src = plan_.steps[size_t(pv_[size_t(x)] - 1)];
        pool = src.relu && src.kind != PlanStep::Kind::Linear;
      }
      if (conv || pool) {
        lowered(x, i);
        pad_[size_t(n.output)] = {x, p[0]};
        done_[size_t(i)] = true;
        return;
      }
    }
    throw Refused{where(i) + ": a zero padding that no convolution or pooling takes"};
  }

  void reshape(int i) {
    const Node& n = node(i);
    const int x = n.inputs[0];
    const Shape& in = shape(x);
    const Shape& out = shape(n.output);
    // [n, k] -> [n, k, 1, 1] -> [n, k], as an imported graph's GlobalAveragePool (keeping
    // dims) and Flatten trace: the round trip is the [n, k] value itself. The 4-D view gets
    // no plan value, so any other reader of it is refused (it runs unfused, never wrongly).
    if (in.size() == 2 && out == Shape{in[0], in[1], 1, 1}) {
      unsqueezed_[size_t(n.output)] = x;
      done_[size_t(i)] = true;
      return;
    }
    if (unsqueezed_[size_t(x)] >= 0) {
      const int src = unsqueezed_[size_t(x)];
      if (out != shape(src))
        throw Refused{where(i) + ": reshapes an unsqueezed [n, k] value other than back to [n, k]"};
      pv_[size_t(n.output)] = lowered(src, i);
      done_[size_t(i)] = true;
      return;
    }
    const int px = lowered(x, i);
    if (in.size() == 4 && out.size() == 2 && out[0] == in[0] && out[1] == in[1] * in[2] * in[3]) {
      Chain c;
      c.step.kind = PlanStep::Kind::Flatten;
      c.step.x = px;
      c.step.from = "reshape";
      c.out = n.output;
      return finish(std::move(c), i);
    }
    if (in == out) {  // a no-op view
      pv_[size_t(n.output)] = px;
      done_[size_t(i)] = true;
      return;
    }
    throw Refused{where(i) + ": only flattening [n, C, H, W] to [n, C*H*W] is lowered"};
  }

};

}  // namespace

std::string Plan::str() const {
  static const char* kNames[] = {"affine", "conv", "max_pool", "global_avg_pool", "flatten",
                                 "linear"};
  std::ostringstream os;
  for (size_t i = 0; i < steps.size(); ++i) {
    const PlanStep& s = steps[i];
    os << "v" << i + 1 << " = " << kNames[int(s.kind)] << "(v" << s.x;
    if (s.residual >= 0) os << ", +v" << s.residual;
    os << ")";
    if (s.groups != 1) os << " groups " << s.groups;
    if (s.dilation_h != 1 || s.dilation_w != 1)
      os << " dilation " << s.dilation_h << "x" << s.dilation_w;
    os << (s.relu ? " relu" : "") << " " << shape_str(s.out) << "  <- " << s.from << "\n";
  }
  return os.str();
}

Plan Plan::with_batch(int64_t n) const {
  Plan p = *this;
  p.input[0] = n;
  for (PlanStep& s : p.steps) s.out[0] = n;
  return p;
}

std::optional<Plan> make_plan(const trace::Graph& g, std::string* why) {
  try {
    return Planner(g).run();
  } catch (const Refused& r) {
    if (why) *why = r.why;
    return std::nullopt;
  }
}

}  // namespace ipg
