// ONNX out (onnx_export.h): the network's eval-mode trace, one ONNX node per traced op.
#include "models/onnx_export.h"

#include <set>
#include <stdexcept>

#include "engine/atomic_file.h"
#include "engine/sha256.h"
#include "engine/trace.h"
#include "onnx/onnx_pb.h"

namespace ipg {
namespace {

constexpr int64_t kOpset = 13;  // Pad's amounts and Reshape's shape as inputs; the reader takes 1-21

class Writer {
 public:
  Writer(const trace::Graph& g, onnx::GraphProto& out) : g_(g), out_(out) {}

  // The name of value v: the graph input, a constant (an initializer, written once) or a
  // node's output.
  std::string name(int v) {
    if (v == g_.input) return "pixels";
    if (v == g_.output) return "logits";
    if (g_.is_constant(v)) {
      const std::string n = "c" + std::to_string(v);
      if (written_.insert(v).second) add_float(n, g_.values[size_t(v)]);
      return n;
    }
    return "v" + std::to_string(v);
  }

  // A float initializer from a tensor (any device).
  void add_float(const std::string& n, const Tensor& t) {
    onnx::TensorProto* p = out_.add_initializer();
    p->set_name(n);
    p->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : t.shape()) p->add_dims(d);
    const std::vector<float> v = t.cpu().to_vector();
    p->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  }

  std::string add_ints(const std::string& n, const std::vector<int64_t>& v) {
    onnx::TensorProto* p = out_.add_initializer();
    p->set_name(n);
    p->set_data_type(onnx::TensorProto::INT64);
    p->add_dims(int64_t(v.size()));
    for (int64_t x : v) p->add_int64_data(x);
    return n;
  }

  onnx::NodeProto* node(const std::string& op, const trace::Node& t, size_t index,
                        const std::vector<std::string>& inputs, const std::string& output) {
    onnx::NodeProto* n = out_.add_node();
    n->set_op_type(op);
    n->set_name(t.name + "_" + std::to_string(index));
    for (const std::string& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }

  static void ints(onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void integer(onnx::NodeProto* n, const std::string& key, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void real(onnx::NodeProto* n, const std::string& key, float v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

  void write(size_t i) {
    const trace::Node& t = g_.nodes[i];
    const trace::Attrs& a = t.attrs;
    const std::string out = name(t.output);
    auto in = [&](size_t k) { return name(t.inputs.at(k)); };
    const Shape& x_shape = g_.values[size_t(t.inputs.at(0))].shape();
    switch (t.op) {
      case trace::Op::Conv2d: {
        const Shape& w = g_.values[size_t(t.inputs.at(1))].shape();
        std::vector<std::string> ins = {in(0), in(1)};
        if (t.inputs.size() > 2 && t.inputs[2] >= 0) ins.push_back(in(2));
        onnx::NodeProto* n = node("Conv", t, i, ins, out);
        ints(n, "kernel_shape", {w[2], w[3]});
        ints(n, "strides", {a.stride, a.stride_w});
        ints(n, "pads", {a.pad[0], a.pad[2], a.pad[1], a.pad[3]});  // begins, then ends
        ints(n, "dilations", {a.dilation[0], a.dilation[1]});
        integer(n, "group", a.groups);
        return;
      }
      case trace::Op::BatchNorm: {
        if (a.training) throw std::invalid_argument("batch norm in training mode has no ONNX form");
        const std::string mean = "m" + std::to_string(t.output), var = "s" + std::to_string(t.output);
        add_float(mean, a.running_mean);
        add_float(var, a.running_var);
        onnx::NodeProto* n = node("BatchNormalization", t, i, {in(0), in(1), in(2), mean, var}, out);
        real(n, "epsilon", a.eps);
        return;
      }
      case trace::Op::Add: node("Add", t, i, {in(0), in(1)}, out); return;
      case trace::Op::Sub: node("Sub", t, i, {in(0), in(1)}, out); return;
      case trace::Op::Mul: node("Mul", t, i, {in(0), in(1)}, out); return;
      case trace::Op::Div: node("Div", t, i, {in(0), in(1)}, out); return;
      case trace::Op::Relu: node("Relu", t, i, {in(0)}, out); return;
      case trace::Op::MaxPool2d:
      case trace::Op::AvgPool2d: {
        const bool max = t.op == trace::Op::MaxPool2d;
        onnx::NodeProto* n = node(max ? "MaxPool" : "AveragePool", t, i, {in(0)}, out);
        ints(n, "kernel_shape", {a.kernel, a.kernel});
        ints(n, "strides", {a.stride, a.stride});
        ints(n, "pads", {a.padding, a.padding, a.padding, a.padding});
        if (a.ceil) integer(n, "ceil_mode", 1);
        if (!max) integer(n, "count_include_pad", a.include_pad ? 1 : 0);
        return;
      }
      case trace::Op::ZeroPad2d: {
        // ONNX pads: every axis's begin, then every axis's end.
        const std::string pads = add_ints("p" + std::to_string(t.output),
                                          {0, 0, a.pad[0], a.pad[2], 0, 0, a.pad[1], a.pad[3]});
        node("Pad", t, i, {in(0), pads}, out);
        return;
      }
      case trace::Op::GlobalAvgPool: {  // ours gives [n, C]; ONNX's [n, C, 1, 1]
        const std::string pooled = "g" + std::to_string(t.output);
        node("GlobalAveragePool", t, i, {in(0)}, pooled);
        integer(node("Flatten", t, i, {pooled}, out), "axis", 1);
        return;
      }
      case trace::Op::Reshape: {
        const Shape& y = g_.values[size_t(t.output)].shape();
        if (y.empty() || x_shape.empty() || y[0] != x_shape[0])
          throw std::invalid_argument("reshape that moves the batch dimension has no ONNX form here");
        std::vector<int64_t> dims(y.begin(), y.end());
        dims[0] = 0;  // 0: the input's batch size, whatever it is at run time
        node("Reshape", t, i, {in(0), add_ints("r" + std::to_string(t.output), dims)}, out);
        return;
      }
      case trace::Op::Linear: {
        std::vector<std::string> ins = {in(0), in(1)};
        if (t.inputs.size() > 2 && t.inputs[2] >= 0) ins.push_back(in(2));
        integer(node("Gemm", t, i, ins, out), "transB", 1);
        return;
      }
      // Known to the planner, not written here (our architectures use none of them).
      case trace::Op::Unary: case trace::Op::Clamp: case trace::Op::HardSigmoid:
      case trace::Op::ScalarAffine:
      case trace::Op::Opaque: break;
    }
    throw std::invalid_argument("op '" + t.name + "' (node " + std::to_string(i) +
                                ") has no ONNX form");
  }

 private:
  const trace::Graph& g_;
  onnx::GraphProto& out_;
  std::set<int> written_;
};

void shape_info(onnx::ValueInfoProto* v, const std::string& name, const Shape& s) {
  v->set_name(name);
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (size_t d = 0; d < s.size(); ++d) {
    onnx::TensorShapeProto_Dimension* dim = t->mutable_shape()->add_dim();
    if (d == 0)
      dim->set_dim_param("n");
    else
      dim->set_dim_value(s[d]);
  }
}

}  // namespace

std::string onnx_export_bytes(Network& net) {
  net.eval();
  net.set_requires_grad(false);
  const ModelConfig& cfg = net.config();
  // Batch 2, so the batch dimension is told apart from a dimension of size 1.
  const Tensor x = Tensor::zeros({2, cfg.in_channels, cfg.height, cfg.width}, net.device());
  trace::Graph g;
  {
    trace::Tracer tracer(x);
    const Tensor out = net.logits(tracer.input());
    g = tracer.finish(out);
  }
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.set_producer_name("ipguard");
  model.set_doc_string(cfg.arch + ": [0, 1] pixels in (normalization included), logits out");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(cfg.arch);
  Writer w(g, *graph);
  for (size_t i = 0; i < g.nodes.size(); ++i) w.write(i);
  if (g.output == g.input) throw std::invalid_argument("the network computes nothing");
  shape_info(graph->add_input(), "pixels", g.values[size_t(g.input)].shape());
  shape_info(graph->add_output(), "logits", g.values[size_t(g.output)].shape());
  onnx::StringStringEntryProto* arch = model.add_metadata_props();
  arch->set_key("ipguard.arch");
  arch->set_value(cfg.arch);
  const std::string digest = sha256_hex(model.SerializeAsString());
  onnx::StringStringEntryProto* entry = model.add_metadata_props();
  entry->set_key(kOnnxDigestKey);
  entry->set_value(digest);
  return model.SerializeAsString();
}

void save_onnx(Network& net, const std::string& path) {
  write_file_atomically(path, onnx_export_bytes(net));
}

}  // namespace ipg
