// A tiny zoo folder for the experiment's end-to-end tests, built through the library in a
// few seconds on 2 cores: the shipped LeNet-5 (weights/) as target, three post-processed
// copies of it (FTAL, FTLL, 30% weight pruning + fine-tuning, one epoch on 2,000 images)
// as positives, two LeNet-5s of other seeds (two epochs on 4,000 images) and a small
// random forest as negatives.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "models/data/dataset.h"

namespace ipg::test {

// Builds the zoo into `dir` (created; target.h5, positive/, negative/) and returns the
// training images used (for the T modes).
Dataset build_tiny_zoo(const std::string& dir);

// A test suite sharing one tiny zoo: built once per process (each ctest case is its own
// process) under a temporary folder named by the suite and the pid, removed at the end.
// root() holds zoo/ and whatever the tests write beside it.
class TinyZooSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  static const std::filesystem::path& root() { return *root_; }
  static const Dataset& train() { return *train_; }

 private:
  static std::filesystem::path* root_;
  static Dataset* train_;
};

}  // namespace ipg::test
