// Random-forest model files over engine/hdf5.
#include "models/forest_file.h"

#include <limits>
#include <stdexcept>

#include "engine/hdf5.h"
#include "models/onnx_model.h"

namespace ipg {

namespace {

constexpr const char* kArch = "rf";

h5::Dataset forest_dataset(const h5::File& f, const std::string& name) {
  const std::string key = "forest/" + name;
  if (!f.is_dataset(key)) throw FileError(f.file() + ": /" + key + ": missing");
  return f.dataset(key);
}

// /forest/<name>, which must have exactly this type and shape.
template <typename T>
std::vector<T> read_array(const h5::File& f, const std::string& name, DType dtype,
                          const Shape& shape) {
  const Tensor t = forest_dataset(f, name).read(dtype, shape);
  const T* p = static_cast<const T*>(t.raw());
  return std::vector<T>(p, p + t.numel());
}

int positive_dimension(const std::string& path, const char* name, int v) {
  if (v <= 0 || v > (1 << 20))
    throw FileError(path + ": /: attribute " + name + " is " + std::to_string(v) +
                    ", not in [1, 2^20]");
  return v;
}

}  // namespace

ModelConfig forest_file_config(const ForestArrays& a) {
  ModelConfig cfg;
  cfg.arch = kArch;
  cfg.in_channels = a.in_channels;
  cfg.height = a.height;
  cfg.width = a.width;
  cfg.classes = a.classes;
  cfg.mean.assign(static_cast<size_t>(a.in_channels), 0.f);
  cfg.std.assign(static_cast<size_t>(a.in_channels), 1.f);
  return cfg;
}

void save_forest(const RandomForest& forest, const std::string& path, const Provenance& p) {
  const ForestArrays& a = forest.arrays();
  const ForestOptions& o = forest.options();
  h5::FileWriter w(path);
  write_model_attributes(w, forest_file_config(a), p);
  const int64_t nodes = forest.num_nodes();
  w.write("forest/feature", Tensor::from_vector_i32(a.feature, {nodes}));
  w.write("forest/threshold", Tensor::from_vector(a.threshold, {nodes}));
  w.write("forest/left", Tensor::from_vector_i32(a.left, {nodes}));
  w.write("forest/right", Tensor::from_vector_i32(a.right, {nodes}));
  w.write("forest/value", Tensor::from_vector(a.value, {nodes, a.classes}));
  w.write("forest/tree_offsets", Tensor::from_vector_i32(a.tree_offsets, {forest.num_trees() + 1}));
  h5::Group g = w.group("forest");
  g.set_attr_int("trees", forest.num_trees());
  g.set_attr_int("max_depth", o.max_depth);
  g.set_attr_int("min_samples_split", o.min_samples_split);
  g.set_attr_int("min_samples_leaf", o.min_samples_leaf);
  g.set_attr_int("max_features", o.max_features);
  g.set_attr_int("bootstrap", o.bootstrap ? 1 : 0);
  g.set_attr_int("seed", static_cast<int64_t>(o.seed));
  w.commit();
}

std::unique_ptr<RandomForest> load_forest(const std::string& path, Provenance* provenance) {
  const h5::File f(path);
  const ModelConfig cfg = read_model_attributes(f);
  const Provenance prov = read_provenance(f);  // checked even when the caller does not ask
  if (cfg.arch != kArch)
    throw FileError(path + ": arch is '" + cfg.arch + "', not a random forest ('" + kArch + "')");

  ForestArrays a;
  a.in_channels = positive_dimension(path, "in_channels", cfg.in_channels);
  a.height = positive_dimension(path, "height", cfg.height);
  a.width = positive_dimension(path, "width", cfg.width);
  a.classes = positive_dimension(path, "classes", cfg.classes);
  // Every shape follows from /forest/feature's length and the classes attribute.
  const Shape feature_shape = forest_dataset(f, "feature").shape();
  const Shape offsets_shape = forest_dataset(f, "tree_offsets").shape();
  if (feature_shape.size() != 1 || feature_shape[0] < 1 ||
      feature_shape[0] > std::numeric_limits<int32_t>::max())
    throw FileError(path + ": /forest/feature: shape " + shape_str(feature_shape) +
                    " is not [nodes] with 1 <= nodes < 2^31");
  const int64_t nodes = feature_shape[0];
  if (offsets_shape.size() != 1 || offsets_shape[0] < 2 || offsets_shape[0] > nodes + 1)
    throw FileError(path + ": /forest/tree_offsets: shape " + shape_str(offsets_shape) +
                    " is not [trees + 1] with 1 <= trees <= nodes (" + std::to_string(nodes) + ")");
  a.feature = read_array<int32_t>(f, "feature", DType::I32, {nodes});
  a.threshold = read_array<float>(f, "threshold", DType::F32, {nodes});
  a.left = read_array<int32_t>(f, "left", DType::I32, {nodes});
  a.right = read_array<int32_t>(f, "right", DType::I32, {nodes});
  a.value = read_array<float>(f, "value", DType::F32, {nodes, a.classes});
  a.tree_offsets = read_array<int32_t>(f, "tree_offsets", DType::I32, offsets_shape);

  ForestOptions o;
  const h5::Group g = f.group("forest");
  auto opt = [&g](const char* name, int64_t fallback) {
    return g.has_attr(name) ? g.scalar_int(name) : fallback;
  };
  o.trees = static_cast<int>(a.tree_offsets.size()) - 1;
  o.max_depth = static_cast<int>(opt("max_depth", o.max_depth));
  o.min_samples_split = static_cast<int>(opt("min_samples_split", o.min_samples_split));
  o.min_samples_leaf = static_cast<int>(opt("min_samples_leaf", o.min_samples_leaf));
  o.max_features = static_cast<int>(opt("max_features", o.max_features));
  o.bootstrap = opt("bootstrap", 1) != 0;
  o.seed = static_cast<uint64_t>(opt("seed", 0));

  const std::string problem = forest_problem(a);
  if (!problem.empty()) throw FileError(path + ": " + problem);
  auto forest = std::make_unique<RandomForest>(std::move(a), o);
  if (provenance) *provenance = prov;
  return forest;
}

bool is_forest_file(const std::string& path) {
  if (is_onnx_file(path)) return false;  // not HDF5: an ONNX network (models/onnx_model.h)
  const h5::File f(path);
  return f.has_attr("format") && f.attr_string("format") == kModelFormat && f.has_attr("arch") &&
         f.attr_string("arch") == kArch;
}

}  // namespace ipg
