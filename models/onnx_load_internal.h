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
  Tensor* keep(const HostTensor& h, const std::string& name) {
    const bool weight = name == "weight" || name == "bias" || name == "scale";
    const std::string key = "t" + std::to_string(kept_++) + "_" + name;
    return weight ? &add_parameter(key, to_tensor(h)) : &add_buffer(key, to_tensor(h));
  }

 private:
  int kept_ = 0;
};

struct Step {
  RunFn fn;
  std::vector<int> in;  // value ids
  int out = -1;
  std::vector<int> release;  // value ids whose last reader this step is
};

// FileError "display: msg".
[[noreturn]] void fail(const std::string& display, const std::string& msg);
// "node i 'name'", for messages.
std::string node_name(const onnx::GraphProto& g, int i);

// The graph's values and the order its nodes run in (onnx_graph.cpp).
struct GraphIndex {
  std::map<std::string, int> id;  // names -> value ids
  std::vector<Value> values;
  int in_id = -1;                 // the image input
  int out_id = -1;                // the logits (the dropped Softmax's input)
  int64_t declared_batch = -1;    // the input's dimension 0 when fixed, else -1
  int64_t opset = 13;             // the default domain's (the loader sets it)
  std::vector<int> order;         // node indices, each after the nodes it reads
  std::vector<bool> skip;         // per node: not run (the dropped Softmax)
  std::string dropped;            // the dropped Softmax node, for the notice; else empty
};

// Names -> value ids (initializers first; an input of the same name, IR < 4, is that
// initializer), the one image input (its C, H, W into cfg), the topological order (a
// name nothing defines and a cycle are refused naming a node), and a Softmax computing
// the output dropped: logits, the same labels.
GraphIndex index_graph(const onnx::GraphProto& g, const std::string& display, ModelConfig& cfg,
                       const std::string& output = "");

// The load-time pass (onnx_steps.cpp), run under a NoGradGuard: folds constant nodes into
// gi.values and builds one runtime step per remaining node, its constants kept in store,
// checking each on a one-row input; the shapes seen go into gi.values.
std::vector<Step> build_steps(const onnx::GraphProto& g, GraphIndex& gi, OnnxStore& store,
                              const std::string& display);

}  // namespace ipg::onnx_detail
