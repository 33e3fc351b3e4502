// A tiny zoo folder for the experiment's end-to-end tests, built through the library in a
// few seconds on 2 cores: the shipped LeNet-5 (weights/) as target, three post-processed
// copies of it (FTAL, FTLL, 30% weight pruning + fine-tuning, one epoch on 2,000 images)
// as positives, two LeNet-5s of other seeds (two epochs on 4,000 images) and a small
// random forest as negatives.
#pragma once

#include <string>

#include "models/data/dataset.h"

namespace ipg::test {

// Builds the zoo into `dir` (created; target.h5, positive/, negative/) and returns the
// training images used (for the T modes).
Dataset build_tiny_zoo(const std::string& dir);

}  // namespace ipg::test
