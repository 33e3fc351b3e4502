// Random forest training, second step: growing CART trees (gini) over binned features
// (forest_binning.cpp). A node finds the best threshold of a candidate feature from a
// histogram of (level, class) weights in O(node samples + levels present), and the
// threshold lies midway between adjacent present values, as scikit-learn puts it.
#include <algorithm>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "kernels/common/philox.h"
#include "models/forest_internal.h"

namespace ipg::forest_detail {

namespace {

// The stream of tree t: Philox keyed by a seed derived from (base seed, t), four words
// per counter.
class TreeRng {
 public:
  TreeRng(uint64_t base_seed, int tree) {
    const kernels::Philox4 k = kernels::philox4x32_10(base_seed, static_cast<uint64_t>(tree));
    seed_ = (uint64_t{k.v[1]} << 32) | k.v[0];
  }
  uint32_t next() {
    if (used_ == 4) {
      block_ = kernels::philox4x32_10(seed_, counter_++);
      used_ = 0;
    }
    return block_.v[used_++];
  }
  // Uniform in [0, k) for 0 < k <= 2^32 (multiply-shift; the bias is below 2^-32 * k).
  uint64_t below(uint64_t k) { return (uint64_t{next()} * k) >> 32; }

 private:
  uint64_t seed_ = 0, counter_ = 0;
  kernels::Philox4 block_{};
  int used_ = 4;
};

// Midway between adjacent values; lo when rounding would put it on hi (x <= t goes left).
float midpoint(float lo, float hi) {
  const float t = lo + (hi - lo) * 0.5f;
  return t < hi ? t : lo;
}

// One thread's scratch for growing trees over a shared Binned.
class TreeBuilder {
 public:
  TreeBuilder(const Binned& b, const int32_t* y, int classes, const ForestOptions& o,
              int64_t max_features)
      : b_(b),
        y_(y),
        classes_(classes),
        o_(o),
        max_features_(max_features),
        weight_(static_cast<size_t>(b.n)),
        hist_(static_cast<size_t>(b.max_levels * classes)),
        rows_at_(static_cast<size_t>(b.max_levels)),
        perm_(static_cast<size_t>(b.features)),
        counts_(static_cast<size_t>(classes)),
        left_counts_(static_cast<size_t>(classes)) {
    touched_.reserve(static_cast<size_t>(b.max_levels));
  }

  Tree grow(int tree_index) {
    TreeRng rng(o_.seed, tree_index);
    const int64_t n = b_.n;
    if (o_.bootstrap) {
      std::fill(weight_.begin(), weight_.end(), 0);
      for (int64_t i = 0; i < n; ++i) ++weight_[rng.below(static_cast<uint64_t>(n))];
    } else {
      std::fill(weight_.begin(), weight_.end(), 1);
    }
    rows_.clear();
    for (int64_t i = 0; i < n; ++i)
      if (weight_[i] > 0) rows_.push_back(static_cast<int32_t>(i));
    std::iota(perm_.begin(), perm_.end(), 0);

    Tree t;
    add_node(t);
    struct Task {
      int32_t node;
      int64_t begin, end;
      int depth;
    };
    std::vector<Task> stack{{0, 0, static_cast<int64_t>(rows_.size()), 0}};
    while (!stack.empty()) {
      const Task task = stack.back();
      stack.pop_back();
      int64_t total = 0;
      int present = 0;
      std::fill(counts_.begin(), counts_.end(), 0);
      for (int64_t r = task.begin; r < task.end; ++r) counts_[y_[rows_[r]]] += weight_[rows_[r]];
      float* value = t.value.data() + int64_t{task.node} * classes_;
      for (int c = 0; c < classes_; ++c) {
        total += counts_[c];
        present += counts_[c] > 0;
      }
      for (int c = 0; c < classes_; ++c)
        value[c] = static_cast<float>(static_cast<double>(counts_[c]) / static_cast<double>(total));
      const int64_t rows = task.end - task.begin;
      bool leaf = (o_.max_depth > 0 && task.depth >= o_.max_depth) || rows < o_.min_samples_split ||
                  rows < 2 * int64_t{o_.min_samples_leaf} || present <= 1;
      Split s;
      if (!leaf) {
        s = best_split(task.begin, task.end, total, rng);
        leaf = !s.found;
      }
      if (leaf) continue;  // add_node made it a leaf
      // Stable: rows stay in increasing order, so the column gathers of the split search
      // walk memory forwards (prefetch-friendly) at every depth.
      const int64_t i = b_.with_column(s.feature, [&](const auto* col) {
        int64_t kept = task.begin;
        right_rows_.clear();
        for (int64_t r = task.begin; r < task.end; ++r) {
          const int32_t row = rows_[r];
          if (col[row] <= s.code)
            rows_[kept++] = row;
          else
            right_rows_.push_back(row);
        }
        std::copy(right_rows_.begin(), right_rows_.end(), rows_.begin() + kept);
        return kept;
      });
      const int32_t l = add_node(t), r = add_node(t);
      t.feature[task.node] = s.feature;
      t.threshold[task.node] = s.threshold;
      t.left[task.node] = l;
      t.right[task.node] = r;
      stack.push_back({r, i, task.end, task.depth + 1});
      stack.push_back({l, task.begin, i, task.depth + 1});
    }
    return t;
  }

 private:
  struct Split {
    bool found = false;
    int32_t feature = -1;
    uint16_t code = 0;  // left: codes <= code
    float threshold = 0;
    double proxy = -std::numeric_limits<double>::infinity();
  };

  int32_t add_node(Tree& t) const {
    const auto id = static_cast<int32_t>(t.feature.size());
    t.feature.push_back(-1);
    t.threshold.push_back(-2.f);  // unused at leaves (scikit-learn's TREE_UNDEFINED)
    t.left.push_back(-1);
    t.right.push_back(-1);
    t.value.resize(t.value.size() + static_cast<size_t>(classes_));
    return id;
  }

  // Draws features without replacement until max_features non-constant ones have been
  // scored (constant ones do not count, as in scikit-learn) or none is left; keeps the
  // split with the largest gini proxy sum_k L_k^2 / |L| + sum_k R_k^2 / |R| (weighted
  // counts), which orders splits as the gini decrease does. Ties keep the first drawn.
  Split best_split(int64_t begin, int64_t end, int64_t total, TreeRng& rng) {
    Split best;
    const int64_t rows = end - begin, msl = o_.min_samples_leaf;
    int64_t sq_total = 0;
    for (int c = 0; c < classes_; ++c) sq_total += counts_[c] * counts_[c];
    int64_t scored = 0, drawn = 0;
    while (scored < max_features_ && drawn < b_.features) {
      const int64_t pick = drawn + static_cast<int64_t>(rng.below(b_.features - drawn));
      std::swap(perm_[drawn], perm_[pick]);
      const int32_t f = perm_[drawn++];
      touched_.clear();
      b_.with_column(f, [&](const auto* col) {
        const int32_t* rows = rows_.data();
        const int32_t* y = y_;
        const int32_t* weight = weight_.data();
        int32_t* hist = hist_.data();
        int32_t* rows_at = rows_at_.data();
        for (int64_t r = begin; r < end; ++r) {
          const int32_t row = rows[r];
          const uint16_t c = col[row];
          if (rows_at[c]++ == 0) touched_.push_back(c);
          hist[int64_t{c} * classes_ + y[row]] += weight[row];
        }
      });
      if (touched_.size() > 1) {
        ++scored;
        const std::vector<float>& levels = b_.levels[f];
        // Few levels present: sort them; many: walk all levels in order.
        if (touched_.size() * 16 < levels.size()) {
          std::sort(touched_.begin(), touched_.end());
        } else {
          touched_.clear();
          for (size_t c = 0; c < levels.size(); ++c)
            if (rows_at_[c]) touched_.push_back(static_cast<uint16_t>(c));
        }
        std::fill(left_counts_.begin(), left_counts_.end(), 0);
        int64_t sq_left = 0, sq_right = sq_total, w_left = 0, rows_left = 0;
        for (size_t i = 0; i + 1 < touched_.size(); ++i) {
          const uint16_t c = touched_[i];
          const int32_t* h = hist_.data() + int64_t{c} * classes_;
          for (int k = 0; k < classes_; ++k) {
            const int64_t hk = h[k];
            if (hk == 0) continue;
            const int64_t lk = left_counts_[k], rk = counts_[k] - lk;
            sq_left += (2 * lk + hk) * hk;
            sq_right -= (2 * rk - hk) * hk;
            left_counts_[k] = lk + hk;
            w_left += hk;
          }
          rows_left += rows_at_[c];
          if (rows_left < msl) continue;
          if (rows - rows_left < msl) break;
          const double proxy = static_cast<double>(sq_left) / static_cast<double>(w_left) +
                               static_cast<double>(sq_right) / static_cast<double>(total - w_left);
          if (proxy > best.proxy) {
            best.found = true;
            best.proxy = proxy;
            best.feature = f;
            best.code = c;
            best.threshold = midpoint(levels[c], levels[touched_[i + 1]]);
          }
        }
      }
      for (const uint16_t c : touched_) {
        rows_at_[c] = 0;
        std::fill_n(hist_.data() + int64_t{c} * classes_, classes_, 0);
      }
    }
    return best;
  }

  const Binned& b_;
  const int32_t* y_;
  const int classes_;
  const ForestOptions& o_;
  const int64_t max_features_;
  std::vector<int32_t> weight_;  // bootstrap count of each training image
  std::vector<int32_t> rows_;    // in-bag images, partitioned node by node
  std::vector<int32_t> right_rows_;
  std::vector<int32_t> hist_;     // [level, class] weights of the feature being scored
  std::vector<int32_t> rows_at_;  // images per level
  std::vector<uint16_t> touched_;
  std::vector<int32_t> perm_;
  std::vector<int64_t> counts_, left_counts_;
};

}  // namespace

std::vector<Tree> grow_trees(const Binned& binned, const int32_t* labels, int classes,
                             const ForestOptions& options, int64_t max_features,
                             const ProgressCallback& progress) {
  std::vector<Tree> trees(static_cast<size_t>(options.trees));
  std::exception_ptr error;
  int done = 0;
#pragma omp parallel
  {
    std::unique_ptr<TreeBuilder> builder;
    try {
      builder = std::make_unique<TreeBuilder>(binned, labels, classes, options, max_features);
    } catch (...) {
#pragma omp critical(ipg_forest_error)
      if (!error) error = std::current_exception();
    }
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < options.trees; ++t) {
      if (!builder) continue;
      try {
        trees[t] = builder->grow(t);
#pragma omp critical(ipg_forest_progress)
        {
          ++done;
          if (progress) progress(done, options.trees);
        }
      } catch (...) {
#pragma omp critical(ipg_forest_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
  return trees;
}

}  // namespace ipg::forest_detail
