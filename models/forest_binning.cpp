// Random forest training, first step: features as level codes. Training never sorts
// samples. Each feature's distinct values are ranked once (8-bit images: at most 256
// levels), so that the tree builder (forest_tree.cpp) scores a feature from a histogram
// of levels rather than by sorting the node's samples.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/forest_internal.h"

namespace ipg::forest_detail {

namespace {

constexpr int64_t kMaxLevels = 65536;  // distinct values per feature (uint16 codes)

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

}  // namespace

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

}  // namespace ipg::forest_detail
