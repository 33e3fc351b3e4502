// Reading a Keras weights file (models/keras_import.h): its root, the layers that carry
// weights and their datasets, and our ModelConfig inferred from their shapes.
#include <cmath>
#include <set>
#include <stdexcept>

#include "engine/hdf5.h"
#include "models/keras_internal.h"
#include "models/model_file.h"

namespace ipg::keras_detail {

std::string join_path(const std::string& root, const std::string& name) {
  return root == "/" ? "/" + name : root + "/" + name;
}

// The file's root: "/" for save_weights, "/model_weights" for model.save.
h5::Group keras_root(const h5::File& f, const std::string& path) {
  auto is_keras = [](const h5::Group& g) {
    return g.has_attr("layer_names") || g.has_attr("layer_names0");
  };
  if (is_keras(f)) return f;
  if (f.is_group("model_weights")) {
    h5::Group g = f.group("model_weights");
    if (is_keras(g)) return g;
  }
  throw FileError(path +
                  ": /: not a Keras weights file (no layer_names attribute at / or "
                  "/model_weights)");
}

std::vector<Layer> read_layers(const h5::Group& root, const std::string& file) {
  std::vector<Layer> layers;
  std::set<std::string> seen;
  for (const std::string& name : root.attr_strings_chunked("layer_names")) {
    const std::string lpath = join_path(root.path(), name);
    if (!seen.insert(name).second)
      throw FileError(file + ": " + lpath + ": layer listed twice in layer_names");
    if (!root.is_group(name))
      throw FileError(file + ": " + lpath + ": layer listed in layer_names has no group");
    const h5::Group g = root.group(name);
    Layer l;
    l.name = name;
    l.path = lpath;
    l.weight_names = g.attr_strings_chunked("weight_names");
    if (l.weight_names.empty()) continue;  // InputLayer, ReLU, pooling, Flatten, Add...
    // Keras resolves weight names relative to the layer's group.
    for (const std::string& w : l.weight_names) l.datasets.push_back(g.dataset(w));
    layers.push_back(std::move(l));
  }
  return layers;
}

// Our configuration from the file: input channels from the first Conv2D kernel, classes
// from the last Dense kernel, and the input size where the head pins it.
ModelConfig config_from(const std::vector<Layer>& layers, const KerasImportOptions& opt,
                        const std::string& file) {
  ModelConfig cfg;
  cfg.arch = opt.arch == "vgg16" ? "vgg16-imagenet" : opt.arch;
  Shape first_conv, first_dense, last_dense;  // empty: none seen yet
  std::string first_dense_path;
  for (const Layer& l : layers) {
    for (const h5::Dataset& d : l.datasets) {
      const Shape s = d.shape();
      if (s.size() == 4 && first_conv.empty()) first_conv = s;
      if (s.size() == 2) {
        last_dense = s;
        if (first_dense.empty()) {
          first_dense = s;
          first_dense_path = l.path;
        }
      }
    }
  }
  if (first_conv.empty() || last_dense.empty())
    throw FileError(file + ": " + (layers.empty() ? "/" : layers[0].path) +
                    ": no Conv2D kernel or no Dense kernel among the layers with weights; " +
                    "not a " + cfg.arch + " file");
  // Counts past int's range would wrap in the cast (2^31 outputs read as -2^31): said as read.
  if (first_conv[2] > 64 || last_dense[1] > 100000)
    throw FileError(file + ": implausible " + std::to_string(first_conv[2]) +
                    " input channels (first Conv2D kernel) or " + std::to_string(last_dense[1]) +
                    " classes (last Dense kernel)");
  cfg.in_channels = static_cast<int>(first_conv[2]);
  cfg.classes = static_cast<int>(last_dense[1]);
  cfg.height = opt.height;
  cfg.width = opt.width;
  if (cfg.height <= 0 || cfg.width <= 0) {
    // Invert the head's geometry: the first Dense kernel has C * side^2 rows.
    int64_t channels = 0;
    if (cfg.arch == "vgg16-imagenet") channels = 512;
    if (cfg.arch == "lenet5") channels = 16;
    int64_t side = 224;
    if (channels > 0) {
      const int64_t rows = first_dense[0];
      const auto g = static_cast<int64_t>(std::llround(std::sqrt(double(rows) / channels)));
      if (g < 1 || g * g * channels != rows)
        throw FileError(file + ": " + first_dense_path + ": kernel has " + std::to_string(rows) +
                        " rows, not " + std::to_string(channels) +
                        " x side^2; give the input size");
      side = cfg.arch == "lenet5" ? 4 * g + 8 : 32 * g;
    }
    cfg.height = cfg.width = static_cast<int>(side);
  }
  // The 'caffe' fold. Keras feeds the network k[j] = 255 * x[2 - j] - M[j] for j = B, G, R
  // (M = kCaffeMeanBgr) where x is [0,1] RGB. We compute n[c] = (x[c] - mean[c]) / std[c];
  // with std[c] = 1/255 and mean[c] = M[2 - c] / 255 this is n[c] = 255 x[c] - M[2 - c] =
  // k[2 - c]: Keras's input with its channels reversed. So the first convolution's input
  // channels are reversed too (load_weights below), and conv(n) with reversed weights is
  // exactly Keras's conv(k).
  if (opt.preprocess == "caffe") {
    if (cfg.in_channels != 3)
      throw FileError(file + ": " + layers[0].path + ": 'caffe' preprocessing needs 3 input " +
                      "channels, the first Conv2D kernel has " + std::to_string(cfg.in_channels) +
                      " (a model whose inputs are [0,1] pixels: --preprocess none)");
    cfg.mean.resize(3);
    cfg.std.assign(3, 1.f / 255.f);
    for (int c = 0; c < 3; ++c) cfg.mean[c] = kCaffeMeanBgr[2 - c] / 255.f;
  } else if (opt.preprocess != "none") {
    throw std::invalid_argument("unknown Keras preprocessing '" + opt.preprocess +
                                "' (known: caffe, none)");
  }
  return cfg;
}

}  // namespace ipg::keras_detail
