// The trace recorder (trace.h): a thread-local graph under construction, fed by
// autograd::attach and by the ops' describe() calls.
#include "engine/trace.h"

#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace ipg::trace {

namespace {

struct Recording {
  Graph g;
  std::unordered_map<const TensorImpl*, int> ids;  // tensor -> value id
};

thread_local Recording* t_rec = nullptr;

int value_of(Recording& r, const Tensor& t) {
  if (!t.defined()) return -1;
  const auto it = r.ids.find(t.impl_ptr().get());
  if (it != r.ids.end()) return it->second;
  // Not produced by a recorded node: a constant (weights, normalization tensors).
  const int id = static_cast<int>(r.g.values.size());
  r.g.values.push_back(t);
  r.g.producer.push_back(-1);
  r.ids.emplace(t.impl_ptr().get(), id);
  return id;
}

}  // namespace

const char* op_name(Op op) {
  switch (op) {
    case Op::Opaque: return "opaque";
    case Op::Conv2d: return "conv2d";
    case Op::BatchNorm: return "batch_norm";
    case Op::Add: return "add";
    case Op::Sub: return "sub";
    case Op::Mul: return "mul";
    case Op::Div: return "div";
    case Op::Relu: return "relu";
    case Op::MaxPool2d: return "max_pool2d";
    case Op::GlobalAvgPool: return "global_avg_pool2d";
    case Op::AvgPool2d: return "avg_pool2d";
    case Op::ZeroPad2d: return "zero_pad2d";
    case Op::Reshape: return "reshape";
    case Op::Linear: return "linear";
    case Op::Unary: return "unary";
    case Op::Clamp: return "clamp";
    case Op::HardSigmoid: return "hard_sigmoid";
    case Op::ScalarAffine: return "affine";
  }
  return "?";
}

std::string Graph::str() const {
  std::ostringstream os;
  auto name = [&](int v) -> std::string {
    if (v < 0) return "-";
    if (v == input) return "x";
    return (producer[size_t(v)] < 0 ? "c" : "v") + std::to_string(v);
  };
  for (const Node& n : nodes) {
    os << name(n.output) << " = " << n.name << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i) os << (i ? ", " : "") << name(n.inputs[i]);
    os << ") " << shape_str(values[size_t(n.output)].shape()) << "\n";
  }
  return os.str();
}

Tracer::Tracer(const Tensor& input) {
  if (t_rec) throw std::logic_error("trace::Tracer: already tracing on this thread");
  input_ = input.detach();
  input_.set_requires_grad(true);
  t_rec = new Recording();
  t_rec->g.input = value_of(*t_rec, input_);
}

Tracer::~Tracer() {
  if (!done_) {
    delete t_rec;
    t_rec = nullptr;
  }
}

Graph Tracer::finish(const Tensor& output) {
  if (done_) throw std::logic_error("trace::Tracer::finish called twice");
  done_ = true;
  Recording* r = t_rec;
  t_rec = nullptr;
  Graph g = std::move(r->g);
  const auto it = r->ids.find(output.defined() ? output.impl_ptr().get() : nullptr);
  g.output = it == r->ids.end() ? -1 : it->second;
  delete r;
  if (g.output < 0 || g.producer[size_t(g.output)] < 0)
    throw std::invalid_argument("trace: the output does not depend on the traced input");
  return g;
}

bool active() { return t_rec != nullptr; }

void record(const Tensor& out, const char* name, const std::vector<Tensor>& inputs) {
  Recording* r = t_rec;
  if (!r) return;
  Node n;
  n.name = name;
  // Ops whose inputs and output say everything are known by name; the others are
  // described by the op itself (describe()) right after.
  static const std::pair<const char*, Op> kByName[] = {
      {"add", Op::Add},   {"sub", Op::Sub},         {"mul", Op::Mul},
      {"div", Op::Div},   {"relu", Op::Relu},       {"global_avg_pool2d", Op::GlobalAvgPool},
      {"linear", Op::Linear}, {"reshape", Op::Reshape}};
  for (const auto& [known, op] : kByName)
    if (n.name == known) n.op = op;
  for (const Tensor& t : inputs) n.inputs.push_back(value_of(*r, t));
  n.output = static_cast<int>(r->g.values.size());
  r->g.values.push_back(out);
  r->g.producer.push_back(static_cast<int>(r->g.nodes.size()));
  r->ids[out.impl_ptr().get()] = n.output;
  r->g.nodes.push_back(std::move(n));
}

void describe(const Tensor& out, Op op, const Attrs& attrs) {
  Recording* r = t_rec;
  if (!r) return;
  const auto it = r->ids.find(out.impl_ptr().get());
  if (it == r->ids.end() || r->g.producer[size_t(it->second)] < 0) return;  // no node: constant
  Node& n = r->g.nodes[size_t(r->g.producer[size_t(it->second)])];
  n.op = op;
  n.attrs = attrs;
}

}  // namespace ipg::trace
