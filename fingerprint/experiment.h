// The paper's evaluation (section 5) over a zoo folder (fingerprint/experiment_zoo.h):
// every setting (a method with its parameters, a mode, a convergence policy) extracts a
// fingerprint from the target, every suspect is verified against it, and the matching
// rates of the positive (post-processed copies) and negative (independently trained)
// suspects give ARUC (r = 100), AUC and the TPR at FPR <= 5%.
//
// Unconverged candidates: under Convergence::Paper a candidate that never meets its
// method's success rule is kept as it ended (the paper's behaviour, counted in
// `converged`). Under Convergence::UntilConverged new candidates are drawn, in rounds,
// until n have succeeded or max_draws_factor * n were drawn; the fingerprint is the n
// first successes in draw order, topped up (only when the cap was reached) with the first
// unconverged candidates. Round 0 is the paper's own draw (same seed); round r > 0 uses
// round_seed(seed, r).
#pragma once

#include <stdint.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "fingerprint/experiment_zoo.h"
#include "fingerprint/extract.h"

namespace ipg {

enum class Method { IPGuard, CWL2, FGSM, IGSM, Random };
enum class Init { Train, Random };
enum class TargetLabel { LeastLikely, Random };
enum class Convergence { Paper, UntilConverged };

constexpr Method kAllMethods[] = {Method::IPGuard, Method::CWL2, Method::FGSM, Method::IGSM,
                                  Method::Random};

const char* method_name(Method m);  // "ipguard" | "cwl2" | "fgsm" | "igsm" | "random"
Method parse_method(const std::string& name);  // std::invalid_argument for an unknown name
// The parameter a method's grid runs over: "k" (ipguard, cwl2), "eps" (fgsm, igsm), "" (random).
const char* param_name(Method m);
const char* convergence_name(Convergence c);  // "paper" | "until-converged"

// Initialization and target-label choice (the paper's Table 3: TL, TR, RL, RR).
struct Mode {
  Init init = Init::Train;
  TargetLabel target = TargetLabel::LeastLikely;
  bool operator==(const Mode& o) const { return init == o.init && target == o.target; }
};
std::string mode_suffix(const Mode& m);  // "TL", "TR", "RL", "RR"
std::string mode_long(const Mode& m);    // "train/least-likely", ...
Mode parse_mode(const std::string& s);   // either form; std::invalid_argument otherwise
constexpr Mode kAllModes[] = {{Init::Train, TargetLabel::LeastLikely},
                              {Init::Train, TargetLabel::Random},
                              {Init::Random, TargetLabel::LeastLikely},
                              {Init::Random, TargetLabel::Random}};

// What one method runs with besides its grid parameter (each used only by the methods
// extract.h says).
struct MethodBudget {
  int64_t iters = 1000;       // ipguard, igsm; cwl2: per binary-search step
  double lr = 0.01;           // ipguard, cwl2: Adam's learning rate
  int64_t binary_steps = 9;   // cwl2
  double c0 = 1e-3;           // cwl2
  double alpha = 1.0 / 255;   // igsm
  bool operator==(const MethodBudget& o) const {
    return iters == o.iters && lr == o.lr && binary_steps == o.binary_steps && c0 == o.c0 &&
           alpha == o.alpha;
  }
};

struct Setting {
  Method method = Method::IPGuard;
  double param = 0;  // k (ipguard, cwl2) or eps (fgsm, igsm); 0 for random
  Mode mode;
  Convergence convergence = Convergence::Paper;
  MethodBudget budget;
  bool operator==(const Setting& o) const {
    return method == o.method && param == o.param && mode == o.mode &&
           convergence == o.convergence && budget == o.budget;
  }
};
// "ipguard k=3 TL" (+ " until-converged"); a file-name-safe id: "ipguard_k3_TL" (+ "_uc").
std::string setting_label(const Setting& s);
std::string setting_id(const Setting& s);
// The extraction options of one setting (n, batch, seed, check_every from `common`).
ExtractOptions extract_options(const Setting& s, const ExtractOptions& common);

struct ExperimentOptions {
  int64_t n = 100;             // fingerprint points
  int64_t batch = 0;           // candidates run together (0: extract.h's auto_batch)
  uint64_t seed = 0;           // every setting starts from the same draw
  int64_t check_every = 0;     // extract.h (0: the device's default)
  int64_t max_draws_factor = 10;  // until-converged: at most this many times n candidates
  int predict_batch = 500;
  // Settings whose first draws can run as one batch (extract_fingerprints: the same method
  // and budget, any k, mode or policy; CW-L2 each with its own early abort) share one:
  // batch_groups. Each setting's
  // points are the ones it gets alone (the same bits on the CPU); it fills a GPU that one
  // fingerprint leaves mostly idle; on a few CPU cores it gains nothing.
  bool share_batch = false;
};
uint64_t round_seed(uint64_t seed, int64_t round);

// One suspect's matching rate.
struct SuspectRate {
  std::string file;
  double rate = 0;
};

struct SettingResult {
  Setting setting;
  double aruc = 0, auc = 0, tpr_at_fpr5 = 0;
  std::vector<SuspectRate> positive, negative, adaptive;  // in zoo order
  int64_t points = 0, converged = 0, drawn = 0;
  std::vector<int64_t> rounds;  // candidates drawn per round (until-converged; {n} otherwise)
  std::vector<int64_t> origin;  // per point: its index among all candidates drawn
  double extract_seconds = 0, seconds_per_100 = 0;
  bool resumed = false;  // taken from an earlier run's results (its times too)
  int threads = 0;       // the CPU threads it was timed with (0: not recorded)
  // Settings whose first draw ran in one batch, this one included (1: alone). A shared
  // batch's time is divided equally among them (their candidate counts are equal); later
  // until-converged rounds run alone and are added to their setting's time.
  int64_t shared = 1;
  std::string fingerprint_file, fingerprint_sha256;  // set by whoever saves the fingerprint
  std::vector<double> rates(SuspectGroup g) const;
};

// A suspect the runner loaded (suspects that fail to load become Zoo problems).
struct LoadedSuspect {
  const ZooModel* model = nullptr;
  std::string family;  // "lenet5", "resnet20", ..., "rf": what Table 5 groups negatives by
  std::unique_ptr<Classifier> classifier;
};

// What the runner reports while it works (progress on stderr in the CLI).
struct ExperimentProgress {
  enum class Phase { Loading, Extracting, Labeling, Done } phase = Phase::Loading;
  size_t setting = 0, settings = 0;  // 0-based index of the setting, and how many
  const Setting* current = nullptr;
  ExtractProgress extract;           // Extracting
  int64_t round = 0, drawn = 0, converged = 0;
  size_t shared = 1;                 // Extracting: settings in the batch (from `setting` on)
  size_t suspect = 0, suspects = 0;  // Loading / Labeling
  std::string file;                  // the suspect loaded or labeled
  const SettingResult* result = nullptr;  // Done
};

struct ExperimentHooks {
  std::function<void(const ExperimentProgress&)> progress;
  // A result the caller already has for this setting (a resumed run): not redone.
  std::function<std::optional<SettingResult>(const Setting&)> reuse;
  // Each new result with its fingerprint, before the next setting starts (it may fill in
  // the result's fingerprint_file and fingerprint_sha256 when it saves the fingerprint).
  std::function<void(SettingResult&, const Fingerprint&)> on_result;
};

struct LoadedZoo {
  std::unique_ptr<Network> target;
  std::string target_sha256;  // of the target's file: each fingerprint's model_sha256
  std::vector<LoadedSuspect> suspects;  // zoo order
};

// Loads the target onto `device` (any failure is fatal: std::runtime_error naming it) and
// the suspects: one that fails to load, or cannot label an input of the target's shape, is
// moved to zoo.problems and the rest are used; at least one positive and one negative must
// remain (std::runtime_error otherwise). The loaded suspects point into zoo.suspects:
// `zoo` must outlive the result and not change.
LoadedZoo load_zoo(Zoo& zoo, Device device,
                   const std::function<void(const ExperimentProgress&)>& progress = {});

// Runs every setting (options.share_batch: in batch groups). train_images: float32
// [N, C, H, W] on the CPU, needed when a setting's mode initializes from training images.
// Results in the order of `settings`, each recorded (on_result, Done) before the next.
std::vector<SettingResult> run_experiment(LoadedZoo& zoo, const std::vector<Setting>& settings,
                                          const ExperimentOptions& options,
                                          const Tensor* train_images, Device device,
                                          const ExperimentHooks& hooks = {});

// One batch group of run_experiment (indices into `planned`, from batch_groups): one
// extraction of the group, then each setting's matching rates; fingerprints in `fps`,
// group order. What a process given a share of the work runs
// (tools/ipguard/mpi_experiment.cpp).
std::vector<SettingResult> run_settings(
    LoadedZoo& zoo, const std::vector<Setting>& planned, const std::vector<size_t>& group,
    const ExperimentOptions& options, const Tensor* train_images, Device device,
    std::vector<Fingerprint>& fps,
    const std::function<void(const ExperimentProgress&)>& progress = {});

// Which settings run_experiment extracts as one batch: groups of indices into `settings`,
// every index once, ordered by their first member. A setting joins the first group whose
// first member it can share a batch with (batch_share_mismatch of their round-0 options);
// without options.share_batch every group holds one setting.
std::vector<std::vector<size_t>> batch_groups(const std::vector<Setting>& settings,
                                              const ExperimentOptions& options);
// The same over planned[i] for i in `among`, the groups as indices into `planned`.
std::vector<std::vector<size_t>> batch_groups(const std::vector<Setting>& planned,
                                              const std::vector<size_t>& among,
                                              const ExperimentOptions& options);

// The extraction of settings that share their first draw's batch (one setting: alone),
// with each one's convergence policy after it: the fingerprints, and in `results` (one per
// setting, `setting` set) points, converged, drawn, rounds, origin, shared and the times.
// Progress names a setting by its index in `group` (the shared first draw: 0).
std::vector<Fingerprint> extract_settings(
    Network& target, const std::vector<Setting>& group, const ExperimentOptions& options,
    const Tensor* train_images, std::vector<SettingResult>& results,
    const std::function<void(const ExperimentProgress&)>& progress = {});

// Every suspect's matching rate on a setting's fingerprint, and the metrics, into `r`.
void rate_suspects(LoadedZoo& zoo, const Fingerprint& fp, SettingResult& r, size_t index,
                   size_t count, const ExperimentOptions& options, Device device,
                   const std::function<void(const ExperimentProgress&)>& progress = {});

// The starting images [count, C, H, W] (CPU) of a result's first `count` points, drawn
// again from their rounds' seeds (what the report shows beside the points).
Tensor start_images(Network& target, const SettingResult& result, const ExperimentOptions& options,
                    const Tensor* train_images, int64_t count);

}  // namespace ipg
