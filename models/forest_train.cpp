// Random forest training: RandomForest::fit checks its options and data, bins the
// features (forest_binning.cpp), grows the trees (forest_tree.cpp) and flattens them into
// ForestArrays in tree order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/forest.h"
#include "models/forest_internal.h"

namespace ipg {

using namespace forest_detail;

namespace {

void check_options(const ForestOptions& o) {
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("RandomForest::fit: " + what);
  };
  if (o.trees < 1) bad("trees must be at least 1, got " + std::to_string(o.trees));
  if (o.max_depth < 0)
    bad("max_depth must be >= 0 (0: unlimited), got " + std::to_string(o.max_depth));
  if (o.min_samples_split < 2)
    bad("min_samples_split must be at least 2, got " + std::to_string(o.min_samples_split));
  if (o.min_samples_leaf < 1)
    bad("min_samples_leaf must be at least 1, got " + std::to_string(o.min_samples_leaf));
  if (o.max_features < 0)
    bad("max_features must be >= 0 (0: sqrt), got " + std::to_string(o.max_features));
}

}  // namespace

std::unique_ptr<RandomForest> RandomForest::fit(const Dataset& train, const ForestOptions& options,
                                                ProgressCallback progress) {
  check_options(options);
  const Tensor& x = train.images;
  const Tensor& y = train.labels;
  if (!x.defined() || !y.defined() || x.ndim() != 4 || x.dtype() != DType::F32 ||
      y.dtype() != DType::I32 || y.ndim() != 1 || y.dim(0) != x.dim(0) || !x.device().is_cpu() ||
      !y.device().is_cpu())
    throw std::invalid_argument(
        "RandomForest::fit: needs float32 [n, c, h, w] images and int32 [n] labels on the CPU");
  const int64_t n = x.dim(0), features = x.numel() / std::max<int64_t>(n, 1);
  if (n == 0 || features == 0)
    throw std::invalid_argument("RandomForest::fit: " + train.name + " is empty");
  if (n > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("RandomForest::fit: more than 2^31 - 1 images");
  if (train.num_classes <= 0)
    throw std::invalid_argument("RandomForest::fit: " + train.name + " has no classes");
  const int32_t* labels = y.data_i32();
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= train.num_classes)
      throw std::invalid_argument("RandomForest::fit: label " + std::to_string(labels[i]) +
                                  " of image " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(train.num_classes) + ")");

  const Binned binned = bin_features(x.data(), n, features);
  const int64_t max_features =
      options.max_features > 0
          ? std::min<int64_t>(options.max_features, features)
          : std::max<int64_t>(1, static_cast<int64_t>(std::sqrt(static_cast<double>(features))));
  std::vector<Tree> trees =
      grow_trees(binned, labels, train.num_classes, options, max_features, progress);

  ForestArrays a;
  a.in_channels = static_cast<int>(x.dim(1));
  a.height = static_cast<int>(x.dim(2));
  a.width = static_cast<int>(x.dim(3));
  a.classes = train.num_classes;
  a.tree_offsets.push_back(0);
  for (Tree& t : trees) {
    const int64_t offset = a.feature.size();
    if (offset + static_cast<int64_t>(t.feature.size()) > std::numeric_limits<int32_t>::max())
      throw std::runtime_error("RandomForest::fit: the forest exceeds 2^31 - 1 nodes");
    const auto shift = [offset](int32_t c) { return c < 0 ? c : static_cast<int32_t>(c + offset); };
    a.feature.insert(a.feature.end(), t.feature.begin(), t.feature.end());
    a.threshold.insert(a.threshold.end(), t.threshold.begin(), t.threshold.end());
    for (const int32_t c : t.left) a.left.push_back(shift(c));
    for (const int32_t c : t.right) a.right.push_back(shift(c));
    a.value.insert(a.value.end(), t.value.begin(), t.value.end());
    a.tree_offsets.push_back(static_cast<int32_t>(a.feature.size()));
    t = Tree{};
  }
  return std::make_unique<RandomForest>(std::move(a), options);
}

}  // namespace ipg
