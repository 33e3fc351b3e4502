// Keras HDF5 weight import: see keras_import.h for the file layouts and matching rules.
// Reading the file is keras_file.cpp's, our modules and the copying keras_weights.cpp's;
// this file matches the file's layers to ours and loads them in order.
#include "models/keras_import.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/hdf5.h"
#include "models/keras_internal.h"
#include "models/model_file.h"

namespace ipg {

using namespace keras_detail;

namespace {

// The last feature map of the networks whose head flattens it, as the architectures
// compute it (VGG skips a pool once the map is 1 pixel wide).
void vgg_map(int64_t* h, int64_t* w) {
  for (int i = 0; i < 5; ++i)
    if (*h >= 2 && *w >= 2) *h /= 2, *w /= 2;
}
int64_t lenet_side(int64_t s) { return (s / 2 - 4) / 2; }

}  // namespace

std::unique_ptr<Network> import_keras(const std::string& path, const KerasImportOptions& opt,
                                      KerasImportSummary* summary) {
  const std::string arch = opt.arch == "vgg16" ? "vgg16-imagenet" : opt.arch;
  if (arch != "resnet50" && arch != "vgg16-imagenet" && arch != "lenet5")
    throw std::invalid_argument("Keras import: unknown architecture '" + opt.arch +
                                "' (known: resnet50, vgg16, lenet5)");
  const h5::File f(path);
  const h5::Group root = keras_root(f, path);
  const std::vector<Layer> layers = read_layers(root, path);
  const ModelConfig cfg = config_from(layers, opt, path);
  std::unique_ptr<Network> net;
  try {
    net = make_network(cfg);
  } catch (const std::invalid_argument& e) {
    throw FileError(path + ": " + root.path() + ": " + e.what());
  }
  const std::vector<Slot> slots = slots_of(*net);

  // By name when any of our layers' Keras names is in the file; else by position.
  std::map<std::string, const Layer*> by_name;
  for (const Layer& l : layers) by_name[l.name] = &l;
  const bool named = std::any_of(slots.begin(), slots.end(),
                                 [&](const Slot& s) { return by_name.count(s.keras_name) > 0; });
  // keras_applications <= 1.0.8 (Keras 2.2) named ResNet50 res2a_branch2a, bn_conv1, ...
  // and used BatchNormalization's default epsilon 1e-3, which our resnet50 (1.001e-5, the
  // tf.keras layout) does not model: refuse rather than give slightly wrong logits.
  if (cfg.arch == "resnet50" && !named && by_name.count("bn_conv1"))
    throw FileError(path + ": " + by_name["bn_conv1"]->path +
                    ": the Keras 2.2 ResNet50 layout (bn_conv1, res2a_branch2a, ..., BN epsilon "
                    "1e-3) is not supported; re-save the model with tf.keras's ResNet50 "
                    "(conv1_bn, conv2_block1_1_conv, ...)");
  std::vector<const Layer*> match(slots.size(), nullptr);
  if (named) {
    std::set<std::string> used;
    for (size_t i = 0; i < slots.size(); ++i) {
      const auto it = by_name.find(slots[i].keras_name);
      if (it == by_name.end())
        throw FileError(path + ": " + join_path(root.path(), slots[i].keras_name) + ": layer '" +
                        slots[i].keras_name + "' (" + cfg.arch + " " + kind_name(slots[i].kind) +
                        " '" + slots[i].path + "') not found in layer_names");
      match[i] = it->second;
      used.insert(it->first);
    }
    for (const Layer& l : layers)
      if (!used.count(l.name))
        throw FileError(path + ": " + l.path + ": layer '" + l.name + "' has weights but " +
                        cfg.arch + " has no such layer");
  } else {
    for (size_t i = 0; i < std::max(slots.size(), layers.size()); ++i) {
      if (i >= layers.size())
        throw FileError(path + ": " + root.path() + ": only " + std::to_string(layers.size()) +
                        " layers with weights; no layer for " + cfg.arch + " " +
                        kind_name(slots[i].kind) + " '" + slots[i].path + "' (by position)");
      if (i >= slots.size())
        throw FileError(path + ": " + layers[i].path + ": layer '" + layers[i].name +
                        "' has weights but " + cfg.arch + " has only " +
                        std::to_string(slots.size()) + " layers (by position)");
      match[i] = &layers[i];
    }
  }

  bool first_conv = true, seen_dense = false;
  int64_t last_channels = cfg.in_channels;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    std::vector<int64_t> flatten;
    if (s.kind == Slot::Dense && !seen_dense) {
      seen_dense = true;
      const int64_t in = s.tensors[0]->dim(1);
      if (in != last_channels) {
        // The first Dense after the convolutions reads a flattened C x H x W map.
        int64_t h = 0, w = 0;
        if (cfg.arch == "vgg16-imagenet") {
          h = cfg.height, w = cfg.width;
          vgg_map(&h, &w);
        } else if (cfg.arch == "lenet5") {
          h = lenet_side(cfg.height), w = lenet_side(cfg.width);
        }
        if (h * w * last_channels != in)
          throw std::logic_error("keras import: unknown flatten geometry for '" + s.path + "'");
        flatten = {last_channels, h, w};
      }
    }
    const bool reverse = s.kind == Slot::Conv && first_conv && opt.preprocess == "caffe";
    load_layer(s, *match[i], flatten, reverse, path);
    if (s.kind == Slot::Conv) {
      first_conv = false;
      last_channels = s.tensors[0]->dim(0);
    }
  }
  net->eval();
  if (summary) {
    summary->root = root.path();
    summary->by_name = named;
    summary->layers_loaded = static_cast<int>(slots.size());
    for (const h5::Group* g :
         {static_cast<const h5::Group*>(&root), static_cast<const h5::Group*>(&f)})
      if (g->has_attr("keras_version") && summary->keras_version.empty()) try {
          summary->keras_version = g->attr_string("keras_version");
        } catch (const FileError&) {
          // Informational only: an odd attribute type must not fail the import.
        }
  }
  return net;
}

KerasImportSummary convert_keras(const std::string& path, const KerasImportOptions& opt,
                                 const std::string& out) {
  KerasImportSummary summary;
  auto net = import_keras(path, opt, &summary);
  Provenance p;
  p.recipe = "imported from Keras file " + path + " (" + summary.root + ", matched " +
             (summary.by_name ? "by name" : "by position") + ", preprocessing '" + opt.preprocess +
             "' folded into mean/std and the first convolution" +
             (summary.keras_version.empty() ? "" : ", keras " + summary.keras_version) +
             "); logits are the last Dense layer's pre-softmax values";
  save_model(*net, out, p);
  return summary;
}

}  // namespace ipg
