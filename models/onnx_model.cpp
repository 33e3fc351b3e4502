// ONNX reader: the file's checks (size, protobuf, opset, the digest of a file ipguard
// wrote), the Network that runs the steps and the checks of its output. The graph's
// structure is read in onnx_graph.cpp, its steps built in onnx_steps.cpp.
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
#include "models/onnx_load_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg {

using namespace onnx_detail;

namespace {

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

// "<path>.json": {"mean": [...], "std": [...]} (together), {"input_shape": [C, H, W]},
// {"output": "name"}, or several. Options already given win over it.
void read_sidecar(const std::string& path, OnnxOptions& opts) {
  const std::string side = path + ".json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(side, ec)) return;
  std::ifstream f(side);
  try {
    const nlohmann::json j = nlohmann::json::parse(f);
    if (!j.is_object() || j.empty()) throw std::invalid_argument("not a JSON object with keys");
    for (const auto& [key, value] : j.items())
      if (key != "mean" && key != "std" && key != "input_shape" && key != "output")
        throw std::invalid_argument("unknown key \"" + key + "\"");
    if (j.contains("mean") != j.contains("std"))
      throw std::invalid_argument("mean and std go together");
    if (j.contains("mean") && opts.mean.empty() && opts.std.empty()) {
      opts.mean = j.at("mean").get<std::vector<float>>();
      opts.std = j.at("std").get<std::vector<float>>();
    }
    if (j.contains("input_shape") && opts.input_shape.empty()) {
      opts.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
      if (opts.input_shape.size() != 3) throw std::invalid_argument("input_shape must be [C, H, W]");
    }
    if (j.contains("output") && opts.output.empty()) {
      opts.output = j.at("output").get<std::string>();
      if (opts.output.empty()) throw std::invalid_argument("output is an empty name");
    }
  } catch (const std::exception& e) {
    fail(side, std::string("not a sidecar {\"mean\": [...], \"std\": [...], \"input_shape\": [C, H, W], "
                           "\"output\": \"name\"}: ") + e.what());
  }
}

}  // namespace

namespace onnx_detail {

[[noreturn]] void fail(const std::string& display, const std::string& msg) {
  throw FileError(display + ": " + msg);
}

}  // namespace onnx_detail

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
  if (o.sidecar) read_sidecar(path, o);
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
  // Any other ipguard.* entry says we wrote it, so its digest must be there, last: a flip in
  // the digest's own key would otherwise load the file unchecked, as a foreign model.
  const bool ours = std::any_of(model.metadata_props().begin(), model.metadata_props().end(),
                                [](const onnx::StringStringEntryProto& e) {
                                  return e.key().rfind("ipguard.", 0) == 0;
                                });
  if (ours && model.metadata_props(props - 1).key() != kOnnxDigestKey)
    fail(display, std::string("it carries ipguard metadata but not its digest (") +
                      kOnnxDigestKey + ", last): the file is damaged");
  if (props > 0 && model.metadata_props(props - 1).key() == kOnnxDigestKey) {
    onnx::ModelProto rest = model;
    rest.mutable_metadata_props()->RemoveLast();
    if (sha256_hex(rest.SerializeAsString()) != model.metadata_props(props - 1).value())
      fail(display, std::string("its SHA-256 differs from the one recorded when it was written (") +
                        kOnnxDigestKey + "): the file is damaged");
  }
  if (g.node_size() > kMaxNodes) fail(display, std::to_string(g.node_size()) + " nodes is above the limit");
  if (g.sparse_initializer_size() > 0) fail(display, "sparse initializers are not supported");

  ModelConfig cfg;
  cfg.arch = kOnnxArch;
  cfg.in_channels = cfg.height = cfg.width = 0;  // 0: the graph's (read_input)
  if (!opts.input_shape.empty()) {  // read_input checks them against the graph's
    if (opts.input_shape.size() != 3) fail(display, "the input shape given must be [C, H, W]");
    for (int64_t d : opts.input_shape)
      if (d < 1 || d > 4096) fail(display, "the input shape given has a dimension " + std::to_string(d));
    cfg.in_channels = int(opts.input_shape[0]);
    cfg.height = int(opts.input_shape[1]);
    cfg.width = int(opts.input_shape[2]);
  }
  GraphIndex gi = index_graph(g, display, cfg, opts.output);
  gi.opset = opset;
  const std::vector<Value>& values = gi.values;
  const int in_id = gi.in_id, out_id = gi.out_id;
  const std::string& dropped = gi.dropped;

  auto store = std::make_shared<OnnxStore>();
  NoGradGuard no_grad;
  std::vector<Step> steps = build_steps(g, gi, *store, display);
  const Value& ov = values[size_t(out_id)];
  if (!ov.known || ov.is_const)
    fail(display, "the graph output does not depend on the input");
  if (ov.shape.size() == 2 && ov.shape[1] == 1)
    fail(display, "the output has 1 logit per row: a classifier needs at least 2 classes");
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
               " computes the output; it is dropped: the model's logits are used, its labels are unchanged");
  out->eval();
  return out;
}

}  // namespace ipg
