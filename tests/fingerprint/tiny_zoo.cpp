// The tiny zoo (tiny_zoo.h): each model as the zoo command would make it, only smaller.
#include "tests/fingerprint/tiny_zoo.h"

#include <unistd.h>

#include <filesystem>

#include "models/forest.h"
#include "models/forest_file.h"
#include "models/model_file.h"
#include "models/prune.h"
#include "models/train.h"

namespace ipg::test {

namespace fs = std::filesystem;

namespace {

Dataset first(const Dataset& d, int64_t begin, int64_t count) {
  Dataset out;
  out.name = d.name;
  out.num_classes = d.num_classes;
  out.images = d.images.narrow0(begin, count).clone();
  out.labels = d.labels.narrow0(begin, count).clone();
  return out;
}

std::unique_ptr<Network> trained_lenet(const Dataset& data, uint64_t seed) {
  ModelConfig cfg;
  cfg.arch = "lenet5";
  cfg.seed = seed;
  auto net = make_network(cfg);
  TrainOptions o;
  o.epochs = 2;
  o.seed = seed;
  train(*net, data, nullptr, o);
  return net;
}

void fine_tune(const std::string& from, const std::string& to, const Dataset& data, bool last,
               double prune) {
  auto net = load_model(from);
  TrainOptions o;
  o.epochs = 1;
  o.lr = 0.01f;
  o.seed = 11;
  o.last_layer_only = last;
  if (prune > 0) o.masks = prune_weights(*net, prune);
  train(*net, data, nullptr, o);
  save_model(*net, to);
}

}  // namespace

Dataset build_tiny_zoo(const std::string& dir) {
  fs::create_directories(fs::path(dir) / "positive");
  fs::create_directories(fs::path(dir) / "negative");
  const Dataset all = load_dataset("fashion-mnist", Split::Train);
  const Dataset train_a = first(all, 0, 4000), train_b = first(all, 4000, 2000);
  // The target: the shipped LeNet-5 (90.6% test accuracy); a target trained here for a few
  // seconds labels too weakly for IPGuard's margin to be reached on most points.
  const std::string target = dir + "/target.h5";
  fs::copy_file(std::string(IPG_TEST_DATA_DIR) + "/../../weights/lenet5-fashion-mnist.h5", target);
  fine_tune(target, dir + "/positive/ftal.h5", train_b, false, 0);
  fine_tune(target, dir + "/positive/ftll.h5", train_b, true, 0);
  fine_tune(target, dir + "/positive/wp-0.3.h5", train_b, false, 0.3);
  save_model(*trained_lenet(train_a, 2), dir + "/negative/lenet5-seed2.h5");
  save_model(*trained_lenet(train_b, 3), dir + "/negative/lenet5-seed3.h5");
  ForestOptions f;
  f.trees = 5;
  f.seed = 4;
  save_forest(*RandomForest::fit(first(all, 0, 2000), f), dir + "/negative/rf.h5");
  return train_a;
}

std::filesystem::path* TinyZooSuite::root_ = nullptr;
Dataset* TinyZooSuite::train_ = nullptr;

void TinyZooSuite::SetUpTestSuite() {
  const std::string suite = ::testing::UnitTest::GetInstance()->current_test_suite()->name();
  root_ = new fs::path(fs::temp_directory_path() /
                       ("ipg_" + suite + "_" + std::to_string(::getpid())));
  fs::remove_all(*root_);
  train_ = new Dataset(build_tiny_zoo((*root_ / "zoo").string()));
}

void TinyZooSuite::TearDownTestSuite() {
  fs::remove_all(*root_);
  delete root_;
  delete train_;
  root_ = nullptr;
  train_ = nullptr;
}

}  // namespace ipg::test
