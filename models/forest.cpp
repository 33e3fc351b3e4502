// Random forest (forest.h): validation of the flattened arrays, statistics, and
// prediction dispatch to the CPU or CUDA kernel. Training: forest_train.cpp,
// forest_binning.cpp, forest_tree.cpp; files: forest_file.cpp.
#include "models/forest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/cpu/forest_predict.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/forest_predict.h"
#endif

namespace ipg {

std::string forest_problem(const ForestArrays& a) {
  auto at = [](const char* name, int64_t i) {
    return std::string("forest/") + name + "[" + std::to_string(i) + "]";
  };
  constexpr int64_t kMaxDim = int64_t{1} << 20;
  for (const int d : {a.in_channels, a.height, a.width})
    if (d <= 0 || d > kMaxDim)
      return "input shape " + std::to_string(a.in_channels) + "x" + std::to_string(a.height) + "x" +
             std::to_string(a.width) + " is not a valid image shape";
  const int64_t features = int64_t{a.in_channels} * a.height * a.width;
  if (features > std::numeric_limits<int32_t>::max())
    return "input shape has " + std::to_string(features) + " features, more than int32 indexes";
  if (a.classes <= 0 || a.classes > kMaxDim)
    return "classes is " + std::to_string(a.classes) + ", not in [1, " + std::to_string(kMaxDim) +
           "]";
  const int64_t nodes = static_cast<int64_t>(a.feature.size());
  if (nodes == 0) return "forest/feature: the forest has no nodes";
  if (nodes > std::numeric_limits<int32_t>::max())
    return "forest/feature: " + std::to_string(nodes) + " nodes, more than int32 indexes";
  auto size_problem = [&](const char* name, size_t got, int64_t want) {
    return std::string("forest/") + name + " has " + std::to_string(got) + " elements, " +
           std::to_string(want) + " expected";
  };
  if (static_cast<int64_t>(a.threshold.size()) != nodes)
    return size_problem("threshold", a.threshold.size(), nodes);
  if (static_cast<int64_t>(a.left.size()) != nodes)
    return size_problem("left", a.left.size(), nodes);
  if (static_cast<int64_t>(a.right.size()) != nodes)
    return size_problem("right", a.right.size(), nodes);
  if (static_cast<int64_t>(a.value.size()) != nodes * a.classes)
    return size_problem("value", a.value.size(), nodes * a.classes);
  const std::vector<int32_t>& off = a.tree_offsets;
  if (off.size() < 2) return "forest/tree_offsets: needs at least 2 elements (one tree)";
  if (off.front() != 0)
    return "forest/tree_offsets[0] is " + std::to_string(off.front()) + ", not 0";
  if (off.back() != nodes)
    return "forest/tree_offsets ends at " + std::to_string(off.back()) +
           ", not at the node count " + std::to_string(nodes);
  for (size_t t = 0; t + 1 < off.size(); ++t)
    if (off[t + 1] <= off[t])
      return at("tree_offsets", static_cast<int64_t>(t + 1)) + ": tree " + std::to_string(t) +
             " would have no nodes (offsets must increase)";
  for (size_t t = 0; t + 1 < off.size(); ++t) {
    const int32_t first = off[t], end = off[t + 1];
    for (int32_t i = first; i < end; ++i) {
      const int32_t f = a.feature[i];
      if (f == -1) {
        if (a.left[i] != -1 || a.right[i] != -1)
          return at("left", i) + ": leaf (feature -1) with children " + std::to_string(a.left[i]) +
                 ", " + std::to_string(a.right[i]) + " (leaves have -1)";
        continue;
      }
      if (f < 0 || f >= features)
        return at("feature", i) + " is " + std::to_string(f) + ", not -1 (leaf) or in [0, " +
               std::to_string(features) + ")";
      if (!std::isfinite(a.threshold[i]))
        return at("threshold", i) + " is " + std::to_string(a.threshold[i]) + " (must be finite)";
      for (const auto& [name, child] : {std::pair<const char*, int32_t>{"left", a.left[i]},
                                        std::pair<const char*, int32_t>{"right", a.right[i]}})
        if (child <= i || child >= end)
          return at(name, i) + " is " + std::to_string(child) + ": a child of node " +
                 std::to_string(i) + " in tree " + std::to_string(t) + " must lie in (" +
                 std::to_string(i) + ", " + std::to_string(end) + ")";
    }
  }
  for (int64_t i = 0; i < nodes * a.classes; ++i)
    if (!std::isfinite(a.value[i]) || a.value[i] < 0)
      return at("value", i) + " is " + std::to_string(a.value[i]) +
             " (class weights must be finite and >= 0)";
  return "";
}

RandomForest::RandomForest(ForestArrays arrays, ForestOptions options)
    : arrays_(std::move(arrays)), options_(options) {
  const std::string p = forest_problem(arrays_);
  if (!p.empty()) throw std::invalid_argument("RandomForest: " + p);
  nodes_.resize(arrays_.feature.size());
  for (size_t i = 0; i < nodes_.size(); ++i)
    nodes_[i] = {arrays_.feature[i], arrays_.threshold[i], arrays_.left[i], arrays_.right[i]};
}

ForestStats RandomForest::stats() const {
  ForestStats s;
  s.nodes = num_nodes();
  std::vector<int> depth(static_cast<size_t>(s.nodes), 0);
  int64_t leaf_depth_sum = 0;
  const auto& off = arrays_.tree_offsets;
  for (size_t t = 0; t + 1 < off.size(); ++t) {
    int deepest = 0;
    for (int32_t i = off[t]; i < off[t + 1]; ++i) {
      if (arrays_.feature[i] < 0) {
        ++s.leaves;
        leaf_depth_sum += depth[i];
        deepest = std::max(deepest, depth[i]);
        continue;
      }
      depth[arrays_.left[i]] = depth[i] + 1;  // children follow their parent
      depth[arrays_.right[i]] = depth[i] + 1;
    }
    s.max_depth = std::max(s.max_depth, deepest);
    s.mean_depth += deepest;
  }
  s.mean_depth /= std::max(1, num_trees());
  s.mean_leaf_depth = s.leaves ? static_cast<double>(leaf_depth_sum) / s.leaves : 0;
  return s;
}

const RandomForest::DeviceCopy& RandomForest::on_device(Device device) {
  auto it = device_copies_.find(device.str());
  if (it != device_copies_.end()) return it->second;
  const ForestArrays& a = arrays_;
  const int64_t nodes = num_nodes();
  static_assert(sizeof(kernels::ForestNode) == 4 * sizeof(int32_t), "ForestNode is 4 words");
  std::vector<int32_t> words(static_cast<size_t>(nodes * 4));
  std::memcpy(words.data(), nodes_.data(), words.size() * sizeof(int32_t));
  DeviceCopy c;
  c.nodes = Tensor::from_vector_i32(words, {nodes, 4}, device);
  c.value = Tensor::from_vector(a.value, {nodes, a.classes}, device);
  c.tree_offsets = Tensor::from_vector_i32(a.tree_offsets, {num_trees() + 1}, device);
  return device_copies_.emplace(device.str(), std::move(c)).first->second;
}

void RandomForest::to(Device device) {
  if (device.is_cuda()) on_device(device);
}

Tensor RandomForest::labels(const Tensor& batch) {
  const ForestArrays& a = arrays_;
  if (batch.dtype() != DType::F32)
    throw std::invalid_argument("rf labels: expected a float32 batch, got " +
                                std::string(dtype_name(batch.dtype())));
  if (batch.ndim() != 4 || batch.dim(1) != a.in_channels || batch.dim(2) != a.height ||
      batch.dim(3) != a.width)
    throw ShapeError("rf labels: batch " + shape_str(batch.shape()) +
                     " does not match the forest's input [n, " + std::to_string(a.in_channels) +
                     ", " + std::to_string(a.height) + ", " + std::to_string(a.width) + "]");
  const Device d = batch.device();
  const int64_t n = batch.dim(0);
  Tensor out = Tensor::empty({n}, d, DType::I32);
  if (n == 0) return out;
  Tensor votes = Tensor::empty({n, a.classes}, d);
  kernels::ForestView view;
  view.trees = num_trees();
  view.classes = a.classes;
  if (d.is_cpu()) {
    view.nodes = nodes_.data();
    view.value = a.value.data();
    view.tree_offsets = a.tree_offsets.data();
  } else {
    const DeviceCopy& c = on_device(d);
    // Device memory holds no C++ objects: the words are read as records there.
    view.nodes = reinterpret_cast<const kernels::ForestNode*>(c.nodes.data_i32());
    view.value = c.value.data();
    view.tree_offsets = c.tree_offsets.data_i32();
  }
  IPG_ON_DEVICE("rf labels", d,
                kernels::cpu::forest_predict(view, batch.data(), n, num_features(), votes.data(),
                                             out.data_i32()),
                kernels::cuda::forest_predict(view, batch.data(), n, num_features(), votes.data(),
                                              out.data_i32(), stream));
  return out;
}

}  // namespace ipg
