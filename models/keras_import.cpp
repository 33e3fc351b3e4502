// Keras HDF5 weight import: see keras_import.h for the file layouts and matching rules.
#include "models/keras_import.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/hdf5.h"
#include "models/model_file.h"

namespace ipg {
namespace {

// One of our layers: the parameters and buffers that share a module path.
struct Slot {
  enum Kind { Conv, Dense, BatchNorm } kind = Conv;
  std::string path;                // "conv2/block1/0_conv"
  std::string keras_name;          // "conv2_block1_0_conv"
  std::vector<std::string> roles;  // Keras weight roles, in Keras's own order
  std::vector<Tensor*> tensors;    // ours, same order as roles
};

// One Keras layer that carries weights.
struct Layer {
  std::string name;  // as listed in layer_names
  std::string path;  // "/model_weights/fc1"
  std::vector<std::string> weight_names;
  std::vector<h5::Dataset> datasets;
};

std::string join_path(const std::string& root, const std::string& name) {
  return root == "/" ? "/" + name : root + "/" + name;
}

std::string kind_name(Slot::Kind k) {
  return k == Slot::Conv ? "Conv2D" : k == Slot::Dense ? "Dense" : "BatchNormalization";
}

// "conv1_conv/kernel:0" -> "kernel"; Keras 1 names such as "dense_1_W" give no known role
// and are then taken by position.
std::string role_of(const std::string& weight_name) {
  std::string s = weight_name.substr(weight_name.rfind('/') + 1);
  return s.substr(0, s.find(':'));
}

// Groups our parameters and buffers by module path, in registration order, and names the
// Keras weights each module corresponds to.
std::vector<Slot> slots_of(Network& net) {
  std::vector<Slot> slots;
  std::map<std::string, size_t> index;
  std::map<std::string, std::map<std::string, Tensor*>> leaves;
  auto add = [&](const std::vector<nn::NamedTensor>& named) {
    for (const auto& [name, t] : named) {
      const auto slash = name.rfind('/');
      const std::string module = slash == std::string::npos ? "" : name.substr(0, slash);
      if (!index.count(module)) {
        index[module] = slots.size();
        slots.emplace_back();
        slots.back().path = module;
      }
      leaves[module][name.substr(slash + 1)] = t;
    }
  };
  add(net.named_parameters());
  add(net.named_buffers());
  for (Slot& s : slots) {
    auto& l = leaves[s.path];
    s.keras_name = s.path;
    std::replace(s.keras_name.begin(), s.keras_name.end(), '/', '_');
    if (l.count("running_mean")) {
      s.kind = Slot::BatchNorm;
      s.roles = {"gamma", "beta", "moving_mean", "moving_variance"};
      s.tensors = {l["weight"], l["bias"], l["running_mean"], l["running_var"]};
    } else {
      s.kind = l.at("weight")->ndim() == 4 ? Slot::Conv : Slot::Dense;
      s.roles = {"kernel"};
      s.tensors = {l.at("weight")};
      if (l.count("bias")) {
        s.roles.push_back("bias");
        s.tensors.push_back(l["bias"]);
      }
    }
    if (s.tensors.size() != l.size())
      throw std::logic_error("keras import: module '" + s.path + "' has tensors it cannot map");
  }
  return slots;
}

// The shape Keras stores for our tensor: HWIO kernels, [in, out] dense kernels.
Shape keras_shape(const Slot& s, size_t i) {
  const Shape& o = s.tensors[i]->shape();
  if (i != 0 || s.kind == Slot::BatchNorm) return o;
  if (s.kind == Slot::Conv) return {o[2], o[3], o[1], o[0]};
  return {o[1], o[0]};
}

// The last feature map of the networks whose head flattens it, as the architectures
// compute it (VGG skips a pool once the map is 1 pixel wide).
void vgg_map(int64_t* h, int64_t* w) {
  for (int i = 0; i < 5; ++i)
    if (*h >= 2 && *w >= 2) *h /= 2, *w /= 2;
}
int64_t lenet_side(int64_t s) { return (s / 2 - 4) / 2; }

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
                      "channels, the first Conv2D kernel has " + std::to_string(cfg.in_channels));
    cfg.mean.resize(3);
    cfg.std.assign(3, 1.f / 255.f);
    for (int c = 0; c < 3; ++c) cfg.mean[c] = kCaffeMeanBgr[2 - c] / 255.f;
  } else if (opt.preprocess != "none") {
    throw std::invalid_argument("unknown Keras preprocessing '" + opt.preprocess +
                                "' (known: caffe, none)");
  }
  return cfg;
}

// Which of the layer's datasets holds each of the slot's roles: by role name when every
// weight name carries a distinct expected role, else in Keras's fixed order.
std::vector<size_t> assign_roles(const Slot& s, const Layer& l, const std::string& file) {
  if (l.weight_names.size() != s.roles.size()) {
    std::string listed, expected;
    for (const auto& w : l.weight_names) listed += (listed.empty() ? "" : ", ") + w;
    for (const auto& r : s.roles) expected += (expected.empty() ? "" : ", ") + r;
    throw FileError(file + ": " + l.path + ": has " + std::to_string(l.weight_names.size()) +
                    " weights (" + listed + "), our " + kind_name(s.kind) + " '" + s.path +
                    "' takes " + std::to_string(s.roles.size()) + " (" + expected + ")");
  }
  std::vector<size_t> order(s.roles.size());
  std::set<size_t> used;
  for (size_t i = 0; i < s.roles.size(); ++i) {
    const auto it = std::find_if(l.weight_names.begin(), l.weight_names.end(),
                                 [&](const std::string& w) { return role_of(w) == s.roles[i]; });
    if (it == l.weight_names.end()) break;
    order[i] = static_cast<size_t>(it - l.weight_names.begin());
    used.insert(order[i]);
  }
  if (used.size() == s.roles.size()) return order;
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  return order;
}

// Copies one Keras layer into our slot, checking shapes and values.
// `flatten` = {C, H, W} of the map a Dense layer's input was flattened from (NHWC in Keras),
// or empty; `reverse_input` reverses a Conv2D's input channels (the 'caffe' fold).
void load_layer(const Slot& s, const Layer& l, const std::vector<int64_t>& flatten,
                bool reverse_input, const std::string& file) {
  const std::vector<size_t> order = assign_roles(s, l, file);
  for (size_t i = 0; i < s.roles.size(); ++i) {
    const h5::Dataset& d = l.datasets[order[i]];
    const std::string where = file + ": " + d.path() + ": ";
    const Shape want = keras_shape(s, i);
    Shape got;
    const std::vector<float> v = d.read_floats(&got);
    if (got != want)
      throw FileError(where + "shape " + shape_str(got) + ", but " + kind_name(s.kind) + " '" +
                      s.path + "' needs " + shape_str(want) + " (Keras layout)");
    for (float x : v)
      if (!std::isfinite(x)) throw FileError(where + "holds NaN or Inf");
    Tensor& t = *s.tensors[i];
    float* dst = t.data();
    if (i != 0 || s.kind == Slot::BatchNorm) {
      std::copy(v.begin(), v.end(), dst);
    } else if (s.kind == Slot::Conv) {
      // HWIO [kh, kw, ci, co] -> OIHW [co, ci, kh, kw].
      const int64_t kh = got[0], kw = got[1], ci = got[2], co = got[3];
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          for (int64_t c = 0; c < ci; ++c) {
            const int64_t cc = reverse_input ? ci - 1 - c : c;
            for (int64_t o = 0; o < co; ++o)
              dst[((o * ci + cc) * kh + y) * kw + x] = v[((y * kw + x) * ci + c) * co + o];
          }
    } else {
      // [in, out] -> [out, in]; Keras's row (h * W + w) * C + c is our column
      // (c * H + h) * W + w when the input is a flattened map.
      const int64_t in = got[0], out = got[1];
      const int64_t C = flatten.empty() ? in : flatten[0];
      const int64_t H = flatten.empty() ? 1 : flatten[1], W = flatten.empty() ? 1 : flatten[2];
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t row = (h * W + w) * C + c, col = (c * H + h) * W + w;
            for (int64_t o = 0; o < out; ++o) dst[o * in + col] = v[row * out + o];
          }
    }
  }
}

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
