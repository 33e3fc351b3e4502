// ONNX reader, the rewrite before indexing: subgraphs that exporters write out for one
// function the engine has as one op become that op, on a transformer's widest activations
// where each runtime op keeps a tensor for backward. Three patterns, as torch.onnx writes them:
// - GELU (opsets below 20): Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5);
// - LayerNorm (opsets below 17): ReduceMean(x) -> Sub -> Pow(2) -> ReduceMean -> Add(eps)
//   -> Sqrt -> Div -> Mul(gamma) [-> Add(beta)], both means over the last axis;
// - hard swish (opsets below 14, MobileNetV3's): HardSigmoid(x, alpha 1/6) -> Mul(x).
// A pattern is fused only when its inner values have no other reader and are not graph
// outputs, so the rewrite never changes what any other node sees.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "models/onnx_fold_internal.h"
#include "models/onnx_load_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

namespace {

class Patterns {
 public:
  explicit Patterns(const onnx::GraphProto& g) : g_(g) {
    for (int i = 0; i < g.node_size(); ++i) {
      for (const std::string& o : g.node(i).output())
        if (!o.empty()) producer_.emplace(o, i);
      for (const std::string& in : g.node(i).input())
        if (!in.empty()) ++readers_[in], reader_[in] = i;
    }
    for (const auto& o : g.output()) readers_[o.name()] += 2;  // never an inner value
    for (int k = 0; k < g.initializer_size(); ++k) initializer_.emplace(g.initializer(k).name(), k);
  }

  // The one node that reads `name`, when it is of the default domain with this op and two
  // inputs and nothing else reads `name`; else -1.
  int only_reader_of(const std::string& name, const char* op) const {
    const auto r = readers_.find(name);
    if (r == readers_.end() || r->second != 1) return -1;
    const int i = reader_.at(name);
    return is(i, op, 2) ? i : -1;
  }

  int producer(const std::string& name, const char* op, int inputs) const {
    const auto p = producer_.find(name);
    return p != producer_.end() && is(p->second, op, inputs) ? p->second : -1;
  }

  int readers(const std::string& name) const {
    const auto r = readers_.find(name);
    return r == readers_.end() ? 0 : r->second;
  }

  bool single_reader(const std::string& name) const { return readers(name) == 1; }

  // Whether `name` is a one-element float constant within 1e-6 relative of `want`.
  bool scalar_is(const std::string& name, double want) const {
    float v = 0;
    return scalar(name, v) && std::fabs(v - want) <= 1e-6 * std::fabs(want);
  }

  // The value of `name` when it is a one-element float constant (an initializer or a
  // Constant node's output). A malformed constant is no match; the reader reports it when
  // it reaches that node.
  bool scalar(const std::string& name, float& value) const {
    HostTensor h;
    try {
      const auto init = initializer_.find(name);
      const int p = producer(name, "Constant", 0);
      if (init != initializer_.end()) {
        const auto& t = g_.initializer(init->second);
        for (int64_t d : t.dims())
          if (d != 1) return false;  // not read: a weight's bytes are no scalar
        h = read_tensor(t, "initializer");
      } else if (p >= 0) {
        h = constant_node(g_.node(p));
      } else {
        return false;
      }
    } catch (const std::exception&) {
      return false;
    }
    if (h.is_int || h.f.size() != 1) return false;
    value = h.f[0];
    return true;
  }

  // The length of `name` when it is a float initializer of one dimension longer than 1 (a
  // LayerNorm's gamma or beta), else -1. Its length against the input's last axis is
  // checked where the fused node is built.
  int64_t float_vector(const std::string& name) const {
    const auto init = initializer_.find(name);
    if (init == initializer_.end()) return -1;
    const auto& t = g_.initializer(init->second);
    if (t.data_type() != onnx::TensorProto::FLOAT || t.dims_size() != 1 || t.dims(0) < 2) return -1;
    return t.dims(0);
  }

  // For a node with two inputs of which one is `name`: the other one; else empty.
  std::string other_input(int i, const std::string& name) const {
    const auto& n = g_.node(i);
    if (n.input(0) == name) return n.input(1);
    if (n.input(1) == name) return n.input(0);
    return {};
  }

 private:
  bool is(int i, const char* op, int inputs) const {
    const auto& n = g_.node(i);
    return n.op_type() == op && (n.domain().empty() || n.domain() == "ai.onnx") &&
           n.input_size() == inputs && n.output_size() == 1 && !n.output(0).empty();
  }

  const onnx::GraphProto& g_;
  std::map<std::string, int> producer_, readers_, reader_, initializer_;
};

// Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5) with Erf at node e: the nodes to
// drop, the last one becoming Gelu(x). Empty when node e does not start one.
std::vector<int> gelu_at(const onnx::GraphProto& g, const Patterns& p, int e, std::string& x) {
  const auto& erf = g.node(e);
  if (erf.input_size() != 1 || erf.output_size() != 1 || !p.single_reader(erf.input(0))) return {};
  const int div = p.producer(erf.input(0), "Div", 2);
  if (div < 0 || !p.scalar_is(g.node(div).input(1), std::sqrt(2.0))) return {};
  x = g.node(div).input(0);
  const int add = p.only_reader_of(erf.output(0), "Add");
  if (add < 0 || !p.scalar_is(p.other_input(add, erf.output(0)), 1.0)) return {};
  const int mul = p.only_reader_of(g.node(add).output(0), "Mul");
  if (mul < 0 || p.other_input(mul, g.node(add).output(0)) != x) return {};
  const int half = p.only_reader_of(g.node(mul).output(0), "Mul");
  if (half < 0 || !p.scalar_is(p.other_input(half, g.node(mul).output(0)), 0.5)) return {};
  return {div, e, add, mul, half};
}

// HardSigmoid(x) with alpha 1/6 and beta 0.5 at node h, read only by Mul(x, it): the node
// to drop and the Mul, which becomes HardSwish(x). Empty when node h does not start one.
std::vector<int> hard_swish_at(const onnx::GraphProto& g, const Patterns& p, int h, std::string& x) {
  const auto& hs = g.node(h);
  if (hs.input_size() != 1 || hs.output_size() != 1 || hs.output(0).empty()) return {};
  float alpha = 0.2f, beta = 0.5f;  // ONNX's defaults
  for (const auto& a : hs.attribute()) {
    if (a.type() != onnx::AttributeProto::FLOAT) return {};
    if (a.name() == "alpha")
      alpha = a.f();
    else if (a.name() == "beta")
      beta = a.f();
    else
      return {};
  }
  if (std::fabs(alpha - 1.0 / 6) > 1e-6 / 6 || beta != 0.5f) return {};
  x = hs.input(0);
  const int mul = p.only_reader_of(hs.output(0), "Mul");
  if (mul < 0 || p.other_input(mul, hs.output(0)) != x) return {};
  return {h, mul};
}

// Whether ReduceMean node n means over the last axis with the axis kept (axes [-1] as an
// attribute, opsets below 18; keepdims absent or 1; no other attribute).
bool mean_over_last_axis(const onnx::NodeProto& n) {
  bool axes = false;
  for (const auto& a : n.attribute()) {
    if (a.name() == "axes" && a.type() == onnx::AttributeProto::INTS && a.ints_size() == 1 &&
        a.ints(0) == -1)
      axes = true;
    else if (!(a.name() == "keepdims" && a.type() == onnx::AttributeProto::INT && a.i() == 1))
      return false;
  }
  return axes;
}

struct LayerNormMatch {
  std::string x, gamma, beta;  // beta empty when there is no Add after the Mul
  float eps = 0;
};

// ReduceMean(x) -> Sub(x, mean) = d -> Pow(d, 2) -> ReduceMean -> Add(eps) -> Sqrt ->
// Div(d, sqrt) -> Mul(gamma) [-> Add(beta)] with Sqrt at node s: the nodes to drop, the
// last one becoming LayerNormalization(x, gamma[, beta]). Empty when node s does not
// start one. d is the one inner value with two readers (Pow and Div).
std::vector<int> layer_norm_at(const onnx::GraphProto& g, const Patterns& p, int s,
                               LayerNormMatch& m) {
  const auto& sqrt = g.node(s);
  if (sqrt.input_size() != 1 || sqrt.output_size() != 1 || !p.single_reader(sqrt.input(0)))
    return {};
  const int add_eps = p.producer(sqrt.input(0), "Add", 2);
  if (add_eps < 0) return {};
  int var = -1;
  for (int k = 0; k < 2 && var < 0; ++k) {
    const std::string& v = g.node(add_eps).input(k);
    const int r = p.producer(v, "ReduceMean", 1);
    if (r >= 0 && p.single_reader(v) && p.scalar(g.node(add_eps).input(1 - k), m.eps)) var = r;
  }
  if (var < 0 || !(m.eps > 0) || !std::isfinite(m.eps) || !mean_over_last_axis(g.node(var)))
    return {};
  const std::string& sq = g.node(var).input(0);
  const int pow = p.producer(sq, "Pow", 2);
  if (pow < 0 || !p.single_reader(sq) || !p.scalar_is(g.node(pow).input(1), 2.0)) return {};
  const std::string& d = g.node(pow).input(0);
  const int sub = p.producer(d, "Sub", 2);
  if (sub < 0 || p.readers(d) != 2) return {};
  m.x = g.node(sub).input(0);
  const std::string& mean = g.node(sub).input(1);
  const int mean_node = p.producer(mean, "ReduceMean", 1);
  if (mean_node < 0 || !p.single_reader(mean) || g.node(mean_node).input(0) != m.x ||
      !mean_over_last_axis(g.node(mean_node)))
    return {};
  const int div = p.only_reader_of(sqrt.output(0), "Div");
  if (div < 0 || g.node(div).input(0) != d || g.node(div).input(1) != sqrt.output(0)) return {};
  const std::string& normalized = g.node(div).output(0);
  const int mul = p.only_reader_of(normalized, "Mul");
  if (mul < 0) return {};
  m.gamma = p.other_input(mul, normalized);
  const int64_t cols = p.float_vector(m.gamma);
  if (cols < 0) return {};
  std::vector<int> nodes = {mean_node, sub, pow, var, add_eps, s, div, mul};
  const std::string& scaled = g.node(mul).output(0);
  const int add = p.only_reader_of(scaled, "Add");
  if (add >= 0 && p.float_vector(p.other_input(add, scaled)) == cols) {
    m.beta = p.other_input(add, scaled);
    nodes.push_back(add);
  }
  return nodes;
}

// Node i becomes op(inputs), with no attribute; it keeps its name and outputs.
onnx::NodeProto& rewrite(onnx::GraphProto& g, int i, const char* op,
                         const std::vector<std::string>& inputs) {
  onnx::NodeProto& n = *g.mutable_node(i);
  n.set_op_type(op);
  n.clear_domain();
  n.clear_attribute();
  n.clear_input();
  for (const std::string& in : inputs) n.add_input(in);
  return n;
}

}  // namespace

int fuse_patterns(onnx::GraphProto& g) {
  std::vector<bool> drop(size_t(g.node_size()), false), claimed(drop);
  int fused = 0;
  {
    const Patterns p(g);
    // Matches read the graph as it was; the rewrites below change only the nodes a match
    // claims, and a node claimed once is never part of a second match.
    auto claim = [&](const std::vector<int>& nodes) {
      if (nodes.empty()) return false;
      for (int i : nodes)
        if (claimed[size_t(i)]) return false;
      for (int i : nodes) claimed[size_t(i)] = true;
      for (size_t k = 0; k + 1 < nodes.size(); ++k) drop[size_t(nodes[k])] = true;
      ++fused;
      return true;
    };
    for (int i = 0; i < g.node_size(); ++i) {
      const auto& n = g.node(i);
      if (!(n.domain().empty() || n.domain() == "ai.onnx")) continue;
      if (n.op_type() == "Erf") {
        std::string x;
        const std::vector<int> nodes = gelu_at(g, p, i, x);
        if (claim(nodes)) rewrite(g, nodes.back(), "Gelu", {x});
      } else if (n.op_type() == "HardSigmoid") {
        std::string x;
        const std::vector<int> nodes = hard_swish_at(g, p, i, x);
        if (claim(nodes)) rewrite(g, nodes.back(), "HardSwish", {x});
      } else if (n.op_type() == "Sqrt") {
        LayerNormMatch m;
        const std::vector<int> nodes = layer_norm_at(g, p, i, m);
        if (!claim(nodes)) continue;
        std::vector<std::string> in = {m.x, m.gamma};
        if (!m.beta.empty()) in.push_back(m.beta);
        onnx::NodeProto& ln = rewrite(g, nodes.back(), "LayerNormalization", in);
        auto* axis = ln.add_attribute();
        axis->set_name("axis");
        axis->set_type(onnx::AttributeProto::INT);
        axis->set_i(-1);
        auto* eps = ln.add_attribute();
        eps->set_name("epsilon");
        eps->set_type(onnx::AttributeProto::FLOAT);
        eps->set_f(m.eps);
      }
    }
  }
  if (!fused) return 0;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
  for (int i = 0; i < g.node_size(); ++i)
    if (!drop[size_t(i)]) kept.Add()->Swap(g.mutable_node(i));
  g.mutable_node()->Swap(&kept);
  return fused;
}

}  // namespace ipg::onnx_detail
