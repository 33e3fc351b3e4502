// Random forest: exact fits, determinism, sampling options, files (round trip and every
// kind of bad file), CUDA parity, and a small Fashion-MNIST run.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include "engine/error.h"
#include "engine/hdf5.h"
#include "kernels/common/philox.h"
#include "models/forest.h"
#include "models/forest_file.h"
#include "models/recipe.h"
#include "tests/engine/file_flips.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

// n images of 1 x side x side 8-bit pixels (k/255, random); the label is a rule over a
// few pixels, so axis-aligned splits separate the classes exactly.
Dataset toy_set(int64_t n, int side = 4, uint64_t seed = 7) {
  const int64_t f = int64_t{side} * side;
  std::vector<float> x(static_cast<size_t>(n * f));
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) {
      const uint32_t w = kernels::philox4x32_10(seed, static_cast<uint64_t>(i * f + j)).v[0];
      x[i * f + j] = static_cast<float>(w % 256) / 255.f;
    }
    const float* p = &x[i * f];
    y[i] = p[0] > 0.5f ? (p[5] > 0.3f ? 2 : 1) : 0;
  }
  Dataset d;
  d.name = "toy";
  d.images = Tensor::from_vector(x, {n, 1, side, side});
  d.labels = Tensor::from_vector_i32(y, {n});
  d.num_classes = 3;
  return d;
}

double accuracy(RandomForest& rf, const Dataset& d) {
  const std::vector<int32_t> got = rf.labels(d.images).to_vector_i32();
  const std::vector<int32_t> want = d.labels.to_vector_i32();
  int64_t ok = 0;
  for (size_t i = 0; i < got.size(); ++i) ok += got[i] == want[i];
  return static_cast<double>(ok) / static_cast<double>(got.size());
}

// Bit-exact equality of every array (floats compared as bytes).
void expect_same_arrays(const ForestArrays& a, const ForestArrays& b) {
  EXPECT_EQ(a.in_channels, b.in_channels);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.classes, b.classes);
  EXPECT_EQ(a.feature, b.feature);
  EXPECT_EQ(a.left, b.left);
  EXPECT_EQ(a.right, b.right);
  EXPECT_EQ(a.tree_offsets, b.tree_offsets);
  ASSERT_EQ(a.threshold.size(), b.threshold.size());
  EXPECT_EQ(0, std::memcmp(a.threshold.data(), b.threshold.data(), a.threshold.size() * 4));
  ASSERT_EQ(a.value.size(), b.value.size());
  EXPECT_EQ(0, std::memcmp(a.value.data(), b.value.data(), a.value.size() * 4));
}

TEST(ForestFit, SeparableToySetFittedExactly) {
  const Dataset d = toy_set(300);
  ForestOptions o;
  o.trees = 1;
  o.bootstrap = false;
  auto tree = RandomForest::fit(d, o);
  EXPECT_EQ(tree->arch(), "rf");
  EXPECT_FALSE(tree->has_logits());
  EXPECT_EQ(tree->num_trees(), 1);
  EXPECT_DOUBLE_EQ(accuracy(*tree, d), 1.0);
  // Unlimited depth: every leaf is pure.
  const ForestArrays& a = tree->arrays();
  for (int64_t i = 0; i < tree->num_nodes(); ++i) {
    if (a.feature[i] >= 0) continue;
    int nonzero = 0;
    for (int c = 0; c < a.classes; ++c) nonzero += a.value[i * a.classes + c] > 0;
    EXPECT_EQ(nonzero, 1) << "leaf " << i;
  }

  auto forest = RandomForest::fit(d, ForestOptions{});
  EXPECT_EQ(forest->num_trees(), 20);
  EXPECT_GE(accuracy(*forest, d), 0.97);
  const Dataset held_out = toy_set(300, 4, 99);
  EXPECT_GE(accuracy(*forest, held_out), 0.85);
  const ForestStats s = forest->stats();
  EXPECT_EQ(s.nodes, forest->num_nodes());
  EXPECT_EQ(s.nodes, 2 * s.leaves - forest->num_trees());  // binary trees
  EXPECT_GT(s.max_depth, 1);
  EXPECT_LE(s.mean_depth, s.max_depth);
}

TEST(ForestFit, MaxDepthAndMinSamplesLeafHonoured) {
  const Dataset d = toy_set(300);
  ForestOptions o;
  o.trees = 4;
  o.max_depth = 2;
  EXPECT_LE(RandomForest::fit(d, o)->stats().max_depth, 2);
  o.max_depth = 0;
  o.min_samples_leaf = 20;
  o.bootstrap = false;
  auto rf = RandomForest::fit(d, o);
  // Without bootstrap every leaf holds >= 20 images: at most 300 / 20 leaves per tree.
  EXPECT_LE(rf->stats().leaves, 4 * 15);
}

TEST(ForestFit, SameSeedSameForestForAnyThreadCount) {
  const Dataset d = toy_set(400, 5);
  ForestOptions o;
  o.trees = 6;
  o.seed = 11;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one = RandomForest::fit(d, o);
  omp_set_num_threads(2);
  auto two = RandomForest::fit(d, o);
  auto again = RandomForest::fit(d, o);
  omp_set_num_threads(threads);
  expect_same_arrays(one->arrays(), two->arrays());
  expect_same_arrays(two->arrays(), again->arrays());
  o.seed = 12;
  auto other = RandomForest::fit(d, o);
  EXPECT_NE(other->arrays().feature, one->arrays().feature);
}

TEST(ForestFit, BootstrapDrawsAWeightedSample) {
  const Dataset d = toy_set(300);
  std::vector<float> freq(3, 0.f);
  for (int32_t y : d.labels.to_vector_i32()) freq[y] += 1.f / 300.f;
  ForestOptions o;
  o.trees = 5;
  o.bootstrap = false;
  auto plain = RandomForest::fit(d, o);
  o.bootstrap = true;
  auto boot = RandomForest::fit(d, o);
  int roots_differing = 0;
  for (int t = 0; t < 5; ++t) {
    const float* pv = &plain->arrays().value[plain->arrays().tree_offsets[t] * 3];
    const float* bv = &boot->arrays().value[boot->arrays().tree_offsets[t] * 3];
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(pv[c], freq[c], 1e-6) << "tree " << t;
    roots_differing += std::fabs(bv[0] - freq[0]) > 1e-6f;
  }
  EXPECT_GE(roots_differing, 4);  // a bootstrap sample rarely keeps the class shares
}

TEST(ForestFit, SqrtFeaturesPerSplit) {
  // Only pixel 0 decides the label; the other 15 are noise.
  Dataset d = toy_set(300);
  std::vector<float> x = d.images.to_vector();
  std::vector<int32_t> y(300);
  for (int i = 0; i < 300; ++i) y[i] = x[i * 16] > 0.5f;
  d.labels = Tensor::from_vector_i32(y, {300});
  d.num_classes = 2;
  ForestOptions o;
  o.bootstrap = false;
  o.max_features = 16;
  for (const int32_t f : [&] {
         auto rf = RandomForest::fit(d, o);
         std::vector<int32_t> roots;
         for (int t = 0; t < rf->num_trees(); ++t)
           roots.push_back(rf->arrays().feature[rf->arrays().tree_offsets[t]]);
         return roots;
       }())
    EXPECT_EQ(f, 0) << "all features scored: every root splits on pixel 0";
  o.max_features = 0;  // sqrt(16) = 4 candidates: pixel 0 is in the draw 1 time in 4
  auto rf = RandomForest::fit(d, o);
  std::set<int32_t> roots;
  int on_pixel0 = 0;
  for (int t = 0; t < rf->num_trees(); ++t) {
    const int32_t f = rf->arrays().feature[rf->arrays().tree_offsets[t]];
    roots.insert(f);
    on_pixel0 += f == 0;
  }
  EXPECT_GE(roots.size(), 3u);
  EXPECT_GE(on_pixel0, 1);
  EXPECT_LE(on_pixel0, 15);
}

TEST(ForestFit, BadInputsThrow) {
  Dataset d = toy_set(50);
  ForestOptions o;
  o.trees = 0;
  EXPECT_THROW(RandomForest::fit(d, o), std::invalid_argument);
  o = {};
  o.min_samples_split = 1;
  EXPECT_THROW(RandomForest::fit(d, o), std::invalid_argument);
  Dataset bad = d;
  bad.num_classes = 2;  // label 2 is out of range
  EXPECT_THROW(RandomForest::fit(bad, {}), std::invalid_argument);
  bad = d;
  std::vector<float> x = d.images.to_vector();
  x[17] = std::numeric_limits<float>::quiet_NaN();
  bad.images = Tensor::from_vector(x, d.images.shape());
  EXPECT_THROW(RandomForest::fit(bad, {}), std::invalid_argument);

  auto rf = RandomForest::fit(d, o = {});
  EXPECT_THROW(rf->labels(Tensor::zeros({2, 1, 5, 4})), ShapeError);
  EXPECT_THROW(rf->labels(Tensor::zeros({2, 16})), ShapeError);
  EXPECT_EQ(rf->labels(Tensor::zeros({0, 1, 4, 4})).numel(), 0);
}

TEST(ForestFit, ContinuousFeaturesUseSortedLevels) {
  // Values that are not k/255 take the sorting path; with more than 256 distinct values
  // per feature the codes are 16-bit. Distinct rows: an unpruned tree still fits exactly.
  for (const int64_t n : {200, 700}) {
    Dataset d = toy_set(n);
    std::vector<float> x = d.images.to_vector();
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = x[i] * 3.7f - 1.1f + static_cast<float>(i / 16) * 1e-4f;
    d.images = Tensor::from_vector(x, d.images.shape());
    ForestOptions o;
    o.trees = 1;
    o.bootstrap = false;
    auto rf = RandomForest::fit(d, o);
    EXPECT_DOUBLE_EQ(accuracy(*rf, d), 1.0) << n << " images";
  }
}

class ForestFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ipg_forest_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    ForestOptions o;
    o.trees = 3;
    o.seed = 4;
    forest_ = RandomForest::fit(toy_set(120), o);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes arrays as save_forest lays them out, without validating them.
  // value_cols: the width of /forest/value (default: a.classes). `edit` may change the
  // file before it is committed; an unsealed file is written as a legacy (version 1) one.
  std::string write_raw(const ForestArrays& a, const std::string& arch = "rf", int value_cols = 0,
                        const std::function<void(h5::FileWriter&)>& edit = {},
                        h5::Sealing sealing = h5::Sealing::Sealed) {
    const int64_t cols = value_cols > 0 ? value_cols : a.classes;
    const std::string p = path("raw.h5");
    h5::FileWriter w(p, sealing);
    ModelConfig cfg = forest_file_config(a);  // the root attributes every model file has
    cfg.arch = arch;
    write_model_attributes(w, cfg, {});
    if (sealing == h5::Sealing::Unsealed) w.set_attr_int("version", 1);
    const auto len = [](const auto& v) { return Shape{static_cast<int64_t>(v.size())}; };
    w.write("forest/feature", Tensor::from_vector_i32(a.feature, len(a.feature)));
    w.write("forest/threshold", Tensor::from_vector(a.threshold, len(a.threshold)));
    w.write("forest/left", Tensor::from_vector_i32(a.left, len(a.left)));
    w.write("forest/right", Tensor::from_vector_i32(a.right, len(a.right)));
    w.write("forest/value",
            Tensor::from_vector(a.value, {static_cast<int64_t>(a.value.size()) / cols, cols}));
    w.write("forest/tree_offsets", Tensor::from_vector_i32(a.tree_offsets, len(a.tree_offsets)));
    if (edit) edit(w);
    w.commit();
    return p;
  }

  // The first internal node of tree 1 (so indices are global, not per tree).
  int32_t internal_node() const {
    const ForestArrays& a = forest_->arrays();
    for (int32_t i = a.tree_offsets[1]; i < a.tree_offsets[2]; ++i)
      if (a.feature[i] >= 0) return i;
    return -1;
  }

  // load_forest on the tampered arrays throws FileError mentioning `what`.
  void expect_refused(const std::function<void(ForestArrays&)>& edit, const std::string& what) {
    ForestArrays a = forest_->arrays();
    edit(a);
    const std::string p = write_raw(a);
    try {
      load_forest(p);
      ADD_FAILURE() << "loaded a bad forest (" << what << ")";
    } catch (const FileError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }

  fs::path dir_;
  std::unique_ptr<RandomForest> forest_;
};

TEST_F(ForestFile, RoundTripIsBitExact) {
  Provenance p;
  p.data = "toy";
  p.seed = 4;
  p.accuracy = 0.5;
  p.recipe = "rf trees=3";
  const std::string file = path("rf.h5");
  save_forest(*forest_, file, p);
  EXPECT_TRUE(is_forest_file(file));
  Provenance q;
  auto loaded = load_forest(file, &q);
  expect_same_arrays(forest_->arrays(), loaded->arrays());
  EXPECT_EQ(q.data, "toy");
  EXPECT_EQ(q.seed, 4);
  EXPECT_DOUBLE_EQ(q.accuracy, 0.5);
  EXPECT_EQ(q.recipe, "rf trees=3");
  EXPECT_EQ(loaded->options().trees, 3);
  EXPECT_EQ(loaded->options().seed, 4u);
  EXPECT_TRUE(loaded->options().bootstrap);
  const Tensor x = toy_set(64, 4, 3).images;
  EXPECT_EQ(forest_->labels(x).to_vector_i32(), loaded->labels(x).to_vector_i32());
  // Plain HDF5 readers see the root attributes a network file has.
  const h5::File f(file);
  EXPECT_EQ(f.attr_string("arch"), "rf");
  EXPECT_EQ(f.attr_int("classes"), 3);
  EXPECT_EQ(f.dataset("forest/value").shape(), (Shape{forest_->num_nodes(), 3}));
}

TEST_F(ForestFile, OtherArchIsNotAForest) {
  const std::string p = write_raw(forest_->arrays(), "lenet5");
  EXPECT_FALSE(is_forest_file(p));
  try {
    load_forest(p);
    ADD_FAILURE() << "loaded a lenet5 file as a forest";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("lenet5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(is_forest_file(path("missing.h5")), FileError);
}

TEST_F(ForestFile, TruncatedFileThrows) {
  const std::string file = path("rf.h5");
  save_forest(*forest_, file);
  const auto size = fs::file_size(file);
  for (const double keep : {0.0, 0.1, 0.5, 0.9}) {
    const std::string cut = path("cut.h5");
    fs::copy_file(file, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, static_cast<uintmax_t>(size * keep));
    EXPECT_THROW(load_forest(cut), FileError) << "kept " << keep;
  }
}

TEST_F(ForestFile, BadIndicesThrow) {
  const int32_t i = internal_node();
  ASSERT_GE(i, 0);
  expect_refused([i](ForestArrays& a) { a.left[i] = static_cast<int32_t>(a.feature.size()) + 5; },
                 "forest/left");
  expect_refused([i](ForestArrays& a) { a.right[i] = -7; }, "forest/right");
  expect_refused([i](ForestArrays& a) { a.left[i] = i; }, "forest/left");  // a cycle
  expect_refused([i](ForestArrays& a) { a.right[i] = a.tree_offsets[1]; }, "forest/right");
  // A child in the next tree.
  expect_refused([i](ForestArrays& a) { a.left[i] = a.tree_offsets[2]; }, "forest/left");
  expect_refused([i](ForestArrays& a) { a.feature[i] = 16; }, "forest/feature");
  expect_refused([i](ForestArrays& a) { a.feature[i] = -3; }, "forest/feature");
  expect_refused([](ForestArrays& a) { a.tree_offsets.back() += 1; }, "forest/tree_offsets");
  expect_refused([](ForestArrays& a) { a.tree_offsets[1] = a.tree_offsets[0]; },
                 "forest/tree_offsets");
  expect_refused([](ForestArrays& a) { a.threshold.pop_back(); }, "forest/threshold");
}

TEST_F(ForestFile, NonFiniteNumbersThrow) {
  const int32_t i = internal_node();
  ASSERT_GE(i, 0);
  expect_refused([i](ForestArrays& a) { a.threshold[i] = std::numeric_limits<float>::quiet_NaN(); },
                 "forest/threshold");
  expect_refused([](ForestArrays& a) { a.value[4] = std::numeric_limits<float>::infinity(); },
                 "forest/value");
  expect_refused([](ForestArrays& a) { a.value[2] = -1.f; }, "forest/value");
}

TEST_F(ForestFile, InconsistentShapesThrow) {
  ForestArrays a = forest_->arrays();
  a.value.resize(a.feature.size() * 2);  // [nodes, 2] while classes says 3
  EXPECT_THROW(load_forest(write_raw(a, "rf", 2)), FileError);
  a.classes = 2;  // consistent again: a two-class forest
  EXPECT_NO_THROW(load_forest(write_raw(a)));
  a.tree_offsets.clear();
  EXPECT_THROW(load_forest(write_raw(a)), FileError);
}

// Issue 11: every byte of the trees' arrays, every byte of the first 4 KiB and every 5th
// byte of the rest, flipped one at a time: load_forest refuses each (a sealed file), and
// never loads a changed forest.
TEST_F(ForestFile, EveryFlippedByteIsRefused) {
  const std::string good = path("rf.h5"), bad = path("bad.h5");
  save_forest(*forest_, good);
  const std::vector<size_t> positions = test::flip_positions(good, 4096, 5);
  ASSERT_GT(positions.size(), 4500u);
  size_t loaded = 0;
  const size_t refused = test::count_flips(good, bad, positions, [&](size_t at) {
    try {
      auto back = load_forest(bad);
      ADD_FAILURE() << "byte " << at << " was accepted";
      expect_same_arrays(forest_->arrays(), back->arrays());
      ++loaded;
      return false;
    } catch (const FileError&) {
      return true;
    }
  });
  EXPECT_EQ(refused, positions.size());
  EXPECT_EQ(loaded, 0u);
}

// Attributes of the wrong class or shape are refused, naming them (the root ones every
// model file has and /forest's training options).
TEST_F(ForestFile, AttributesOfTheWrongTypeOrShapeAreRefused) {
  const ForestArrays& a = forest_->arrays();
  const std::pair<std::function<void(h5::FileWriter&)>, std::string> cases[] = {
      {[](h5::FileWriter& w) { w.set_attr_double("mean", 0); },
       "attribute 'mean': expected float [1], found float64 scalar"},
      {[](h5::FileWriter& w) { w.set_attr_string("classes", "3"); },
       "attribute 'classes': expected an integer scalar, found string scalar"},
      {[](h5::FileWriter& w) { w.group("forest").set_attr_double("max_depth", 4); },
       "/forest: attribute 'max_depth': expected an integer scalar, found float64 scalar"},
      {[](h5::FileWriter& w) { w.set_attr_double("epochs", 1); }, "attribute 'epochs'"},
  };
  for (const auto& [edit, fragment] : cases) {
    const std::string p = write_raw(a, "rf", 0, edit);
    try {
      load_forest(p);
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
}

// A version-1 forest file (no digest) loads, with exactly one notice line.
TEST_F(ForestFile, LegacyFileLoadsWithExactlyOneNotice) {
  const std::string p = write_raw(forest_->arrays(), "rf", 0, {}, h5::Sealing::Unsealed);
  std::vector<std::string> lines;
  const h5::NoticeSink old =
      h5::set_notice_sink([&](const std::string& line) { lines.push_back(line); });
  auto back = load_forest(p);
  h5::set_notice_sink(old);
  expect_same_arrays(forest_->arrays(), back->arrays());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(p + " has no integrity digest (format 1)"), std::string::npos)
      << lines[0];
}

TEST(ForestCuda, LabelsMatchCpu) {
  IPG_REQUIRE_CUDA();
  auto rf = RandomForest::fit(toy_set(500, 6), ForestOptions{});
  const Tensor x = toy_set(1000, 6, 5).images;
  const std::vector<int32_t> cpu = rf->labels(x).to_vector_i32();
  rf->to(Device::cuda());
  const Tensor gx = x.to(Device::cuda());
  const Tensor got = rf->labels(gx);
  EXPECT_TRUE(got.device().is_cuda());
  EXPECT_EQ(got.to_vector_i32(), cpu);
  EXPECT_EQ(rf->labels(x.narrow0(0, 1).to(Device::cuda())).to_vector_i32()[0], cpu[0]);
}

bool have_fashion_mnist_train() {
  return fs::exists(fs::path(kFashionMnistDir) / "train-labels-idx1-ubyte.gz");
}

TEST(ForestFashionMnist, FiveTreesOn5000Images) {
  if (!have_fashion_mnist_train()) GTEST_SKIP() << "Fashion-MNIST not installed at " << kFashionMnistDir;
  const Dataset train = first_rows(load_dataset("fashion-mnist", Split::Train), 5000);
  const Dataset test = first_rows(load_dataset("fashion-mnist", Split::Test), 2000);
  ForestOptions o;
  o.trees = 5;
  o.seed = 1;
  auto rf = RandomForest::fit(train, o);
  const double acc = accuracy(*rf, test);
  std::printf("  5 trees on 5000 images: test accuracy %.4f, %lld nodes\n", acc,
              static_cast<long long>(rf->num_nodes()));
  EXPECT_GT(acc, 0.75);
}

// The acceptance run (minutes on two cores):
//   ipg_tests --gtest_also_run_disabled_tests --gtest_filter='*FullTrainingSet*'
TEST(ForestFashionMnist, DISABLED_FullTrainingSet) {
  if (!have_fashion_mnist_train()) GTEST_SKIP() << "Fashion-MNIST not installed at " << kFashionMnistDir;
  const Dataset train = load_dataset("fashion-mnist", Split::Train);
  const Dataset test = load_dataset("fashion-mnist", Split::Test);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto rf = RandomForest::fit(train, ForestOptions{});
  const double fit_s = std::chrono::duration<double>(clock::now() - t0).count();
  const auto t1 = clock::now();
  const double acc = accuracy(*rf, test);
  const double predict_s = std::chrono::duration<double>(clock::now() - t1).count();
  const ForestStats s = rf->stats();
  std::printf(
      "  20 trees on %lld images with %d threads: fit %.1f s, test accuracy %.4f, "
      "predict %.0f images/s, %lld nodes, depth max %d mean %.1f\n",
      static_cast<long long>(train.size()), omp_get_max_threads(), fit_s, acc,
      test.size() / predict_s, static_cast<long long>(s.nodes), s.max_depth, s.mean_depth);
  EXPECT_GE(acc, 0.85);
}

}  // namespace
}  // namespace ipg
