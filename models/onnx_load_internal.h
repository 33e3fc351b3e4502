// Inside the ONNX reader's loader (models/onnx_model.cpp, onnx_graph.cpp, onnx_steps.cpp):
// the graph's constants as a module, the steps the network runs, and the two passes over
// the graph. Not part of the models layer's interface.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "models/network.h"
#include "models/onnx_internal.h"

namespace ipg::onnx_detail {

// The graph's constant tensors, registered as parameters (weights, biases, batch norm
// scales) and buffers (the rest), so that they move with the network between devices and
// `ipguard info` lists them. References stay valid as more are added (Module's deques).
class OnnxStore : public nn::Module {
 public:
  Tensor* keep(const HostTensor& h, const std::string& name);
  // The tensor kept earlier under the same name with the same shape and data, or nullptr:
  // a graph built again for another batch size (GraphIndex::fixed_batch) shares the
  // weights of the first build and keeps only what depends on the batch.
  Tensor* find(const HostTensor& h, const std::string& name) const;

 private:
  int kept_ = 0;
  std::multimap<std::string, std::pair<uint64_t, Tensor*>> index_;  // name + shape -> digest
};

struct Step {
  RunFn fn;
  std::vector<int> in;  // value ids
  int out = -1;
  std::vector<int> release;  // value ids whose last reader this step is
};

// Fills each step's release list: the values (other than `keep_out`) it reads last.
void set_releases(std::vector<Step>& steps, size_t num_values, int keep_out);

// FileError "display: msg".
[[noreturn]] void fail(const std::string& display, const std::string& msg);
// "node i 'name'" for messages, "node i (Op)" for a node without a name.
std::string node_name(const onnx::GraphProto& g, int i);

// The graph's values and the order its nodes run in (onnx_graph.cpp).
struct GraphIndex {
  std::map<std::string, int> id;  // names -> value ids
  std::vector<Value> values;
  int in_id = -1;                 // the image input
  int out_id = -1;                // the logits (the dropped Softmax's input)
  int64_t declared_batch = -1;    // the input's dimension 0 when fixed, else -1
  int64_t opset = 13;             // the default domain's (the loader sets it)
  // > 0: the steps are built for this batch size alone (OpContext::fixed_batch), each
  // Shape of a computed value a number; 0: for any batch, the batch a symbol (kBatch).
  int64_t fixed_batch = 0;
  bool batch_rule = false;        // set when build_steps failed on a BatchRuleError
  std::vector<int> order;         // node indices, each after the nodes it reads
  std::vector<bool> skip;         // per node: not run (the dropped Softmax)
  std::string dropped;            // the dropped Softmax node, for the notice; else empty
};

// Rewrites exported subgraphs of one function into that one op (onnx_fuse.cpp): GELU's
// Div/Erf/Add/Mul/Mul into Gelu, LayerNorm's nine nodes into LayerNormalization and
// HardSigmoid/Mul into HardSwish, where their inner values have no other reader. Returns the number fused. Runs before
// index_graph (node indices in messages are the rewritten graph's).
int fuse_patterns(onnx::GraphProto& g);

// Names -> value ids (initializers first; an input of the same name, IR < 4, is that
// initializer), the one image input (its C, H, W into cfg), the topological order (a
// name nothing defines and a cycle are refused naming a node), and a Softmax computing
// the output dropped: logits, the same labels.
GraphIndex index_graph(const onnx::GraphProto& g, const std::string& display, ModelConfig& cfg,
                       const std::string& output = "");

// The load-time pass (onnx_steps.cpp), run under a NoGradGuard: folds constant nodes into
// gi.values and builds one runtime step per remaining node, its constants kept through
// `keep`, checking each on a one-row input (gi.fixed_batch rows when specialized) on
// `device`; the shapes seen go into gi.values.
std::vector<Step> build_steps(const onnx::GraphProto& g, GraphIndex& gi, const KeepFn& keep,
                              const std::string& display, Device device = Device::cpu());

}  // namespace ipg::onnx_detail
