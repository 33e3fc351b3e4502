// One model from a recipe: what `ipguard train`, `ipguard postprocess` and every model of
// `ipguard zoo` run, so that a zoo's model and the single command its manifest records
// make the same file, bit for bit (same seed, device and thread count).
// A recipe starts from one of: a fresh network (arch), a random forest (arch "rf"), a
// network file modified by Modifications (post-processing), or a fresh network taught
// by a teacher network file (extraction: distillation or label-only).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/data/dataset.h"
#include "models/extraction.h"
#include "models/forest.h"
#include "models/model_file.h"
#include "models/postprocess.h"
#include "models/train.h"

namespace ipg {

struct ModelRecipe {
  std::string arch;     // a fresh network or "rf" (with extraction: the student's arch)
  std::string init;     // or: start from this network file, modified by `mods`
  std::string teacher;  // or, with `extraction`: the network file to extract
  Modifications mods;
  std::optional<Extraction> extraction;
  float temperature = 4;  // distillation
  std::string data = "fashion-mnist";  // the dataset spec, recorded in the provenance
  int64_t limit = 0;                   // the training set is its first `limit` images (0: all)
  std::string augment = "auto";        // auto (on for CIFAR), on, off
  uint64_t seed = 0;  // weights of a fresh network, shuffling, augmentation, re-init, trees
  TrainOptions opt;   // epochs, batch, lr ...; seed, masks, augment, soft targets set here
  ForestOptions forest;  // arch "rf"; its seed is `seed`
};

// The first `limit` rows of a dataset (all when limit <= 0), sharing storage.
Dataset first_rows(const Dataset& d, int64_t limit);

// Per-channel mean and standard deviation of a dataset's pixels (a fresh network folds
// them into its input normalization).
void channel_stats(const Dataset& d, std::vector<float>* mean, std::vector<float>* stdev);

// A fresh network of `arch` for a dataset's images and `classes` classes (the dataset's
// when 0): input shape, channel statistics, weights drawn from `seed`.
std::unique_ptr<Network> fresh_network(const std::string& arch, const Dataset& train_set,
                                       uint64_t seed, int classes = 0);

// Throws FileError naming the file when a recipe's file cannot play its part, read from the
// file's header alone (no weights, no dataset): an init that is an ONNX model (it cannot be
// trained into a native file) or a random forest (no gradients to fine-tune along), a
// teacher that is a forest (an extraction learns from a network's outputs). Files that
// cannot be read are left to the loader's errors. prepare_model calls it; commands call it
// before loading the dataset.
void check_recipe_files(const ModelRecipe& r);

// A recipe ready to train: its network built (and modified, or its teacher's labels
// computed), its options final. Nothing trained yet: callers report what will happen.
struct PreparedModel {
  std::unique_ptr<Network> net;  // null for a forest
  TrainOptions opt;
  Dataset train_set;   // what it trains on (for an extraction, the teacher's labels)
  std::string recipe;  // the provenance text
  bool from_file = false;  // started from `init` (fine-tuning) rather than fresh
};
// Throws std::invalid_argument for a recipe that names no source or two, an init or
// teacher file whose input shape is not the dataset's, an unknown architecture;
// FileError for a file that is not a network.
PreparedModel prepare_model(const ModelRecipe& r, const Dataset& train_set, Device device);

struct MadeModel {
  std::unique_ptr<Network> net;  // one of the two
  std::unique_ptr<RandomForest> forest;
  Provenance provenance;  // accuracy: on the test set
  std::vector<EpochReport> epochs;
  double fit_seconds = 0;  // forests
};
struct MakeCallbacks {
  EpochCallback epoch;
  BatchCallback batch;
  ProgressCallback trees;  // forests: trees done of total
};
// Trains a prepared model (a forest is fitted here) and measures it on `test`.
MadeModel train_prepared(PreparedModel&& m, const ModelRecipe& r, const Dataset& test,
                         const MakeCallbacks& callbacks = {});
// prepare_model + train_prepared.
MadeModel make_model(const ModelRecipe& r, const Dataset& train_set, const Dataset& test,
                     Device device, const MakeCallbacks& callbacks = {});

// Saves a made model (sealed, atomically) to `path`, on the CPU.
void save_made_model(MadeModel& m, const std::string& path);

// SHA-256 of a model's weights alone (names, shapes and values of every parameter and
// buffer; a forest's arrays), not of its file: two models with the same digest compute the
// same function, whatever their provenance says. The zoo's duplicate detection.
std::string weights_sha256(Network& net);
std::string weights_sha256(const RandomForest& forest);
// Of a model file (network or forest), loaded with every check.
std::string weights_sha256_file(const std::string& path);

}  // namespace ipg
