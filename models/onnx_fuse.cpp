// ONNX reader, the rewrite before indexing: subgraphs that exporters write out for one
// function the engine has as one op become that op. Today GELU, which torch.onnx writes
// (opsets below 20) as Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5): five
// runtime ops, each keeping a tensor for backward, on a transformer's widest activations.
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

  bool single_reader(const std::string& name) const {
    const auto r = readers_.find(name);
    return r != readers_.end() && r->second == 1;
  }

  // Whether `name` is a one-element float constant (an initializer or a Constant node's
  // output) within 1e-6 relative of `want`. A malformed constant is no match; the reader
  // reports it when it reaches that node.
  bool scalar_is(const std::string& name, double want) const {
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
    return !h.is_int && h.f.size() == 1 && std::fabs(h.f[0] - want) <= 1e-6 * std::fabs(want);
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
           n.input_size() == inputs && n.output_size() >= 1 && !n.output(0).empty();
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

}  // namespace

int fuse_patterns(onnx::GraphProto& g) {
  std::vector<bool> drop(size_t(g.node_size()), false);
  int fused = 0;
  {
    const Patterns p(g);
    for (int i = 0; i < g.node_size(); ++i) {
      const auto& n = g.node(i);
      if (n.op_type() != "Erf" || !(n.domain().empty() || n.domain() == "ai.onnx")) continue;
      std::string x;
      const std::vector<int> nodes = gelu_at(g, p, i, x);
      if (nodes.empty()) continue;
      for (size_t k = 0; k + 1 < nodes.size(); ++k) drop[size_t(nodes[k])] = true;
      onnx::NodeProto& last = *g.mutable_node(nodes.back());
      last.set_op_type("Gelu");
      last.clear_domain();
      last.clear_attribute();
      last.clear_input();
      last.add_input(x);
      ++fused;
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
