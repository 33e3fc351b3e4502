// Random-forest prediction shared by the CPU twin and the CUDA kernel: the walk of one
// sample down one tree and the vote of all trees, so both devices add the same leaf
// distributions in the same order and give the same bits.
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

// One node of the flattened trees, packed so that a step of the walk reads one 16-byte
// record. A leaf has feature < 0; otherwise a sample goes to `left` when
// x[feature] <= threshold (NaN goes right) and to `right` else. Child indices are global
// and greater than their parent's (checked on load), so a walk ends after at most the
// tree's node count.
struct ForestNode {
  int32_t feature;
  float threshold;
  int32_t left;
  int32_t right;
};

// The forest on the device that runs the walk. value is [nodes, classes]: a leaf's class
// distribution. Tree t's root is tree_offsets[t].
struct ForestView {
  const ForestNode* nodes = nullptr;
  const float* value = nullptr;
  const int32_t* tree_offsets = nullptr;  // [trees + 1]
  int32_t trees = 0;
  int32_t classes = 0;
};

// The leaf that sample x (features contiguous) reaches from node `root`.
IPG_HD int32_t forest_leaf(const ForestView& f, int32_t root, const float* x) {
  int32_t node = root;
  for (ForestNode n = f.nodes[node]; n.feature >= 0; n = f.nodes[node])
    node = x[n.feature] <= n.threshold ? n.left : n.right;
  return node;
}

// votes[c] = sum over trees, in tree order, of the class distribution of x's leaf.
IPG_HD void forest_vote_row(const ForestView& f, const float* x, float* votes) {
  for (int32_t c = 0; c < f.classes; ++c) votes[c] = 0.f;
  for (int32_t t = 0; t < f.trees; ++t) {
    const float* dist =
        f.value + static_cast<int64_t>(forest_leaf(f, f.tree_offsets[t], x)) * f.classes;
    for (int32_t c = 0; c < f.classes; ++c) votes[c] += dist[c];
  }
}

}  // namespace ipg::kernels
