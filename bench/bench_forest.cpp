// bench_forest: the random forest (models/forest.h), 20 trees with the defaults of
// `ipguard train --arch rf`.
//   forest_predict  labels for a batch of test images (b = 1, 100, 10000) on the CPU and
//                   on CUDA; the forest is fitted once, on the full Fashion-MNIST
//                   training set (2,000 images under --ipg_quick), and copied to the GPU
//                   before timing
//   forest_fit      training on the first n training images (CPU only; OpenMP over trees)
// Data: Fashion-MNIST from /usr/share/datasets/fashion-mnist, or where it is missing a
// synthetic 10-class set of 28x28 8-bit images (hashed_uniform noise plus a class band),
// named in the JSON context. Work: images/s; bytes count the images read and the labels
// written (a walk down the trees is pointer chasing, so the roofline fraction is small
// by nature).
#include <benchmark/benchmark.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/common.h"
#include "models/data/dataset.h"
#include "models/forest.h"

namespace ipg::bench {
namespace {

constexpr int64_t kSide = 28;
constexpr int kClasses = 10;

bool have_fashion_mnist() {
  return std::filesystem::exists(std::filesystem::path(kFashionMnistDir) /
                                 "train-labels-idx1-ubyte.gz");
}

// n synthetic images: uniform noise with a brighter band of rows at the class's place.
Dataset synthetic(int64_t n, uint32_t seed) {
  const Tensor noise = hashed_uniform({n, 1, kSide, kSide}, seed, 0.f, 1.f, Device::cpu());
  std::vector<float> x = noise.to_vector();
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    y[i] = static_cast<int32_t>(i % kClasses);
    for (int64_t p = 0; p < kSide * kSide; ++p) {
      float& v = x[i * kSide * kSide + p];
      const int64_t row = p / kSide;
      if (row / 3 == y[i]) v = 0.5f + 0.5f * v;
      v = std::round(v * 127.f) / 255.f;
    }
  }
  Dataset d;
  d.name = "synthetic";
  d.images = Tensor::from_vector(x, {n, 1, kSide, kSide});
  d.labels = Tensor::from_vector_i32(y, {n});
  d.num_classes = kClasses;
  return d;
}

Dataset first_rows(Dataset d, int64_t n) {
  n = std::min(n, d.size());
  d.images = d.images.narrow0(0, n);
  d.labels = d.labels.narrow0(0, n);
  return d;
}

const Dataset& train_set() {
  static const Dataset d =
      have_fashion_mnist() ? load_dataset("fashion-mnist", Split::Train) : synthetic(60000, 1);
  return d;
}

const Dataset& test_set() {
  static const Dataset d =
      have_fashion_mnist() ? load_dataset("fashion-mnist", Split::Test) : synthetic(10000, 2);
  return d;
}

// The forest every prediction case shares, fitted on first use.
std::shared_ptr<RandomForest> shared_forest() {
  static std::shared_ptr<RandomForest> rf = [] {
    ForestOptions o;
    o.seed = 1;
    return std::shared_ptr<RandomForest>(
        RandomForest::fit(first_rows(train_set(), quick() ? 2000 : 60000), o));
  }();
  return rf;
}

void forest_cases() {
  benchmark::AddCustomContext("forest_data", have_fashion_mnist() ? "fashion-mnist" : "synthetic");
  const std::vector<int64_t> batches =
      quick() ? std::vector<int64_t>{1, 100} : std::vector<int64_t>{1, 100, 10000};
  for (const int64_t b : batches) {
    add_case("forest_predict", "trees=20,b=" + std::to_string(b), [b](Device d) {
      std::shared_ptr<RandomForest> rf = shared_forest();
      rf->to(d);
      const Tensor x = first_rows(test_set(), b).images.to(d);
      Prepared p;
      p.work.images = double(x.dim(0));
      p.work.bytes = 4.0 * x.numel() + 4.0 * x.dim(0);
      p.run = [rf, x]() { keep(rf->labels(x)); };
      const ForestStats s = rf->stats();
      p.label = "nodes=" + std::to_string(s.nodes) + ",depth=" + std::to_string(s.max_depth);
      return p;
    });
  }
  const int64_t n = quick() ? 1000 : 10000;
  const int trees = quick() ? 5 : 20;
  add_case(
      "forest_fit", "trees=" + std::to_string(trees) + ",n=" + std::to_string(n),
      [n, trees](Device) {
        const Dataset train = first_rows(train_set(), n);
        ForestOptions o;
        o.trees = trees;
        o.seed = 1;
        Prepared p;
        p.work.images = double(train.size());
        p.run = [train, o]() { benchmark::DoNotOptimize(RandomForest::fit(train, o)); };
        return p;
      },
      kCpu);
}

IPG_BENCH_CASES(forest_cases);

}  // namespace
}  // namespace ipg::bench

IPG_BENCH_MAIN()
