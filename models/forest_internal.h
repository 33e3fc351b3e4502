// Inside the random-forest trainer (models/forest_train.cpp, forest_binning.cpp,
// forest_tree.cpp): the binned features and the trees as grown. Not part of the models' API.
#pragma once

#include <stdint.h>

#include <vector>

#include "models/forest.h"

namespace ipg::forest_detail {

// Features as level codes: codes[f * n + i] is the rank of x[i, f] among the distinct
// values of feature f, levels[f] those values in increasing order. Codes are bytes when
// every feature has at most 256 levels (8-bit images): the column gathers of the split
// search miss the cache less.
struct Binned {
  int64_t n = 0, features = 0;
  std::vector<uint16_t> codes;
  std::vector<uint8_t> codes8;  // used instead of codes when max_levels <= 256
  std::vector<std::vector<float>> levels;
  int64_t max_levels = 0;

  // Calls fn with a pointer to column f (uint8_t* or uint16_t*).
  template <typename Fn>
  decltype(auto) with_column(int64_t f, Fn&& fn) const {
    if (!codes8.empty()) return fn(codes8.data() + f * n);
    return fn(codes.data() + f * n);
  }
};

// Ranks every feature's values (in parallel); throws std::invalid_argument naming the
// first image and feature that cannot be binned (a non-finite value, too many levels).
Binned bin_features(const float* x, int64_t n, int64_t features);

// One tree as grown: node 0 its root, child indices local to the tree.
struct Tree {
  std::vector<int32_t> feature, left, right;
  std::vector<float> threshold, value;
};

// Grows options.trees trees over `binned` (OpenMP, one builder per thread), tree t from
// its own stream, and returns them in tree order; rethrows the first failure.
std::vector<Tree> grow_trees(const Binned& binned, const int32_t* labels, int classes,
                             const ForestOptions& options, int64_t max_features,
                             const ProgressCallback& progress);

}  // namespace ipg::forest_detail
