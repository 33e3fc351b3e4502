// Random forest of CART trees (gini), trained on raw [0,1] pixels, with scikit-learn's
// RandomForestClassifier defaults: bootstrap samples, sqrt(features) candidates per
// split, unlimited depth, min_samples_split 2, min_samples_leaf 1. A forest predicts the
// argmax of the sum of its trees' leaf class distributions (the same argmax as
// scikit-learn's average). Labels only: has_logits() is false.
//
// Training is deterministic: tree t draws from its own Philox stream keyed by (seed, t),
// and trees are trained in parallel (OpenMP) but stored in tree order, so the same seed
// gives the same arrays for any thread count.
#pragma once

#include <stdint.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/common/forest_math.h"
#include "models/classifier.h"
#include "models/data/dataset.h"

namespace ipg {

struct ForestOptions {
  int trees = 20;
  int max_depth = 0;  // 0: unlimited
  int min_samples_split = 2;
  int min_samples_leaf = 1;
  int max_features = 0;  // candidates per split; 0: floor(sqrt(features))
  uint64_t seed = 0;
  bool bootstrap = true;
};

// Called as trees finish (done of total), from the training threads but never two at once.
using ProgressCallback = std::function<void(int done, int total)>;

// The flattened trees (design.md "Files", /forest/...): node i is a leaf when
// feature[i] == -1 (then left == right == -1); else samples with x[feature] <= threshold
// go to left[i], the others to right[i]. Child indices are global and greater than the
// parent's, inside the parent's tree. value is [nodes, classes] row-major: each node's
// class distribution (bootstrap-weighted fractions of its training samples). Tree t holds
// nodes [tree_offsets[t], tree_offsets[t+1]), its root first.
struct ForestArrays {
  int in_channels = 0, height = 0, width = 0, classes = 0;
  std::vector<int32_t> feature;
  std::vector<float> threshold;
  std::vector<int32_t> left, right;
  std::vector<float> value;
  std::vector<int32_t> tree_offsets;
};

// "" when the arrays form a valid forest; else the first problem, naming the array as
// "forest/<name>" and the node (sizes, index ranges, features < C*H*W, finite thresholds,
// finite non-negative values, children after their parent inside its tree).
std::string forest_problem(const ForestArrays& a);

struct ForestStats {
  int64_t nodes = 0;
  int64_t leaves = 0;
  int max_depth = 0;           // deepest leaf over all trees (a root alone has depth 0)
  double mean_depth = 0;       // mean over trees of each tree's deepest leaf
  double mean_leaf_depth = 0;  // mean depth of all leaves
};

class RandomForest : public Classifier {
 public:
  // Throws std::invalid_argument when forest_problem(arrays) is not empty.
  explicit RandomForest(ForestArrays arrays, ForestOptions options = {});

  // Trains on train.images (CPU, float32 [n, c, h, w]) and train.labels. Pixels must be
  // finite; a feature may take at most 65536 distinct values (8-bit images take 256).
  // Throws std::invalid_argument on an empty or inconsistent dataset or bad options.
  static std::unique_ptr<RandomForest> fit(const Dataset& train, const ForestOptions& options,
                                           ProgressCallback progress = {});

  std::string arch() const override { return "rf"; }
  int num_classes() const override { return arrays_.classes; }
  // int32 [n] on the batch's device (CPU or CUDA) for a float32 [n, C, H, W] batch; the
  // trees are copied to a CUDA device on first use there (see to()).
  Tensor labels(const Tensor& batch) override;

  // Copies the flattened trees to `device` now, so a later labels() there copies nothing.
  void to(Device device);

  const ForestArrays& arrays() const { return arrays_; }
  // The options it was trained with (those recorded in its file after a load).
  const ForestOptions& options() const { return options_; }
  int num_trees() const { return static_cast<int>(arrays_.tree_offsets.size()) - 1; }
  int64_t num_nodes() const { return static_cast<int64_t>(arrays_.feature.size()); }
  int64_t num_features() const {
    return int64_t{arrays_.in_channels} * arrays_.height * arrays_.width;
  }
  ForestStats stats() const;

 private:
  struct DeviceCopy {
    Tensor nodes, value, tree_offsets;  // nodes: int32 [nodes, 4], the packed records
  };
  const DeviceCopy& on_device(Device device);

  ForestArrays arrays_;
  std::vector<kernels::ForestNode> nodes_;  // the arrays packed for the walk
  ForestOptions options_;
  std::map<std::string, DeviceCopy> device_copies_;  // keyed by Device::str(), CUDA only
};

}  // namespace ipg
