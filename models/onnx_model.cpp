// ONNX reader: the file's checks (size, protobuf, opset, graph input/output, names,
// cycles), the load-time pass that folds constants and builds one runtime step per
// remaining node (checking each on a one-row input), and the Network that runs the steps.
#include "models/onnx_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "engine/sha256.h"
#include "models/onnx_export.h"
#include "models/onnx_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg {

using namespace onnx_detail;

namespace {

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

class OnnxNetwork : public Network {
 public:
  OnnxNetwork(ModelConfig cfg, std::shared_ptr<OnnxStore> store, std::vector<Step> steps,
              int input, int output, int num_values)
      : Network(std::move(cfg)),
        steps_(std::move(steps)),
        input_(input),
        output_(output),
        num_values_(num_values) {
    add_module("graph", std::move(store));
  }

  std::vector<nn::NamedTensor> last_layer_parameters() override {
    throw std::invalid_argument("an ONNX model cannot be post-processed (it is for extraction and "
                                "verification)");
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    std::vector<Tensor> v(static_cast<size_t>(num_values_));
    v[size_t(input_)] = x;
    std::vector<Tensor> args;
    for (const Step& s : steps_) {
      args.clear();
      for (int i : s.in) args.push_back(v[size_t(i)]);
      v[size_t(s.out)] = s.fn(args);
      for (int i : s.release) v[size_t(i)] = Tensor();  // autodiff keeps what it needs
    }
    return v[size_t(output_)];
  }

 private:
  std::vector<Step> steps_;
  int input_, output_, num_values_;
};

[[noreturn]] void fail(const std::string& display, const std::string& msg) {
  throw FileError(display + ": " + msg);
}

// The graph input's C, H, W (dim 0 is the batch: symbolic or any value).
void read_input(const onnx::ValueInfoProto& in, const std::string& display, ModelConfig& cfg) {
  const std::string where = "input '" + in.name() + "'";
  if (!in.type().has_tensor_type() || in.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT)
    fail(display, where + " is not a float tensor");
  const auto& shape = in.type().tensor_type().shape();
  if (shape.dim_size() != 4)
    fail(display, where + " must be [n, C, H, W] images (rank " + std::to_string(shape.dim_size()) + ")");
  int64_t d[3];
  for (int k = 1; k < 4; ++k) {
    if (!shape.dim(k).has_dim_value())
      fail(display, where + ": dimension " + std::to_string(k) + " must be a fixed number");
    d[k - 1] = shape.dim(k).dim_value();
  }
  if (d[0] < 1 || d[0] > 64 || d[1] < 1 || d[1] > 4096 || d[2] < 1 || d[2] > 4096 ||
      d[0] * d[1] * d[2] > (int64_t(1) << 24))
    fail(display, where + ": implausible image shape " + std::to_string(d[0]) + "x" +
                      std::to_string(d[1]) + "x" + std::to_string(d[2]));
  cfg.in_channels = int(d[0]);
  cfg.height = int(d[1]);
  cfg.width = int(d[2]);
}

void read_sidecar(const std::string& path, OnnxOptions& opts) {
  const std::string side = path + ".json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(side, ec)) return;
  std::ifstream f(side);
  try {
    const nlohmann::json j = nlohmann::json::parse(f);
    opts.mean = j.at("mean").get<std::vector<float>>();
    opts.std = j.at("std").get<std::vector<float>>();
  } catch (const std::exception& e) {
    fail(side, std::string("not a normalization sidecar {\"mean\": [...], \"std\": [...]}: ") + e.what());
  }
}

}  // namespace

std::vector<std::string> onnx_supported_operators() { return supported_ops(); }

bool is_onnx_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char head[17] = {};
  f.read(head, 17);
  const std::streamsize got = f.gcount();
  if (got <= 0) return std::filesystem::path(path).extension() == ".onnx";
  const std::string h(head, size_t(got));
  if (h.rfind("\x89HDF", 0) == 0 || h.rfind("ipguard-integrity", 0) == 0) return false;
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return head[0] == 0x08 || ext == ".onnx";  // 0x08: field 1 (ir_version), a varint
}

std::unique_ptr<Network> load_onnx_model(const std::string& path, const OnnxOptions& opts) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read (" + ec.message() + ")");
  if (size > uint64_t(kMaxFileBytes))
    fail(path, "ONNX file of " + std::to_string(size) + " bytes is above the limit of " +
                   std::to_string(kMaxFileBytes));
  std::ifstream f(path, std::ios::binary);
  std::string bytes(size_t(size), '\0');
  if (!f.read(bytes.data(), std::streamsize(size))) fail(path, "cannot read");
  OnnxOptions o = opts;
  if (o.sidecar && o.mean.empty() && o.std.empty()) read_sidecar(path, o);
  return load_onnx_bytes(bytes, path, o);
}

std::unique_ptr<Network> load_onnx_bytes(const std::string& bytes, const std::string& display,
                                         const OnnxOptions& opts) {
  if (bytes.size() > size_t(kMaxFileBytes)) fail(display, "ONNX file above the size limit");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    fail(display, "not a valid ONNX model (truncated or malformed protobuf)");
  if (model.ir_version() <= 0 || !model.has_graph())
    fail(display, "not an ONNX model (no ir_version or no graph; truncated?)");
  int64_t opset = -1;
  for (const auto& imp : model.opset_import())
    if (imp.domain().empty() || imp.domain() == "ai.onnx") opset = imp.version();
  if (opset < 0 && model.ir_version() < 3) opset = 1;
  if (opset < 1 || opset > 21)
    fail(display, "opset " + std::to_string(opset) + " of the default domain is not supported (1-21)");
  const onnx::GraphProto& g = model.graph();
  // A file ipguard wrote (models/onnx_export.h) ends its metadata with its digest: the
  // SHA-256 of the model without that entry.
  const int props = model.metadata_props_size();
  if (props > 0 && model.metadata_props(props - 1).key() == kOnnxDigestKey) {
    onnx::ModelProto rest = model;
    rest.mutable_metadata_props()->RemoveLast();
    if (sha256_hex(rest.SerializeAsString()) != model.metadata_props(props - 1).value())
      fail(display, std::string("its SHA-256 differs from the one recorded when it was written (") +
                        kOnnxDigestKey + "): the file is damaged");
  }
  if (g.node_size() > kMaxNodes) fail(display, std::to_string(g.node_size()) + " nodes is above the limit");
  if (g.sparse_initializer_size() > 0) fail(display, "sparse initializers are not supported");

  // Names -> value ids. Initializers first; an input of the same name (IR < 4) is that
  // initializer.
  std::map<std::string, int> id;
  std::vector<Value> values;
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
      values[size_t(v)].c = read_tensor(t, "initializer '" + t.name() + "'");
    } catch (const OnnxError& e) {
      fail(display, e.what());
    }
    values[size_t(v)].known = values[size_t(v)].is_const = true;
  }
  const onnx::ValueInfoProto* input = nullptr;
  for (const auto& in : g.input()) {
    if (id.count(in.name())) continue;
    if (input) fail(display, "more than one graph input ('" + input->name() + "', '" + in.name() + "'); one image input expected");
    input = &in;
  }
  if (!input) fail(display, "the graph has no input");
  if (g.output_size() != 1)
    fail(display, std::to_string(g.output_size()) + " graph outputs; one (the logits) expected");
  ModelConfig cfg;
  cfg.arch = kOnnxArch;
  read_input(*input, display, cfg);
  const auto& d0 = input->type().tensor_type().shape().dim(0);
  const int64_t declared_batch = d0.has_dim_value() ? d0.dim_value() : -1;
  const int in_id = new_value(input->name(), "input");
  values[size_t(in_id)].known = true;
  values[size_t(in_id)].shape = {1, cfg.in_channels, cfg.height, cfg.width};

  // Node outputs, then the topological order (Kahn): a name nothing defines and a cycle
  // are refused naming a node.
  const int nn = g.node_size();
  auto node_name = [&](int i) {
    return "node " + std::to_string(i) + " '" + h5::printable(g.node(i).name()) + "'";
  };
  std::vector<int> producer_of;  // value id -> node
  producer_of.assign(values.size(), -1);
  for (int i = 0; i < nn; ++i)
    for (const std::string& o : g.node(i).output()) {
      if (o.empty()) continue;
      if (id.count(o)) fail(display, node_name(i) + ": output '" + o + "' is defined twice");
      new_value(o, "output");
      producer_of.push_back(i);
    }
  std::vector<int> pending(size_t(nn), 0);
  std::vector<std::vector<int>> readers(static_cast<size_t>(nn));
  for (int i = 0; i < nn; ++i) {
    const auto& n = g.node(i);
    if (n.input_size() > 64) fail(display, node_name(i) + ": too many inputs");
    for (const std::string& in : n.input()) {
      if (in.empty()) continue;
      const auto it = id.find(in);
      if (it == id.end()) fail(display, node_name(i) + ": input '" + in + "' is not produced by any node, initializer or graph input");
      const int p = producer_of[size_t(it->second)];
      if (p >= 0) {
        ++pending[size_t(i)];
        readers[size_t(p)].push_back(i);
      }
    }
  }
  std::vector<int> order, ready;
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
      if (pending[size_t(i)]) fail(display, node_name(i) + ": the graph has a cycle through this node");
  const auto out_it = id.find(g.output(0).name());
  if (out_it == id.end()) fail(display, "the graph output '" + g.output(0).name() + "' is not produced");
  int out_id = out_it->second;

  // A Softmax computing the output is dropped: logits, the same labels.
  std::vector<bool> skip(static_cast<size_t>(nn), false);
  std::string dropped;
  if (producer_of[size_t(out_id)] >= 0) {
    const int p = producer_of[size_t(out_id)];
    const auto& n = g.node(p);
    if (n.op_type() == "Softmax" && n.domain().empty() && n.input_size() == 1) {
      skip[size_t(p)] = true;
      out_id = id.at(n.input(0));
      dropped = node_name(p);
    }
  }

  auto store = std::make_shared<OnnxStore>();
  std::vector<Step> steps;
  const auto& ops = supported_ops();
  NoGradGuard no_grad;
  std::map<int, Tensor> live;  // load-time run on one row: tensors of runtime values
  live[in_id] = Tensor::zeros(values[size_t(in_id)].shape);
  for (int i : order) {
    if (skip[size_t(i)]) continue;
    const auto& n = g.node(i);
    try {
      if (!(n.domain().empty() || n.domain() == "ai.onnx"))
        throw OnnxError("operator " + n.domain() + "." + n.op_type() + " is not supported (only the default domain is)");
      if (std::find(ops.begin(), ops.end(), n.op_type()) == ops.end()) {
        std::string list;
        for (const auto& s : ops) list += (list.empty() ? "" : ", ") + s;
        throw OnnxError("operator " + n.op_type() + " is not supported (supported: " + list + ")");
      }
      std::vector<const Value*> in;
      bool all_const = true;
      for (const std::string& name : n.input()) {
        if (name.empty()) {
          in.push_back(nullptr);
          continue;
        }
        const Value& v = values[size_t(id.at(name))];
        if (!v.known) throw OnnxError("input '" + name + "' is an output this reader does not compute");
        in.push_back(&v);
        all_const = all_const && v.is_const;
      }
      std::vector<HostTensor> outs;
      bool folded = false;
      if (n.op_type() == "Shape" && !in.empty() && in[0] && !in[0]->is_const) {
        check_attrs(n, {"start", "end"});
        if (find_attr(n, "start") || find_attr(n, "end")) throw OnnxError("Shape with start/end is not supported");
        HostTensor s;
        s.is_int = true;
        s.i = in[0]->shape;
        s.i[0] = kBatch;
        s.shape = {int64_t(s.i.size())};
        outs.push_back(s);
        folded = true;
      } else if (all_const) {
        std::vector<const HostTensor*> c;
        for (const Value* v : in) c.push_back(v ? &v->c : nullptr);
        folded = fold_constant(n, c, outs);
        if (!folded) {
          // An operator without a host evaluation (a Relu on constants, say): run it once
          // with the engine and keep its result.
          std::vector<Value> as_runtime;
          for (const Value* v : in) {
            as_runtime.emplace_back();
            if (v) as_runtime.back() = Value{true, false, {}, v->c.shape};
          }
          std::vector<const Value*> ptrs;
          std::vector<Tensor> args;
          for (size_t k = 0; k < in.size(); ++k) {
            ptrs.push_back(in[k] ? &as_runtime[k] : nullptr);
            if (in[k]) args.push_back(to_tensor(in[k]->c));
          }
          std::vector<int> rt;
          OnnxStore scratch;
          const RunFn fn = make_op(n, ptrs, [&](const HostTensor& h, const std::string& nm) { return scratch.keep(h, nm); }, rt, declared_batch);
          std::vector<Tensor> rargs;
          for (int k : rt) rargs.push_back(to_tensor(in[size_t(k)]->c));
          outs.push_back(from_tensor(fn(rargs)));
          folded = true;
        }
      }
      if (folded) {
        if (size_t(n.output_size()) < outs.size()) outs.resize(size_t(n.output_size()));
        for (size_t k = 0; k < outs.size(); ++k) {
          if (n.output(int(k)).empty()) continue;
          Value& v = values[size_t(id.at(n.output(int(k))))];
          v.known = v.is_const = true;
          v.c = std::move(outs[k]);
        }
        continue;
      }
      Step step;
      std::vector<int> rt;
      step.fn = make_op(n, in, [&](const HostTensor& h, const std::string& nm) { return store->keep(h, nm); }, rt, declared_batch);
      std::vector<Tensor> args;
      for (int k : rt) {
        const int v = id.at(n.input(k));
        step.in.push_back(v);
        args.push_back(live.at(v));
      }
      if (n.output_size() < 1 || n.output(0).empty()) throw OnnxError("the node has no output");
      step.out = id.at(n.output(0));
      const Tensor y = step.fn(args);
      if (y.dim(0) != 1) throw OnnxError("the output " + shape_str(y.shape()) + " does not keep the batch dimension first");
      checked_numel(y.shape(), "output");
      Value& ov = values[size_t(step.out)];
      ov.known = true;
      ov.shape = y.shape();
      live[step.out] = y;
      steps.push_back(std::move(step));
    } catch (const FileError&) {
      throw;
    } catch (const std::exception& e) {
      fail(display, node_name(i) + ": " + (e.what()[0] ? e.what() : "failed"));
    }
  }
  const Value& ov = values[size_t(out_id)];
  if (!ov.known || ov.is_const)
    fail(display, "the graph output does not depend on the input");
  if (ov.shape.size() != 2 || ov.shape[1] < 2 || ov.shape[1] > 100000)
    fail(display, "the output " + shape_text(ov.shape) + " is not [n, classes] logits");
  // Each runtime value is released after its last reader (less memory in inference).
  std::vector<int> last(values.size(), -1);
  for (size_t s = 0; s < steps.size(); ++s)
    for (int v : steps[s].in) last[size_t(v)] = int(s);
  for (size_t v = 0; v < values.size(); ++v)
    if (last[v] >= 0 && int(v) != out_id) steps[size_t(last[v])].release.push_back(int(v));

  cfg.classes = int(ov.shape[1]);
  cfg.mean = opts.mean;
  cfg.std = opts.std;
  std::unique_ptr<OnnxNetwork> out;
  try {
    out = std::make_unique<OnnxNetwork>(cfg, store, std::move(steps), in_id, out_id,
                                        int(values.size()));
  } catch (const std::exception& e) {
    fail(display, e.what());  // mean/std that do not fit the input channels
  }
  if (!dropped.empty())
    h5::notice("notice: " + display + ": " + dropped +
               " (Softmax) computes the output; it is dropped: the model's logits are used, its labels are unchanged");
  out->eval();
  return out;
}

}  // namespace ipg
