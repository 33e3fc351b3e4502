// Random forest: CART training on quantized pixels, validation, prediction dispatch.
//
// Training never sorts samples. Each feature's distinct values are ranked once (8-bit
// images: at most 256 levels), so a node finds the best threshold of a candidate feature
// from a histogram of (level, class) weights in O(node samples + levels present), and
// the threshold lies midway between adjacent present values, as scikit-learn puts it.
#include "models/forest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/forest_predict.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/forest_predict.h"
#endif

namespace ipg {

namespace {

constexpr int64_t kMaxLevels = 65536;  // distinct values per feature (uint16 codes)

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

// 8-bit pixels (k/255 however computed): one pass, no sort. False when the column is
// not of that form (then the caller ranks it by sorting).
bool rank_8bit(const float* col, int64_t n, uint16_t* codes, std::vector<float>& levels) {
  float seen[256];
  bool has[256] = {};
  for (int64_t i = 0; i < n; ++i) {
    const float v = col[i];
    if (!(v >= -1.f && v <= 2.f)) return false;  // also refuses NaN
    const long k = std::lrint(v * 255.f);
    if (k < 0 || k > 255) return false;
    if (has[k] && seen[k] != v) return false;  // two values round to one level
    has[k] = true;
    seen[k] = v;
    codes[i] = static_cast<uint16_t>(k);
  }
  uint16_t rank[256];
  levels.clear();
  for (int k = 0; k < 256; ++k) {
    if (!has[k]) continue;
    if (!levels.empty() && !(seen[k] > levels.back())) return false;
    rank[k] = static_cast<uint16_t>(levels.size());
    levels.push_back(seen[k]);
  }
  for (int64_t i = 0; i < n; ++i) codes[i] = rank[codes[i]];
  return true;
}

// Any finite values: sort the distinct ones. Returns "" or the problem.
std::string rank_sorted(const float* col, int64_t n, int64_t feature, uint16_t* codes,
                        std::vector<float>& levels) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(col[i]))
      return "image " + std::to_string(i) + " has a non-finite value at feature " +
             std::to_string(feature);
  levels.assign(col, col + n);
  std::sort(levels.begin(), levels.end());
  levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
  if (static_cast<int64_t>(levels.size()) > kMaxLevels)
    return "feature " + std::to_string(feature) + " takes " + std::to_string(levels.size()) +
           " distinct values; the forest trainer handles at most " + std::to_string(kMaxLevels);
  for (int64_t i = 0; i < n; ++i)
    codes[i] = static_cast<uint16_t>(std::lower_bound(levels.begin(), levels.end(), col[i]) -
                                     levels.begin());
  return "";
}

Binned bin_features(const float* x, int64_t n, int64_t features) {
  Binned b;
  b.n = n;
  b.features = features;
  b.codes.resize(static_cast<size_t>(n * features));
  b.levels.resize(static_cast<size_t>(features));
  // Columns are gathered 16 at a time (one cache line of a row) to read x once.
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (features + kBlock - 1) / kBlock;
  std::string problem;
#pragma omp parallel
  {
    std::vector<float> cols(static_cast<size_t>(kBlock * n));
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t f0 = blk * kBlock, nf = std::min(kBlock, features - f0);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < nf; ++j) cols[j * n + i] = x[i * features + f0 + j];
      for (int64_t j = 0; j < nf; ++j) {
        const float* col = cols.data() + j * n;
        uint16_t* codes = b.codes.data() + (f0 + j) * n;
        std::vector<float>& levels = b.levels[f0 + j];
        if (rank_8bit(col, n, codes, levels)) continue;
        const std::string p = rank_sorted(col, n, f0 + j, codes, levels);
        if (!p.empty()) {
#pragma omp critical(ipg_forest_bin)
          if (problem.empty()) problem = p;
        }
      }
    }
  }
  if (!problem.empty()) throw std::invalid_argument("RandomForest::fit: " + problem);
  for (const auto& l : b.levels) b.max_levels = std::max<int64_t>(b.max_levels, l.size());
  if (b.max_levels <= 256) {
    b.codes8.assign(b.codes.begin(), b.codes.end());
    b.codes = {};
  }
  return b;
}

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

struct Tree {
  std::vector<int32_t> feature, left, right;
  std::vector<float> threshold, value;
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
  std::vector<Tree> trees(static_cast<size_t>(options.trees));
  std::exception_ptr error;
  int done = 0;
#pragma omp parallel
  {
    std::unique_ptr<TreeBuilder> builder;
    try {
      builder =
          std::make_unique<TreeBuilder>(binned, labels, train.num_classes, options, max_features);
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
