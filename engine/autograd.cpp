// The backward pass: topological order by iterative DFS (deep networks must not blow
// the call stack), one pending gradient per node, freed as soon as it is consumed.
#include "engine/autograd.h"

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/trace.h"

namespace ipg {

namespace {
thread_local bool g_grad_enabled = true;
}  // namespace

NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

namespace autograd {

bool grad_enabled() { return g_grad_enabled; }

bool needs_graph(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void attach(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(fn);
  out.impl().grad_fn = std::move(node);
  if (trace::active()) trace::record(out, name, out.impl().grad_fn->inputs);
}

namespace {

// Routes each input's gradient: leaves that require grad accumulate into their .grad;
// op outputs into the pending gradient of their node.
class NodeSink : public GradSink {
 public:
  NodeSink(Node& node, std::unordered_map<Node*, Tensor>& pending)
      : node_(node), pending_(pending) {}

  bool wants(size_t i) const override {
    const Tensor& in = node_.inputs.at(i);
    return in.defined() && in.requires_grad();
  }

  Tensor& at(size_t i) override { return buffer(i, nullptr); }

  Tensor& target(size_t i, bool& accumulate) override { return buffer(i, &accumulate); }

 private:
  // Input i's gradient buffer, created on first use: zero-filled, or left uninitialized
  // when the caller takes `accumulate` (then told whether the buffer is new).
  Tensor& buffer(size_t i, bool* accumulate) {
    if (!wants(i))
      throw std::logic_error(node_.name + ": backward asked for the gradient of input " +
                             std::to_string(i) + ", which does not need one");
    const Tensor& in = node_.inputs[i];
    TensorImpl& im = in.impl();
    const auto fresh = [&] {
      if (accumulate) *accumulate = false;
      return accumulate ? Tensor::empty(in.shape(), in.device())
                        : Tensor::zeros(in.shape(), in.device());
    };
    if (accumulate) *accumulate = true;
    if (im.grad_fn) {
      auto it = pending_.find(im.grad_fn.get());
      if (it == pending_.end()) it = pending_.emplace(im.grad_fn.get(), fresh()).first;
      return it->second;
    }
    if (!im.grad) im.grad = fresh().impl_ptr();
    // Tensor handles are cheap; keep one per input so the returned reference is stable.
    auto& slot = leaf_handles_[i];
    slot = Tensor(im.grad);
    return slot;
  }

  Node& node_;
  std::unordered_map<Node*, Tensor>& pending_;
  std::unordered_map<size_t, Tensor> leaf_handles_;
};

std::vector<Node*> reverse_topological(Node* root) {
  std::vector<Node*> post;
  std::unordered_set<Node*> seen{root};
  // (node, next input to visit)
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.impl().grad_fn) {
        Node* child = in.impl().grad_fn.get();
        if (seen.insert(child).second) stack.push_back({child, 0});
      }
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  return std::vector<Node*>(post.rbegin(), post.rend());
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_output) {
  if (!root.requires_grad())
    throw std::logic_error(
        "backward: the tensor does not require a gradient (no input of its "
        "graph has requires_grad set)");
  Tensor g = grad_output;
  if (!g.defined()) {
    if (root.numel() != 1)
      throw ShapeError("backward: a gradient is needed for a non-scalar root of shape " +
                       shape_str(root.shape()));
    g = Tensor::ones(root.shape(), root.device());
  } else if (g.shape() != root.shape()) {
    throw ShapeError("backward: gradient shape " + shape_str(g.shape()) +
                     " does not match tensor shape " + shape_str(root.shape()));
  }
  if (root.is_leaf()) {
    TensorImpl& im = root.impl();
    if (!im.grad) im.grad = Tensor::zeros(root.shape(), root.device()).impl_ptr();
    Tensor acc(im.grad);
    ops::add_(acc, g);
    return;
  }
  NoGradGuard no_grad;  // closures compute with plain ops; they must not record graphs
  std::unordered_map<Node*, Tensor> pending;
  Node* root_node = root.impl().grad_fn.get();
  pending.emplace(root_node, g);
  for (Node* node : reverse_topological(root_node)) {
    auto it = pending.find(node);
    if (it == pending.end()) continue;  // no gradient flowed here
    const Tensor gout = it->second;
    pending.erase(it);
    NodeSink sink(*node, pending);
    node->backward(gout, sink);
  }
}

}  // namespace autograd
}  // namespace ipg
