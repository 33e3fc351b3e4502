// Building a target's zoo (the folder of models/zoo_manifest.h): its post-processed copies
// (positives; the WP and FP sweeps stop by the paper's 3-point rule), independently
// trained models (negatives) and, beyond the paper, extractions of it (adaptive). Every
// model is one ModelRecipe (models/recipe.h) whose single equivalent command the manifest
// records; its seed comes from the global seed and the model's name, so a model is the
// same whatever else the plan holds and however often the build was interrupted. The
// manifest is rewritten after every model, and a resumed build reuses each model whose
// file still has the manifest's sha256 and whose command is unchanged.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "models/extraction.h"
#include "models/postprocess.h"
#include "models/train.h"
#include "models/zoo_manifest.h"

namespace ipg {

// A WP or FP sweep (sweep = true: param ignored), or one post-processing.
struct PositiveSpec {
  PostProcess attack;
  bool sweep = false;
};
struct NegativeSpec {
  std::string arch;  // a network, "rf", or "same" (the target's)
  int count = 1;
};
struct AdaptiveSpec {
  Extraction kind = Extraction::Distill;
  std::string arch = "same";  // the student's
};
struct ZooPlan {
  std::vector<PositiveSpec> positives;
  std::vector<NegativeSpec> negatives;
  std::vector<AdaptiveSpec> adaptive;
};

struct ZooOptions {
  std::string target;  // the protected network's file
  std::string out;     // the zoo folder (created)
  std::string data = "fashion-mnist";
  int64_t limit = 0;  // every model trains on the first `limit` training images (0: all)
  int epochs = 2;        // post-processing (fine-tuning the target's copies)
  int fresh_epochs = 0;  // fresh networks (negatives, extractions); 0: `epochs`. A paper-scale
                         // zoo trains negatives as long as the target and fine-tunes briefly.
  int batch = 128;
  float lr = 0.01f;        // post-processing: fine-tuning a trained network
  float fresh_lr = 0.05f;  // negatives and label-only extractions: fresh networks
  // Distillation: Hinton's T^2 scaling makes the logits' gradient T (softmax(z/T) - p),
  // about T times a hard label's while the logits are small, so a fresh LeNet-5 at 0.05
  // and T = 4 dies in its first steps (test accuracy 0.10 after an epoch on 20,000
  // Fashion-MNIST images; 0.75 at 0.02, 0.69 at 0.01).
  float distill_lr = 0.02f;
  int trees = 20;          // random forests
  float temperature = 4;   // distillation
  double max_accuracy_loss = 0.03;  // the sweeps' stopping rule
  uint64_t seed = 0;
  Device device = Device::cpu();
  int threads = 0;  // recorded in the commands (CPU results depend on it); 0: OpenMP's now
  bool resume = false;  // continue a zoo whose manifest.json exists (else refused)
  // A folder of models made by other processes (models/zoo_work.h; "": none): a planned
  // model whose file is there (staged_model_path) is taken as made, not made again.
  std::string staged;
};

// The values a sweep tries, in order: WP p = 0.1, 0.2, ..., 0.9; FP c = 1/16, ..., 15/16.
std::vector<double> sweep_values(Attack a);

// The paper's stopping rule for the WP and FP sweeps (section 5.1.2, Weight pruning: "We
// increase p from 0.1 with a step size 0.1 until the accuracy loss is larger than 3%
// ... each p corresponds to a pruned version of the target classifier", and for FP "We
// increase c from 1/16 with a step size 1/16 until the accuracy loss is larger than 3%").
// Its example ("if we can prune at most p = 0.5 ... such that the accuracy loss is no
// larger than 3%, then we have 5 suspect classifiers") says which values are kept: those
// whose loss (target accuracy minus the suspect's, as fractions: 3% is 0.03) is at most
// max_loss; the first value past it stops the sweep and is not kept.
// `measure(v)` makes the suspect for value v and returns its accuracy; it is called for
// each value in order and never after the one that stops the sweep.
struct SweepResult {
  std::vector<double> kept;
  std::optional<double> stopped_at;  // none: every value was within the limit
  double stop_accuracy = -1;
};
// The rule itself: whether `accuracy` loses more than max_loss against the target's.
// Accuracies are counts over the test set: a loss of exactly max_loss (0.9049 - 0.8749,
// 0.030000000000000027 in doubles) is within it, whatever the last bit of its double.
bool loses_too_much(double target_accuracy, double accuracy, double max_loss);
SweepResult run_sweep(const std::vector<double>& values, double target_accuracy,
                      double max_loss, const std::function<double(double)>& measure);

// A model's seed: a function of the global seed and a key alone (31 bits). The key is the
// model's file name without ".h5" (e.g. "negative/lenet5-seed2"), except that all values
// of a WP or FP sweep share "positive/wp" or "positive/fp": they then differ in their
// pruning alone (a controlled variable), and two values that prune the same weights make
// identical models, which duplicate detection counts once.
uint64_t model_seed(uint64_t global_seed, const std::string& key);

// What build_zoo reports as it goes (on the calling thread).
struct ZooEvent {
  enum class Kind {
    Target,     // the target copied and measured (accuracy)
    Begin,      // a model starts (index, planned, file, description)
    Batch,      // training progress (epoch, done, total, loss)
    Epoch,      // an epoch ended (report)
    Trees,      // forest progress (done, total)
    Done,       // a model was made and kept (accuracy, seconds)
    Reused,     // --resume: the model is in the manifest with its file intact (accuracy)
    Duplicate,  // the model has the weights of `duplicate_of`: its file is not kept
                // (Done carries same_outputs_as when weights differ but test logits not)
    SweepStop,  // a sweep's value lost more than the limit (param, accuracy): not kept
  };
  explicit ZooEvent(Kind k) : kind(k) {}
  Kind kind;
  std::string file;  // e.g. "positive/wp-0.2.h5"
  int index = 0;     // 1-based, among the models of the plan so far
  int planned = 0;   // at most this many models (sweeps may stop early)
  std::string description;
  std::string again;  // Begin: why a model the old manifest lists is made again ("": new)
  int epoch = 0;
  int64_t done = 0, total = 0;
  double loss = 0;
  const EpochReport* report = nullptr;
  double accuracy = -1;
  double param = 0;
  double seconds = 0;  // Done: making it took; -1: made by another process (ZooOptions::staged)
  std::string duplicate_of;
  std::string same_outputs_as;
};
using ZooProgress = std::function<void(const ZooEvent&)>;

struct ZooResult {
  ZooManifest manifest;
  int made = 0, reused = 0, duplicates = 0;
  int same_outputs = 0;  // kept models with another's test logits (ZooEntry::same_outputs_as)
  double target_accuracy = 0;
  double seconds = 0;
};

// Checks the plan against the target before anything is written or trained: the target
// is a network file; every architecture is known; counts are 1-100; no two models share
// a file name; unless resuming, the folder holds no manifest and none of the files the
// plan would write (zoo_files; the target's copy may be the target itself); resuming, its
// manifest's models were made with these options (zoo_resume.h option_mismatch).
// std::invalid_argument (a usage error) or FileError (an unreadable target) otherwise.
// The two halves apart, for a caller with checks of its own in between (the CLI names an
// output that would replace an input before it says the folder is taken):
void check_zoo(const ZooPlan& plan, const ZooOptions& options);
void check_zoo_plan(const ZooPlan& plan, const ZooOptions& options);    // all but the folder
void check_zoo_folder(const ZooPlan& plan, const ZooOptions& options);  // manifest, files there

// Every file (relative to the folder) the plan may write: target.h5, manifest.json and
// each model's file, every value of a sweep included. For the callers' output checks
// (a model must not land on an input). Needs a readable target ("same" is its arch).
std::vector<std::string> zoo_files(const ZooPlan& plan, const ZooOptions& options);

// check_zoo, then builds the zoo (see the top of this file). A model that fails to train
// is a std::runtime_error naming its file.
ZooResult build_zoo(const ZooPlan& plan, const ZooOptions& options,
                    const ZooProgress& progress = {});

}  // namespace ipg
