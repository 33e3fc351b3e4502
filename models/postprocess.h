// The paper's post-processing attacks (section 5.1.2) as types: what `ipguard postprocess`,
// `ipguard train --init ...` and the zoo turn a target network into a positive suspect
// with. An attack is a set of modifications (re-initialize the last layer, prune weights
// or filters) followed by training (the last layer alone or all layers).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/data/dataset.h"
#include "models/network.h"
#include "models/train.h"

namespace ipg {

enum class Attack {
  FTLL,         // fine-tune the last layer
  FTAL,         // fine-tune all layers
  RTLL,         // re-initialize the last layer, train it alone
  RTAL,         // re-initialize the last layer, train all layers
  WeightPrune,  // WP: prune fraction p of the smallest-|w| weights, retrain
  FilterPrune,  // FP: prune fraction c of the smallest-L1 filters per layer, retrain
};

struct PostProcess {
  Attack attack = Attack::FTAL;
  double param = 0;  // WP's p or FP's c in (0, 1); 0 for the others
};

// "ftll", "ftal", "rtll", "rtal", "wp", "fp".
std::string attack_name(Attack a);
// "ftll" ... "rtal", "wp:P", "fp:C" (P, C in (0, 1)) -> PostProcess; std::invalid_argument
// starting with the text otherwise ("x: unknown attack (ftll, ftal, rtll, rtal, wp:P,
// fp:C)", "wp:2: the fraction after 'wp:' must be in (0, 1)").
PostProcess parse_post_process(const std::string& text);
// The inverse: "ftll", "wp:0.2", "fp:0.0625" (the shortest text that reads back the same).
std::string to_string(const PostProcess& p);
// "wp:0.2" -> "wp-0.2": the suspect's file name without '.h5'.
std::string file_stem(const PostProcess& p);

// The shortest decimal text that parses back to exactly v (0.1 -> "0.1", 1/16 ->
// "0.0625"): parameters in names and commands reproduce the same double.
std::string exact_number(double v);

// What training starts from: any combination (`ipguard train --init` takes them apart);
// an Attack is one of them.
struct Modifications {
  bool reinit_last = false;      // RTLL, RTAL
  bool last_layer_only = false;  // FTLL, RTLL
  double prune_weights = 0;      // WP
  double prune_filters = 0;      // FP
};
Modifications modifications(const PostProcess& p);

// Applies m to net before training: the last layer re-initialized (from `seed`), pruning
// masks computed on the current weights and added to opt->masks, opt->last_layer_only set.
// Returns what was done for the provenance recipe (", last layer re-initialized, 0.2 of
// weights pruned, last layer only"; "" for plain fine-tuning). The last layer is drawn
// from a stream of its own (seed mixed), apart from the shuffling's.
std::string apply_modifications(Network& net, const Modifications& m, uint64_t seed,
                                TrainOptions* opt);

// A post-processed copy of `target` (loaded by the caller, which hands it over): the
// attack's modifications, then `opt.epochs` of training on train_set (test accuracy on
// `test` after each epoch when given). opt.seed draws the shuffling and the re-initialized
// last layer.
struct Suspect {
  std::unique_ptr<Network> net;
  std::vector<EpochReport> epochs;
  std::string applied;  // apply_modifications' text
};
Suspect post_process(std::unique_ptr<Network> target, const PostProcess& p,
                     const Dataset& train_set, const Dataset* test, TrainOptions opt,
                     const EpochCallback& on_epoch = {}, const BatchCallback& on_batch = {});

}  // namespace ipg
