// One model from a recipe (models/recipe.h): build or load the network, modify it or
// compute its teacher's labels, train, measure, save; and the weight digests the zoo
// compares models by.
#include "models/recipe.h"
#include "engine/number_text.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "engine/hdf5.h"
#include "engine/sha256.h"
#include "models/forest_file.h"
#include "models/onnx_model.h"

namespace ipg {

Dataset first_rows(const Dataset& d, int64_t limit) {
  if (limit <= 0 || limit >= d.size()) return d;
  Dataset h = d;
  h.images = d.images.narrow0(0, limit);
  h.labels = d.labels.narrow0(0, limit);
  return h;
}

void channel_stats(const Dataset& d, std::vector<float>* mean, std::vector<float>* stdev) {
  const int64_t n = d.images.dim(0), c = d.images.dim(1), hw = d.images.dim(2) * d.images.dim(3);
  const float* p = d.images.data();
  mean->assign(c, 0.f);
  stdev->assign(c, 1.f);
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const double v = p[(i * c + ch) * hw + k];
        s += v;
        s2 += v * v;
      }
    const double cnt = double(n) * double(hw), m = s / cnt;
    (*mean)[ch] = static_cast<float>(m);
    (*stdev)[ch] = static_cast<float>(std::sqrt(std::max(1e-12, s2 / cnt - m * m)));
  }
}

std::unique_ptr<Network> fresh_network(const std::string& arch, const Dataset& train_set,
                                       uint64_t seed, int classes) {
  ModelConfig cfg;
  cfg.arch = arch;
  cfg.in_channels = static_cast<int>(train_set.images.dim(1));
  cfg.height = static_cast<int>(train_set.images.dim(2));
  cfg.width = static_cast<int>(train_set.images.dim(3));
  cfg.classes = classes > 0 ? classes : train_set.num_classes;
  cfg.seed = seed;
  channel_stats(train_set, &cfg.mean, &cfg.std);
  return make_network(cfg);
}

namespace {

// A network file (init or teacher) must take the dataset's images.
std::unique_ptr<Network> load_for(const std::string& path, const Dataset& train_set) {
  auto net = load_model(path);
  const ModelConfig& c = net->config();
  if (c.in_channels != train_set.images.dim(1) || c.height != train_set.images.dim(2) ||
      c.width != train_set.images.dim(3))
    throw std::invalid_argument("train: " + path + " takes " + std::to_string(c.in_channels) +
                                "x" + std::to_string(c.height) + "x" + std::to_string(c.width) +
                                " input, " + train_set.name + " has " +
                                shape_str(train_set.images.shape()));
  return net;
}

}  // namespace

void check_recipe_files(const ModelRecipe& r) {
  auto kind = [](const std::string& path) -> std::string {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return "";  // missing: the loader says so
    try {
      if (is_onnx_file(path)) return "onnx";
      if (is_forest_file(path)) return "rf";
    } catch (const std::exception&) {  // unreadable: the loader says why
    }
    return "";
  };
  if (!r.init.empty()) {
    const std::string k = kind(r.init);
    if (k == "onnx")
      throw FileError(r.init + ": an ONNX model cannot be trained or post-processed (it is " +
                      "for extraction and verification)");
    if (k == "rf")
      throw FileError(r.init + ": a random forest cannot be trained further or post-processed " +
                      "(it has no gradients; train --arch rf fits a new one)");
  }
  if (!r.teacher.empty() && kind(r.teacher) == "rf")
    throw FileError(r.teacher + ": a random forest cannot be extracted (distill and label-only " +
                    "learn from a network)");
}

PreparedModel prepare_model(const ModelRecipe& r, const Dataset& train_set, Device device) {
  check_recipe_files(r);
  const int sources = int(!r.init.empty()) + int(!r.teacher.empty() || r.extraction.has_value());
  if (sources > 1 || (!r.init.empty() && !r.arch.empty()))
    throw std::invalid_argument("recipe: give one of a fresh arch, an init file, a teacher");
  if (r.init.empty() && r.arch.empty())
    throw std::invalid_argument("recipe: no architecture and no init file");
  if (r.extraction.has_value() != !r.teacher.empty())
    throw std::invalid_argument("recipe: an extraction needs a teacher file, and the reverse");
  PreparedModel m;
  m.opt = r.opt;
  m.opt.seed = r.seed;
  m.opt.device = device;
  m.opt.augment = r.augment == "on" || (r.augment == "auto" && r.data.rfind("cifar", 0) == 0);
  m.train_set = train_set;
  if (r.arch == "rf") return m;  // fitted in train_prepared

  std::string post;  // what was done, for the recipe
  if (!r.init.empty()) {
    m.net = load_for(r.init, train_set);
    m.from_file = true;
    post = apply_modifications(*m.net, r.mods, r.seed, &m.opt);
  } else if (r.extraction) {
    auto teacher = load_for(r.teacher, train_set);
    m.net = fresh_network(r.arch, train_set, r.seed, teacher->num_classes());
    // Both train on the teacher's labels: the hard labels for label-only, and for
    // distillation only the reported train accuracy (agreement with the teacher) uses them.
    m.train_set = teacher_labelled(*teacher, train_set, device);
    if (*r.extraction == Extraction::Distill) {
      m.opt.soft_targets = soft_targets(*teacher, train_set.images, r.temperature, device);
      m.opt.temperature = r.temperature;
    }
  } else {
    // A fresh network, modified too when asked (`train --arch A --prune-weights P`).
    m.net = fresh_network(r.arch, train_set, r.seed);
    post = apply_modifications(*m.net, r.mods, r.seed, &m.opt);
  }
  if (m.opt.augment)
    post += ", crop+flip augmentation (pad " + std::to_string(m.opt.crop_pad) + ")";
  if (!r.init.empty()) post = ", from " + r.init + post;
  if (r.extraction == Extraction::Distill)
    post = ", distilled from " + r.teacher + " at temperature " + number_text(r.temperature) +
           " (its soft labels of the training images; their own labels unused)" + post;
  if (r.extraction == Extraction::LabelOnly)
    post = ", label-only extraction of " + r.teacher +
           " (its labels of the training images; their own labels unused)" + post;
  const TrainOptions& o = m.opt;
  m.recipe = o.optimizer + " lr " + number_text(o.lr) + " " + o.schedule + ", batch " +
             std::to_string(o.batch) + ", weight decay " + number_text(o.weight_decay) +
             (r.limit > 0 ? ", first " + std::to_string(r.limit) + " images" : "") + post;
  return m;
}

MadeModel train_prepared(PreparedModel&& m, const ModelRecipe& r, const Dataset& test,
                         const MakeCallbacks& callbacks) {
  MadeModel out;
  out.provenance.data = r.data;
  out.provenance.seed = static_cast<int64_t>(r.seed);
  if (r.arch == "rf") {
    ForestOptions fo = r.forest;
    fo.seed = r.seed;
    const auto t0 = std::chrono::steady_clock::now();
    out.forest = RandomForest::fit(m.train_set, fo, callbacks.trees);
    out.fit_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.provenance.accuracy = evaluate(*out.forest, test, Device::cpu());
    out.provenance.recipe =
        "random forest, " + std::to_string(fo.trees) + " trees, gini, bootstrap, " +
        "sqrt(features) per split" +
        (fo.max_depth > 0 ? ", depth <= " + std::to_string(fo.max_depth) : "");
    return out;
  }
  out.epochs = train(*m.net, m.train_set, &test, m.opt, callbacks.epoch, callbacks.batch);
  out.provenance.epochs = m.opt.epochs;
  out.provenance.accuracy = out.epochs.back().test_accuracy;
  out.provenance.recipe = m.recipe;
  out.net = std::move(m.net);
  return out;
}

MadeModel make_model(const ModelRecipe& r, const Dataset& train_set, const Dataset& test,
                     Device device, const MakeCallbacks& callbacks) {
  return train_prepared(prepare_model(r, train_set, device), r, test, callbacks);
}

void save_made_model(MadeModel& m, const std::string& path) {
  if (m.forest) {
    save_forest(*m.forest, path, m.provenance);
    return;
  }
  if (!m.net) throw std::invalid_argument("save_made_model: no model");
  m.net->to(Device::cpu());
  save_model(*m.net, path, m.provenance);
}

namespace {

void hash_tensor(Sha256& h, const std::string& kind, const std::string& name, const Tensor& t) {
  const std::string head = kind + ":" + name + ":" + shape_str(t.shape()) + "\n";
  h.update(head.data(), head.size());
  if (t.dtype() == DType::I32) {
    const std::vector<int32_t> v = t.to_vector_i32();
    h.update(v.data(), v.size() * sizeof(int32_t));
  } else {
    const std::vector<float> v = t.to_vector();
    h.update(v.data(), v.size() * sizeof(float));
  }
}

template <class T>
void hash_array(Sha256& h, const std::string& name, const std::vector<T>& v) {
  const std::string head = name + ":" + std::to_string(v.size()) + "\n";
  h.update(head.data(), head.size());
  h.update(v.data(), v.size() * sizeof(T));
}

}  // namespace

std::string weights_sha256(Network& net) {
  Sha256 h;
  // The configuration too: the input normalization is part of the function, not a tensor.
  const ModelConfig& c = net.config();
  std::string head = "arch:" + c.arch + "\n" + std::to_string(c.in_channels) + "x" +
                     std::to_string(c.height) + "x" + std::to_string(c.width) + " " +
                     std::to_string(c.classes) + "\n";
  h.update(head.data(), head.size());
  hash_array(h, "mean", c.mean);
  hash_array(h, "std", c.std);
  for (auto& [name, t] : net.named_parameters()) hash_tensor(h, "param", name, *t);
  for (auto& [name, t] : net.named_buffers()) hash_tensor(h, "buffer", name, *t);
  return h.hex();
}

std::string weights_sha256(const RandomForest& forest) {
  const ForestArrays& a = forest.arrays();
  Sha256 h;
  const std::string head = "arch:rf\n" + std::to_string(a.in_channels) + "x" +
                           std::to_string(a.height) + "x" + std::to_string(a.width) + " " +
                           std::to_string(a.classes) + "\n";
  h.update(head.data(), head.size());
  hash_array(h, "feature", a.feature);
  hash_array(h, "threshold", a.threshold);
  hash_array(h, "left", a.left);
  hash_array(h, "right", a.right);
  hash_array(h, "value", a.value);
  hash_array(h, "tree_offsets", a.tree_offsets);
  return h.hex();
}

std::string weights_sha256_file(const std::string& path) {
  if (is_forest_file(path)) return weights_sha256(*load_forest(path));
  return weights_sha256(*load_model(path));
}

}  // namespace ipg
