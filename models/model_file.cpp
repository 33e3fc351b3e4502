// Native model files over engine/hdf5.
#include "models/model_file.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "engine/hdf5.h"
#include "models/onnx_model.h"

namespace ipg {

namespace {

// Version 2 files are sealed (engine/hdf5.h); version 1 files still load, with a notice.
constexpr int64_t kVersion = 2;
constexpr int64_t kOldestVersion = 1;

// An int attribute, refused outside int's range (a plain cast would read 2^32 + 1 as 1).
int attr_int32(const h5::File& f, const char* name) {
  const int64_t v = f.scalar_int(name);
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
    throw FileError(f.file() + ": /: attribute '" + name + "' = " + std::to_string(v) +
                    " is out of range");
  return static_cast<int>(v);
}

}  // namespace

std::string resave_hint(const std::string& path) {
  (void)path;
  return "re-save it with `ipguard convert --upgrade` to add one";
}

ModelConfig read_model_attributes(const h5::File& f) {
  if (!f.has_attr("format") || f.scalar_string("format") != kModelFormat) {
    // Our other file kind, given where a model belongs: said as such.
    if (f.has_attr("format") && f.scalar_string("format") == "ipguard-fingerprint")
      throw FileError(f.file() + ": an ipguard fingerprint, not a model (commands take it as "
                      "--fingerprint)");
    throw FileError(f.file() + ": not an ipguard model file (attribute format is not '" +
                    std::string(kModelFormat) + "')");
  }
  const int64_t version = f.scalar_int("version");
  if (version < kOldestVersion || version > kVersion)
    throw FileError(f.file() + ": model file version " + std::to_string(version) +
                    " is not supported (this build reads versions " +
                    std::to_string(kOldestVersion) + " to " + std::to_string(kVersion) + ")");
  h5::check_integrity(f, version, resave_hint(f.file()));
  ModelConfig cfg;
  cfg.arch = f.scalar_string("arch");
  cfg.in_channels = attr_int32(f, "in_channels");
  cfg.height = attr_int32(f, "height");
  cfg.width = attr_int32(f, "width");
  cfg.classes = attr_int32(f, "classes");
  // One value per input channel, as a 1-D float array: a scalar in its place (even for
  // one channel) is a rewritten file, not a model.
  if (cfg.in_channels < 1 || cfg.in_channels > (1 << 20))
    throw FileError(f.file() + ": /: attribute 'in_channels' = " + std::to_string(cfg.in_channels) +
                    " is not in [1, 2^20]");
  cfg.mean = f.float_vector("mean", cfg.in_channels);
  cfg.std = f.float_vector("std", cfg.in_channels);
  return cfg;
}

Provenance read_provenance(const h5::File& f) {
  Provenance p;
  if (f.has_attr("data")) p.data = f.scalar_string("data");
  if (f.has_attr("seed")) p.seed = f.scalar_int("seed");
  if (f.has_attr("epochs")) p.epochs = f.scalar_int("epochs");
  if (f.has_attr("accuracy")) p.accuracy = f.scalar_float("accuracy");
  if (f.has_attr("recipe")) p.recipe = f.scalar_string("recipe");
  return p;
}

void write_model_attributes(h5::Group& root, const ModelConfig& cfg, const Provenance& p) {
  root.set_attr_string("format", kModelFormat);
  root.set_attr_int("version", kVersion);
  root.set_attr_string("arch", cfg.arch);
  root.set_attr_int("in_channels", cfg.in_channels);
  root.set_attr_int("height", cfg.height);
  root.set_attr_int("width", cfg.width);
  root.set_attr_int("classes", cfg.classes);
  root.set_attr_floats("mean", cfg.mean);
  root.set_attr_floats("std", cfg.std);
  if (!p.data.empty()) root.set_attr_string("data", p.data);
  if (p.seed >= 0) root.set_attr_int("seed", p.seed);
  if (p.epochs >= 0) root.set_attr_int("epochs", p.epochs);
  if (p.accuracy >= 0) root.set_attr_double("accuracy", p.accuracy);
  if (!p.recipe.empty()) root.set_attr_string("recipe", p.recipe);
}

namespace {

// Paths of every dataset below `g`, relative to it. A link may lead back to a group
// above (HDF5 allows cycles of soft and hard links), so the walk is bounded in depth and
// in the number of entries (module paths are a few levels deep; resnet50 has ~320).
void list_datasets(const h5::Group& g, const std::string& prefix, std::vector<std::string>& out,
                   int depth = 0) {
  constexpr int kMaxDepth = 16;
  constexpr size_t kMaxEntries = 100000;
  if (depth > kMaxDepth)
    throw FileError(g.file() + ": " + g.path() + ": groups nested more than " +
                    std::to_string(kMaxDepth) + " deep (a link cycle?)");
  for (const std::string& c : g.children()) {
    if (out.size() >= kMaxEntries)
      throw FileError(g.file() + ": " + g.path() + ": more than " + std::to_string(kMaxEntries) +
                      " datasets");
    if (g.is_group(c))
      list_datasets(g.group(c), prefix + c + "/", out, depth + 1);
    else
      out.push_back(prefix + c);
  }
}

// Refuses a config whose weights the file cannot hold, allowing for compression (h5py
// files may be gzip-compressed; deflate shrinks float32 weights far less than 256:1).
void check_fits(const ModelConfig& cfg, const std::string& path) {
  std::error_code ec;
  const double bytes = static_cast<double>(std::filesystem::file_size(path, ec));
  const double need = 4.0 * min_parameters(cfg);
  if (!ec && need > 256.0 * bytes)
    throw FileError(path + ": implausible model: a " + cfg.arch + " for " +
                    std::to_string(cfg.in_channels) + "x" + std::to_string(cfg.height) + "x" +
                    std::to_string(cfg.width) + " inputs and " + std::to_string(cfg.classes) +
                    " classes has at least " + std::to_string(static_cast<int64_t>(need / 4)) +
                    " weights; a file of " + std::to_string(static_cast<int64_t>(bytes)) +
                    " bytes cannot hold them");
}

}  // namespace

void save_model(Network& net, const std::string& path, const Provenance& p) {
  if (net.arch() == kOnnxArch)
    throw std::invalid_argument(path + ": an ONNX model cannot be saved as a native model file");
  h5::FileWriter w(path);
  const ModelConfig& cfg = net.config();
  write_model_attributes(w, cfg, p);
  for (auto& [name, t] : net.named_parameters()) w.write("params/" + name, *t);
  for (auto& [name, t] : net.named_buffers()) w.write("buffers/" + name, *t);
  w.commit();
}

std::unique_ptr<Network> load_model(const std::string& path, Provenance* provenance) {
  // An ONNX file (models/onnx_model.h) has no provenance of ours.
  if (is_onnx_file(path)) {
    auto net = load_onnx_model(path);
    if (provenance) *provenance = Provenance{};
    return net;
  }
  const h5::File f(path);
  ModelConfig cfg = read_model_attributes(f);
  // Read (and so checked) whether or not the caller wants it: eval and info accept the
  // same files.
  const Provenance prov = read_provenance(f);
  check_fits(cfg, path);
  if (cfg.arch == "rf")  // a forest's file (models/forest_file.h): make_network knows no "rf"
    throw FileError(path + ": a random forest, not a network (this needs a network)");
  std::unique_ptr<Network> net;
  try {
    net = make_network(cfg);
  } catch (const std::exception& e) {
    throw FileError(path + ": " + e.what());
  }
  // At most a few problems are listed: a garbled file can have hundreds, and their
  // names (escaped: they come from the file) say enough.
  constexpr int kListed = 5;
  std::string problems;
  int n_problems = 0;
  auto problem = [&](const std::string& s) {
    if (n_problems++ < kListed) problems += "\n  " + s;
  };
  std::set<std::string> expected;
  auto load_all = [&](const std::string& root, std::vector<nn::NamedTensor> tensors) {
    for (auto& [name, t] : tensors) {
      const std::string key = root + "/" + name;
      expected.insert(key);
      if (!f.is_dataset(key)) {
        problem("missing " + key + " " + shape_str(t->shape()));
        continue;
      }
      const h5::Dataset d = f.dataset(key);
      if (d.shape() != t->shape() || d.type_name() != "float32") {
        problem(key + ": file has " + d.type_name() + " " + shape_str(d.shape()) + ", " + cfg.arch +
                " needs float32 " + shape_str(t->shape()));
        continue;
      }
      const Tensor v = d.read(DType::F32, t->shape());
      const float* p = v.data();
      for (int64_t i = 0; i < v.numel(); ++i)
        if (!std::isfinite(p[i])) {
          problem(key + ": value " + std::to_string(i) + " is " + std::to_string(p[i]) +
                  " (NaN/Inf weights refused)");
          break;
        }
      t->copy_from(v);
    }
  };
  load_all("params", net->named_parameters());
  load_all("buffers", net->named_buffers());
  for (const char* root : {"params", "buffers"}) {
    if (!f.is_group(root)) continue;
    std::vector<std::string> found;
    list_datasets(f.group(root), std::string(root) + "/", found);
    for (const auto& k : found)
      if (!expected.count(k))
        problem("unexpected " + h5::printable(k) + " (not part of " + cfg.arch + ")");
  }
  if (n_problems > kListed)
    problems += "\n  ... and " + std::to_string(n_problems - kListed) + " more";
  if (n_problems)
    throw FileError(path + ": " + std::to_string(n_problems) + " tensor(s) do not fit " + cfg.arch +
                    ":" + problems);
  net->eval();
  if (provenance) *provenance = prov;
  return net;
}

// Built on load_model, so that info accepts exactly the files eval accepts and reports
// the tensors as loaded, not as a header claims them.
ModelInfo read_model_info(const std::string& path) {
  ModelInfo info;
  const std::unique_ptr<Network> net = load_model(path, &info.provenance);
  info.config = net->config();
  for (auto& [name, t] : net->named_parameters()) {
    info.tensors.emplace_back("params/" + name, t->shape());
    info.num_parameters += t->numel();
  }
  for (auto& [name, t] : net->named_buffers())
    info.tensors.emplace_back("buffers/" + name, t->shape());
  std::sort(info.tensors.begin(), info.tensors.end());
  return info;
}

}  // namespace ipg
