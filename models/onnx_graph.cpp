// ONNX reader, the graph's structure: names -> value ids (initializers, the one image
// input, node outputs), the order the nodes run in (undefined names and cycles refused),
// and a Softmax or LogSoftmax computing the output dropped.
#include <string>

#include "engine/hdf5.h"
#include "models/onnx_load_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

namespace {

// The graph input's C, H, W (dim 0 is the batch: symbolic or any value). Where cfg holds
// them already (OnnxOptions::input_shape), they fill symbolic dimensions and must agree
// with fixed ones.
void read_input(const onnx::ValueInfoProto& in, const std::string& display, ModelConfig& cfg) {
  const std::string where = "input '" + in.name() + "'";
  if (!in.type().has_tensor_type() || in.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
    fail(display, where + " is not a float tensor");
  const auto& shape = in.type().tensor_type().shape();
  if (shape.dim_size() != 4)
    fail(display, where + " must be [n, C, H, W] images (rank " + std::to_string(shape.dim_size()) + ")");
  const int64_t given[3] = {cfg.in_channels, cfg.height, cfg.width};
  int64_t d[3];
  for (int k = 1; k < 4; ++k) {
    if (!shape.dim(k).has_dim_value()) {
      if (!given[k - 1])
        fail(display, where + ": dimension " + std::to_string(k) + " is symbolic ('" +
                          h5::printable(shape.dim(k).dim_param()) +
                          "'): give the image size as {\"input_shape\": [C, H, W]} in " + display + ".json");
      d[k - 1] = given[k - 1];
      continue;
    }
    d[k - 1] = shape.dim(k).dim_value();
    if (given[k - 1] && given[k - 1] != d[k - 1])
      fail(display, where + ": dimension " + std::to_string(k) + " is " + std::to_string(d[k - 1]) +
                        ", not the " + std::to_string(given[k - 1]) + " given");
  }
  if (d[0] < 1 || d[0] > 64 || d[1] < 1 || d[1] > 4096 || d[2] < 1 || d[2] > 4096 ||
      d[0] * d[1] * d[2] > (int64_t(1) << 24))
    fail(display, where + ": implausible image shape " + std::to_string(d[0]) + "x" +
                      std::to_string(d[1]) + "x" + std::to_string(d[2]));
  cfg.in_channels = int(d[0]);
  cfg.height = int(d[1]);
  cfg.width = int(d[2]);
}

}  // namespace

std::string node_name(const onnx::GraphProto& g, int i) {
  const onnx::NodeProto& n = g.node(i);
  // A node without a name (names are optional) is told by its operator.
  if (n.name().empty()) return "node " + std::to_string(i) + " (" + h5::printable(n.op_type()) + ")";
  return "node " + std::to_string(i) + " '" + h5::printable(n.name()) + "'";
}

GraphIndex index_graph(const onnx::GraphProto& g, const std::string& display, ModelConfig& cfg,
                       const std::string& output) {
  // Names -> value ids. Initializers first; an input of the same name (IR < 4) is that
  // initializer.
  GraphIndex gi;
  std::map<std::string, int>& id = gi.id;
  std::vector<Value>& values = gi.values;
  auto new_value = [&](const std::string& name, const std::string& what) {
    if (name.empty()) fail(display, what + " has an empty name");
    if (id.count(name)) fail(display, what + " '" + name + "' is defined twice");
    id[name] = int(values.size());
    values.emplace_back();
    return int(values.size()) - 1;
  };
  for (const auto& t : g.initializer()) {
    const int v = new_value(t.name(), "initializer");
    try {
      values[size_t(v)].set(read_tensor(t, "initializer '" + t.name() + "'"));
    } catch (const OnnxError& e) {
      fail(display, e.what());
    }
    values[size_t(v)].known = values[size_t(v)].is_const = true;
  }
  const onnx::ValueInfoProto* input = nullptr;
  for (const auto& in : g.input()) {
    if (id.count(in.name())) continue;
    if (input)
      fail(display, "more than one graph input ('" + input->name() + "', '" + in.name() +
                        "'); one image input expected (a weight given as an input: exported "
                        "without its parameters? torch.onnx.export(..., export_params=True))");
    input = &in;
  }
  if (!input) fail(display, "the graph has no input");
  // The logits: the one graph output, or the one named (a network that also returns its
  // features has several).
  std::string names;
  const onnx::ValueInfoProto* logits = nullptr;
  for (const auto& o : g.output()) {
    names += (names.empty() ? "'" : ", '") + h5::printable(o.name()) + "'";
    if (o.name() == output) logits = &o;
  }
  if (g.output_size() == 0) fail(display, "the graph has no output");
  if (!output.empty() && !logits)
    fail(display, "no graph output is named '" + h5::printable(output) + "' (the graph's: " + names + ")");
  if (output.empty() && g.output_size() != 1)
    fail(display, std::to_string(g.output_size()) + " graph outputs (" + names +
                      "); name the logits as {\"output\": \"...\"} in " + display + ".json");
  if (!logits) logits = &g.output(0);
  read_input(*input, display, cfg);
  const auto& d0 = input->type().tensor_type().shape().dim(0);
  gi.declared_batch = d0.has_dim_value() ? d0.dim_value() : -1;
  const int in_id = gi.in_id = new_value(input->name(), "input");
  values[size_t(in_id)].known = true;
  values[size_t(in_id)].shape = {1, cfg.in_channels, cfg.height, cfg.width};

  // Node outputs, then the topological order (Kahn): a name nothing defines and a cycle
  // are refused naming a node.
  const int nn = g.node_size();
  std::vector<int> producer_of;  // value id -> node
  producer_of.assign(values.size(), -1);
  for (int i = 0; i < nn; ++i)
    for (const std::string& o : g.node(i).output()) {
      if (o.empty()) continue;
      if (id.count(o)) fail(display, node_name(g, i) + ": output '" + o + "' is defined twice");
      new_value(o, "output");
      producer_of.push_back(i);
    }
  std::vector<int> pending(size_t(nn), 0);
  std::vector<std::vector<int>> readers(static_cast<size_t>(nn));
  for (int i = 0; i < nn; ++i) {
    const auto& n = g.node(i);
    if (n.input_size() > 64) fail(display, node_name(g, i) + ": too many inputs");
    for (const std::string& in : n.input()) {
      if (in.empty()) continue;
      const auto it = id.find(in);
      if (it == id.end()) fail(display, node_name(g, i) + ": input '" + in + "' is not produced by any node, initializer or graph input");
      const int p = producer_of[size_t(it->second)];
      if (p >= 0) {
        ++pending[size_t(i)];
        readers[size_t(p)].push_back(i);
      }
    }
  }
  std::vector<int>& order = gi.order;
  std::vector<int> ready;
  for (int i = nn; i-- > 0;)
    if (!pending[size_t(i)]) ready.push_back(i);
  while (!ready.empty()) {
    const int i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (int r : readers[size_t(i)])
      if (--pending[size_t(r)] == 0) ready.push_back(r);
  }
  if (int(order.size()) != nn)
    for (int i = 0; i < nn; ++i)
      if (pending[size_t(i)]) fail(display, node_name(g, i) + ": the graph has a cycle through this node");
  const auto out_it = id.find(logits->name());
  if (out_it == id.end()) fail(display, "the graph output '" + h5::printable(logits->name()) + "' is not produced");
  int& out_id = gi.out_id;
  out_id = out_it->second;

  // A Softmax (or LogSoftmax) computing the output is dropped: logits, the same labels.
  std::vector<bool>& skip = gi.skip;
  skip.assign(static_cast<size_t>(nn), false);
  std::string& dropped = gi.dropped;
  if (producer_of[size_t(out_id)] >= 0) {
    const int p = producer_of[size_t(out_id)];
    const auto& n = g.node(p);
    if ((n.op_type() == "Softmax" || n.op_type() == "LogSoftmax") && n.domain().empty() &&
        n.input_size() == 1) {
      skip[size_t(p)] = true;
      out_id = id.at(n.input(0));
      dropped = node_name(g, p) + " (" + n.op_type() + ")";
    }
  }
  return gi;
}

}  // namespace ipg::onnx_detail
