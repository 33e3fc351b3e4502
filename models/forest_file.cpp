// Random-forest model files over engine/hdf5.
#include "models/forest_file.h"

#include <limits>
#include <stdexcept>

#include "engine/hdf5.h"

namespace ipg {

namespace {

constexpr const char* kFormat = "ipguard-model";
constexpr int64_t kVersion = 1;
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

int read_positive_int(const h5::File& f, const char* name) {
  const int64_t v = f.attr_int(name);
  if (v <= 0 || v > (int64_t{1} << 20))
    throw FileError(f.file() + ": /: attribute " + name + " is " + std::to_string(v) +
                    ", not in [1, 2^20]");
  return static_cast<int>(v);
}

}  // namespace

void save_forest(const RandomForest& forest, const std::string& path, const Provenance& p) {
  const ForestArrays& a = forest.arrays();
  const ForestOptions& o = forest.options();
  h5::FileWriter w(path);
  w.set_attr_string("format", kFormat);
  w.set_attr_int("version", kVersion);
  w.set_attr_string("arch", kArch);
  w.set_attr_int("in_channels", a.in_channels);
  w.set_attr_int("height", a.height);
  w.set_attr_int("width", a.width);
  w.set_attr_int("classes", a.classes);
  w.set_attr_floats("mean", std::vector<float>(static_cast<size_t>(a.in_channels), 0.f));
  w.set_attr_floats("std", std::vector<float>(static_cast<size_t>(a.in_channels), 1.f));
  if (!p.data.empty()) w.set_attr_string("data", p.data);
  if (p.seed >= 0) w.set_attr_int("seed", p.seed);
  if (p.epochs >= 0) w.set_attr_int("epochs", p.epochs);
  if (p.accuracy >= 0) w.set_attr_double("accuracy", p.accuracy);
  if (!p.recipe.empty()) w.set_attr_string("recipe", p.recipe);

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
  if (!f.has_attr("format") || f.attr_string("format") != kFormat)
    throw FileError(path + ": not an ipguard model file (attribute format is not '" +
                    std::string(kFormat) + "')");
  const int64_t version = f.attr_int("version");
  if (version != kVersion)
    throw FileError(path + ": model file version " + std::to_string(version) +
                    " is not supported (this build reads version " + std::to_string(kVersion) +
                    ")");
  const std::string arch = f.attr_string("arch");
  if (arch != kArch)
    throw FileError(path + ": arch is '" + arch + "', not a random forest ('" + kArch + "')");

  ForestArrays a;
  a.in_channels = read_positive_int(f, "in_channels");
  a.height = read_positive_int(f, "height");
  a.width = read_positive_int(f, "width");
  a.classes = read_positive_int(f, "classes");
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
    return g.has_attr(name) ? g.attr_int(name) : fallback;
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
  if (provenance) {
    Provenance p;
    if (f.has_attr("data")) p.data = f.attr_string("data");
    if (f.has_attr("seed")) p.seed = f.attr_int("seed");
    if (f.has_attr("epochs")) p.epochs = f.attr_int("epochs");
    if (f.has_attr("accuracy")) p.accuracy = f.attr_double("accuracy");
    if (f.has_attr("recipe")) p.recipe = f.attr_string("recipe");
    *provenance = p;
  }
  return forest;
}

bool is_forest_file(const std::string& path) {
  const h5::File f(path);
  return f.has_attr("format") && f.attr_string("format") == kFormat && f.has_attr("arch") &&
         f.attr_string("arch") == kArch;
}

}  // namespace ipg
