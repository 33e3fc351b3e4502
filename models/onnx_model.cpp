// ONNX reader: the file's checks (size, protobuf, opset, the digest of a file ipguard
// wrote), the Network that runs the steps and the checks of its output. The graph's
// structure is read in onnx_graph.cpp, its steps built in onnx_steps.cpp.
#include "models/onnx_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "engine/ops/concat.h"
#include "engine/ops/strided.h"
#include "engine/random.h"
#include "engine/sha256.h"
#include "models/onnx_export.h"
#include "models/onnx_load_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg {

using namespace onnx_detail;

namespace {

// "display: why" -> "why".
std::string strip_display(const std::string& msg, const std::string& display) {
  const std::string prefix = display + ": ";
  return msg.rfind(prefix, 0) == 0 ? msg.substr(prefix.size()) : msg;
}

// The graph's output is not one row of logits per image (thrown by output_classes and
// check_rows_apart): for a graph read per batch size, the symbolic reading's refusal is
// then the better reason and leads the message.
struct NotLogits : FileError {
  using FileError::FileError;
};

// The number of classes of the graph's output value `ov` (as built for `batch` rows), or
// the reason it is not [batch, classes] logits.
int64_t output_classes(const Value& ov, int64_t batch, const std::string& display) {
  auto refuse = [&](const std::string& why) { throw NotLogits(display + ": " + why); };
  if (!ov.known || ov.is_const) refuse("the graph output does not depend on the input");
  if (ov.shape.size() == 2 && ov.shape[1] == 1)
    refuse("the output has 1 logit per row: a classifier needs at least 2 classes");
  if (ov.shape.size() != 2 || ov.shape[0] != batch || ov.shape[1] < 2 || ov.shape[1] > 100000)
    refuse("the output " + shape_text(ov.shape) + " is not [" + (batch == 1 ? std::string("n") : std::to_string(batch)) +
           ", classes] logits");
  return ov.shape[1];
}

// A graph whose shapes follow the batch in ways a symbol cannot (attention reshapes
// [T, n, C] to [T, n * heads, d]): built again for each batch size it runs at, with every
// Shape a number. The graph (without its initializers, whose values the index holds) and
// its index before any build are kept for that; each build works on a copy of the index,
// which shares its constants.
struct Specializer {
  onnx::GraphProto graph;
  GraphIndex index;
  std::string display;
  std::shared_ptr<OnnxStore> weights;  // the first build's constants, shared by later ones
  // The file fixes its batch at 1 (an export without dynamic axes), so its shapes hold 1
  // where the batch goes: images run one at a time through the one-row build.
  bool one_at_a_time = false;

  struct Built {
    int64_t batch = 0;
    Device device = Device::cpu();
    std::vector<Step> steps;
    std::shared_ptr<OnnxStore> own;  // constants of this batch size alone (an expanded token)
    Value out;  // the output as built: its shape must be [batch, classes]
  };

  // Steps for `batch` rows on `device` (under a NoGradGuard): constants equal to the
  // first build's are shared, the rest kept on `device` in the result's own store.
  // With into_weights (the first build, on the CPU), every constant goes to `weights`.
  std::shared_ptr<Built> build(int64_t batch, Device device, bool into_weights = false) const {
    NoGradGuard no_grad;
    GraphIndex gi = index;
    gi.fixed_batch = batch;
    auto b = std::make_shared<Built>();
    b->batch = batch;
    b->device = device;
    b->own = std::make_shared<OnnxStore>();
    const KeepFn keep = [&](const HostTensor& h, const std::string& name) {
      if (into_weights) return weights->keep(h, name);
      if (Tensor* t = weights->find(h, name)) return t;
      Tensor* t = b->own->keep(h, name);
      *t = t->detach().to(device);
      return t;
    };
    b->steps = build_steps(graph, gi, keep, display, device);
    b->out = gi.values[size_t(gi.out_id)];
    // A graph whose output at this batch size is not [batch, classes] stops here rather
    // than give logits laid out otherwise.
    output_classes(b->out, batch, display);
    set_releases(b->steps, gi.values.size(), gi.out_id);
    return b;
  }
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
  // Specialized per batch size: steps are built when a batch size is first seen (`first`:
  // built already).
  OnnxNetwork(ModelConfig cfg, std::shared_ptr<const Specializer> spec,
              std::shared_ptr<const Specializer::Built> first)
      : Network(std::move(cfg)),
        input_(spec->index.in_id),
        output_(spec->index.out_id),
        num_values_(int(spec->index.values.size())),
        spec_(std::move(spec)),
        built_{std::move(first)} {
    add_module("graph", spec_->weights);
  }

  std::vector<nn::NamedTensor> last_layer_parameters() override {
    throw std::invalid_argument("an ONNX model cannot be post-processed (it is for extraction and "
                                "verification)");
  }

 protected:
  Tensor forward_normalized(const Tensor& x) override {
    if (spec_ && spec_->one_at_a_time && x.dim(0) != 1) {
      std::vector<Tensor> each;
      for (int64_t r = 0; r < x.dim(0); ++r) each.push_back(forward_normalized(ops::slice(x, 0, r, r + 1)));
      return ops::concat(each, 0);
    }
    std::shared_ptr<const Specializer::Built> built;
    if (spec_) built = steps_for(x.dim(0), x.device());
    const std::vector<Step>& steps = built ? built->steps : steps_;
    std::vector<Tensor> v(static_cast<size_t>(num_values_));
    v[size_t(input_)] = x;
    std::vector<Tensor> args;
    for (const Step& s : steps) {
      args.clear();
      for (int i : s.in) args.push_back(v[size_t(i)]);
      v[size_t(s.out)] = s.fn(args);
      for (int i : s.release) v[size_t(i)] = Tensor();  // autodiff keeps what it needs
    }
    return v[size_t(output_)];
  }

 private:
  // The most batch sizes kept built: an extraction's batch shrinks as rows converge.
  static constexpr size_t kMaxBuilt = 8;

  std::shared_ptr<const Specializer::Built> steps_for(int64_t batch, Device device) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t k = 0; k < built_.size(); ++k)
      if (built_[k]->batch == batch && built_[k]->device == device) {
        std::rotate(built_.begin(), built_.begin() + long(k), built_.begin() + long(k) + 1);
        return built_.front();
      }
    auto b = spec_->build(batch, device);
    built_.insert(built_.begin(), b);
    if (built_.size() > kMaxBuilt) built_.pop_back();
    return b;
  }

  std::vector<Step> steps_;
  int input_, output_, num_values_;
  std::shared_ptr<const Specializer> spec_;
  std::mutex mu_;
  std::vector<std::shared_ptr<const Specializer::Built>> built_;  // most recent first
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

constexpr const char* kMalformed = "not a valid ONNX model (truncated or malformed protobuf)";

// The loader after parsing (below): checks, indexing, building.
std::unique_ptr<Network> load_parsed(onnx::ModelProto& model, const std::string& display,
                                     const OnnxOptions& opts);

// A graph built per batch size is not checked operator by operator to keep its rows apart
// (its batch moves between dimensions), so the outcome is checked: three random rows run
// together give, row by row, the logits each gives alone (to rounding: the products are
// blocked differently).
void check_rows_apart(Network& net, const ModelConfig& cfg, const std::string& display) {
  Generator gen(20261207);
  const Tensor x = Tensor::uniform({3, cfg.in_channels, cfg.height, cfg.width}, 0.f, 1.f, gen);
  const Tensor joint = net.logits(x);
  if (joint.shape() != Shape{3, cfg.classes})
    throw NotLogits(display + ": 3 images give logits " + shape_text(joint.shape()) + ", not [3, " + std::to_string(cfg.classes) + "]");
  const std::vector<float> together = joint.to_vector();
  const size_t c = size_t(cfg.classes);
  double scale = 0;
  for (float v : together) scale = std::max(scale, double(std::fabs(v)));
  for (int64_t r = 0; r < 3; ++r) {
    const std::vector<float> alone = net.logits(x.narrow0(r, 1)).to_vector();
    for (size_t k = 0; k < c; ++k) {
      const double a = alone[k], t = together[size_t(r) * c + k];
      if (!std::isfinite(a) || !std::isfinite(t))
        throw NotLogits(display + ": its logits on random images are not finite");
      if (std::fabs(a - t) > 1e-4 * scale + 1e-5)
        throw NotLogits(display + ": it mixes the rows of a batch: image " + std::to_string(r) + " of 3 run together gets logit " +
                          std::to_string(k) + " = " + std::to_string(t) + ", alone " + std::to_string(a));
    }
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
  OnnxOptions o = opts;
  if (o.sidecar) read_sidecar(path, o);
  // Parsed from the stream, not from a copy of the file in memory: a model's size less at
  // the peak of loading.
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot read");
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&f)) {
    if (f.bad()) fail(path, "cannot read");
    fail(path, kMalformed);
  }
  return load_parsed(model, path, o);
}

std::unique_ptr<Network> load_onnx_bytes(const std::string& bytes, const std::string& display,
                                         const OnnxOptions& opts) {
  if (bytes.size() > size_t(kMaxFileBytes)) fail(display, "ONNX file above the size limit");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) fail(display, kMalformed);
  return load_parsed(model, display, opts);
}

namespace {

std::unique_ptr<Network> load_parsed(onnx::ModelProto& model, const std::string& display,
                                     const OnnxOptions& opts) {
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
  fuse_patterns(*model.mutable_graph());  // after the digest check: it reads the file's nodes
  GraphIndex gi = index_graph(g, display, cfg, opts.output);
  gi.opset = opset;
  {  // The index holds the initializers' values now: the file's copies go (a model's size).
    google::protobuf::RepeatedPtrField<onnx::TensorProto> read;
    model.mutable_graph()->mutable_initializer()->Swap(&read);
  }
  // The index before any build, for a graph built per batch size: its constants are
  // shared, so the copy costs no weights.
  const GraphIndex unbuilt = gi;
  const std::vector<Value>& values = gi.values;
  const int in_id = gi.in_id, out_id = gi.out_id;
  const std::string& dropped = gi.dropped;

  NoGradGuard no_grad;
  auto store = std::make_shared<OnnxStore>();
  std::vector<Step> steps;
  std::shared_ptr<Specializer> spec;
  std::shared_ptr<const Specializer::Built> first;
  std::string symbolic_why;  // why the graph could not be read for every batch size at once
  try {
    steps = build_steps(g, gi, [&](const HostTensor& h, const std::string& name) { return store->keep(h, name); },
                        display);
  } catch (const FileError& e) {
    if (!gi.batch_rule) throw;
    symbolic_why = e.what();
    // Shapes that follow the batch in ways a symbol first in every shape cannot (a ViT's
    // attention): the graph is built per batch size, once each, as it runs.
    spec = std::make_shared<Specializer>();
    *spec->graph.mutable_node() = g.node();  // the nodes: the constants' values are in the index
    spec->index = unbuilt;
    spec->display = display;
    spec->weights = std::make_shared<OnnxStore>();
    spec->one_at_a_time = gi.declared_batch == 1;
  }
  if (spec) try {
      first = spec->build(1, Device::cpu(), true);
    } catch (const NotLogits& e) {
      throw NotLogits(symbolic_why + " (read per batch size instead: " + strip_display(e.what(), display) + ")");
    }
  cfg.mean = opts.mean;
  cfg.std = opts.std;
  std::unique_ptr<OnnxNetwork> out;
  try {
    cfg.classes = int(output_classes(first ? first->out : values[size_t(out_id)], 1, display));
    set_releases(steps, values.size(), out_id);  // less memory in inference
    try {
      out = spec ? std::make_unique<OnnxNetwork>(cfg, spec, first)
                 : std::make_unique<OnnxNetwork>(cfg, store, std::move(steps), in_id, out_id,
                                                 int(values.size()));
    } catch (const FileError&) {
      throw;
    } catch (const std::exception& e) {
      fail(display, e.what());  // mean/std that do not fit the input channels
    }
    out->eval();
    if (spec) check_rows_apart(*out, cfg, display);
  } catch (const NotLogits& e) {
    if (symbolic_why.empty()) throw;
    throw NotLogits(symbolic_why + " (read per batch size instead: " + strip_display(e.what(), display) + ")");
  } catch (const FileError&) {
    throw;
  } catch (const std::exception& e) {
    fail(display, e.what());  // an engine error while checking the rows
  }
  if (spec && spec->one_at_a_time)
    h5::notice("notice: " + display + ": the graph fixes its batch at 1 and its shapes follow it (" +
               strip_display(symbolic_why, display) + "): images run one at a time; an export with a "
               "symbolic batch (torch.onnx.export's dynamic_axes) runs them together");
  if (!dropped.empty())
    h5::notice("notice: " + display + ": " + dropped +
               " computes the output; it is dropped: the model's logits are used, its labels are unchanged");
  return out;
}

}  // namespace

}  // namespace ipg
