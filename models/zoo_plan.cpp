// The zoo's plan: the sweeps' values and stopping rule, seeds from names, the checks made
// before anything is trained, and each model's recipe and equivalent command.
#include "models/zoo_plan.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/hdf5.h"
#include "engine/sha256.h"
#include "models/forest_file.h"
#include "models/model_file.h"
#include "models/onnx_model.h"
#include "models/zoo_resume.h"

namespace ipg {

std::vector<double> sweep_values(Attack a) {
  std::vector<double> v;
  if (a == Attack::WeightPrune)
    for (int k = 1; k <= 9; ++k) v.push_back(k / 10.0);  // k / 10.0: 0.3, not 0.30000000000000004
  else if (a == Attack::FilterPrune)
    for (int k = 1; k <= 15; ++k) v.push_back(k / 16.0);
  else
    throw std::invalid_argument("sweep_values: only wp and fp sweep, not " + attack_name(a));
  return v;
}

bool loses_too_much(double target_accuracy, double accuracy, double max_loss) {
  return target_accuracy - accuracy > max_loss + 1e-9;
}

SweepResult run_sweep(const std::vector<double>& values, double target_accuracy,
                      double max_loss, const std::function<double(double)>& measure) {
  SweepResult r;
  for (double v : values) {
    const double accuracy = measure(v);
    if (loses_too_much(target_accuracy, accuracy, max_loss)) {
      r.stopped_at = v;
      r.stop_accuracy = accuracy;
      break;
    }
    r.kept.push_back(v);
  }
  return r;
}

uint64_t model_seed(uint64_t global_seed, const std::string& key) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the key
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
  uint64_t z = global_seed + h + 0x9E3779B97F4A7C15ull;  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z >> 33;  // 31 bits: short in commands, exact in every JSON reader
}

namespace zoo_detail {

std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string("_-./:=,+@%").find(c) !=
                                                              std::string::npos;
  });
  if (plain) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string command_body(const std::string& command) {
  const size_t at = command.find(" --seed ");
  return at == std::string::npos ? command : command.substr(at);
}

int recorded_threads(const ZooOptions& o) {
  return o.threads > 0 ? o.threads : omp_get_max_threads();
}

namespace {

std::string out_path(const ZooOptions& o, const std::string& file) {
  return (std::filesystem::path(o.out) / file).string();
}

// A float option as the command line spells it: the shortest text a float reads back
// from exactly (0.01, not the 0.009999999776482582 of its double).
std::string float_word(float v) {
  char buf[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, double(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;
}

int fresh_epochs(const ZooOptions& o) { return o.fresh_epochs > 0 ? o.fresh_epochs : o.epochs; }

std::string epochs_on(int epochs) {
  return std::to_string(epochs) + (epochs == 1 ? " epoch on " : " epochs on ");
}

// "ipguard --device D --threads N --seed S" + the subcommand's words.
std::string command(const ZooOptions& o, uint64_t seed, const std::string& rest) {
  return "ipguard --device " + o.device.str() + " --threads " +
         std::to_string(recorded_threads(o)) + " --seed " + std::to_string(seed) + " " + rest;
}

// The options every trained model shares, as the command spells them.
std::string training_words(const ZooOptions& o, int epochs, float lr) {
  return " --data " + shell_word(o.data) + " --epochs " + std::to_string(epochs) + " --lr " +
         float_word(lr) + " --batch " + std::to_string(o.batch) +
         (o.limit > 0 ? " --limit " + std::to_string(o.limit) : "");
}

ModelRecipe base_recipe(const ZooOptions& o, uint64_t seed, int epochs, float lr) {
  ModelRecipe r;
  r.data = o.data;
  r.limit = o.limit;
  r.seed = seed;
  r.opt.epochs = epochs;
  r.opt.batch = o.batch;
  r.opt.lr = lr;
  return r;
}

std::string images(const ZooOptions& o) {
  return o.limit > 0 ? "the first " + std::to_string(o.limit) + " images" : "all images";
}

}  // namespace

Planned plan_positive(const ZooOptions& o, const TargetInfo& t, const PostProcess& p) {
  Planned m;
  m.file = "positive/" + file_stem(p) + ".h5";
  m.group = "positive";
  m.attack = attack_name(p.attack);
  m.arch = t.arch;
  if (p.attack == Attack::WeightPrune || p.attack == Attack::FilterPrune) m.param = p.param;
  // The values of one pruning attack share a seed (model_seed in models/zoo.h).
  const bool pruning = m.param.has_value();
  const uint64_t seed =
      model_seed(o.seed, pruning ? "positive/" + m.attack : m.file.substr(0, m.file.size() - 3));
  m.recipe = base_recipe(o, seed, o.epochs, o.lr);
  m.recipe.init = o.target;
  m.recipe.mods = modifications(p);
  m.command = command(o, seed,
                      "postprocess --model " + shell_word(o.target) + " --attack " +
                          to_string(p) + training_words(o, o.epochs, o.lr) + " --out " +
                          shell_word(out_path(o, m.file)));
  m.description = to_string(p) + " of the target, " + epochs_on(o.epochs) + images(o);
  return m;
}

Planned plan_negative(const ZooOptions& o, const std::string& arch, int i) {
  Planned m;
  m.file = "negative/" + arch + "-seed" + std::to_string(i) + ".h5";
  m.group = "negative";
  m.attack = "independent";
  m.arch = arch;
  const uint64_t seed = model_seed(o.seed, m.file.substr(0, m.file.size() - 3));
  m.recipe = base_recipe(o, seed, fresh_epochs(o), o.fresh_lr);
  m.recipe.arch = arch;
  if (arch == "rf") {
    m.recipe.forest.trees = o.trees;
    m.command = command(o, seed,
                        "train --arch rf --trees " + std::to_string(o.trees) + " --data " +
                            shell_word(o.data) +
                            (o.limit > 0 ? " --limit " + std::to_string(o.limit) : "") +
                            " --out " + shell_word(out_path(o, m.file)));
    m.description = "a random forest of " + std::to_string(o.trees) + " trees on " + images(o);
  } else {
    m.command = command(o, seed,
                        "train --arch " + arch + training_words(o, fresh_epochs(o), o.fresh_lr) +
                            " --out " +
                            shell_word(out_path(o, m.file)));
    m.description = "a fresh " + arch + ", " + epochs_on(fresh_epochs(o)) + images(o);
  }
  return m;
}

Planned plan_adaptive(const ZooOptions& o, const TargetInfo& t, const AdaptiveSpec& a) {
  Planned m;
  m.arch = a.arch == "same" ? t.arch : a.arch;
  m.attack = extraction_name(a.kind);
  m.file = "adaptive/" + m.attack + "-" + m.arch + ".h5";
  m.group = "adaptive";
  if (a.kind == Extraction::Distill)  // its parameter, as the command spells it
    m.param = std::strtod(float_word(o.temperature).c_str(), nullptr);
  const uint64_t seed = model_seed(o.seed, m.file.substr(0, m.file.size() - 3));
  const float lr = a.kind == Extraction::Distill ? o.distill_lr : o.fresh_lr;
  m.recipe = base_recipe(o, seed, fresh_epochs(o), lr);
  m.recipe.arch = m.arch;
  m.recipe.teacher = o.target;
  m.recipe.extraction = a.kind;
  m.recipe.temperature = o.temperature;
  m.command = command(o, seed,
                      "postprocess --model " + shell_word(o.target) + " --attack " + m.attack +
                          ":" + m.arch +
                          (a.kind == Extraction::Distill
                               ? " --temperature " + float_word(o.temperature)
                               : "") +
                          training_words(o, fresh_epochs(o), lr) + " --out " +
                          shell_word(out_path(o, m.file)));
  m.description = (a.kind == Extraction::Distill
                       ? "a fresh " + m.arch + " distilled from the target at temperature " +
                             float_word(o.temperature)
                       : "a fresh " + m.arch + " trained on the target's labels") +
                  ", " + epochs_on(fresh_epochs(o)) + images(o);
  return m;
}

TargetInfo read_target_info(const ZooOptions& o) {
  const ModelInfo info = read_model_info(o.target);
  return {info.config.arch, info.config.classes};
}

std::vector<Planned> planned_models(const ZooPlan& plan, const ZooOptions& o, const TargetInfo& t) {
  std::vector<Planned> all;
  for (const PositiveSpec& p : plan.positives) {
    if (!p.sweep) {
      all.push_back(plan_positive(o, t, p.attack));
      continue;
    }
    for (double v : sweep_values(p.attack.attack)) {
      PostProcess q = p.attack;
      q.param = v;
      all.push_back(plan_positive(o, t, q));
      all.back().sweep = attack_name(p.attack.attack);
    }
  }
  std::map<std::string, int> per_arch;  // negatives numbered per architecture
  for (const NegativeSpec& n : plan.negatives) {
    const std::string arch = n.arch == "same" ? t.arch : n.arch;
    for (int i = 0; i < n.count; ++i) all.push_back(plan_negative(o, arch, ++per_arch[arch]));
  }
  for (const AdaptiveSpec& a : plan.adaptive) all.push_back(plan_adaptive(o, t, a));
  return all;
}

}  // namespace zoo_detail

std::vector<std::string> zoo_files(const ZooPlan& plan, const ZooOptions& o) {
  std::vector<std::string> files = {"target.h5", "manifest.json"};
  for (const zoo_detail::Planned& p :
       zoo_detail::planned_models(plan, o, zoo_detail::read_target_info(o)))
    files.push_back(p.file);
  return files;
}

void check_zoo_plan(const ZooPlan& plan, const ZooOptions& o) {
  using std::invalid_argument;
  // The target: a network file that loads with every check.
  std::string arch;
  std::error_code target_ec;
  if (std::filesystem::is_regular_file(o.target, target_ec) && is_onnx_file(o.target))
    throw invalid_argument("--target " + o.target + " is an ONNX model; a zoo's target is a " +
                           "network file of ours (an ONNX model cannot be post-processed)");
  try {
    if (is_forest_file(o.target))
      throw invalid_argument("--target " + o.target + " is a random forest; a zoo's target is "
                             "a network");
    arch = read_model_info(o.target).config.arch;
  } catch (const FileError& e) {
    throw invalid_argument("--target " + o.target + " is not a network file: " + e.what());
  }
  if (o.epochs < 1 || o.fresh_epochs < 0 || o.batch < 1 || !(o.lr > 0) || !(o.fresh_lr > 0) ||
      !(o.distill_lr > 0) || o.trees < 1 || !(o.temperature > 0) ||
      !(o.max_accuracy_loss >= 0) || o.limit < 0)
    throw invalid_argument(
        "zoo: epochs, batch, trees >= 1; train epochs >= 0; lr, temperature > 0; limit >= 0");
  const std::vector<std::string> nets = network_names();
  auto known = [&](const std::string& a) {
    return std::find(nets.begin(), nets.end(), a) != nets.end();
  };
  std::string names;
  for (const std::string& n : nets) names += (names.empty() ? "" : ", ") + n;
  std::set<std::string> files, swept;
  auto claim = [&](const std::string& flag, const std::string& file) {
    if (!files.insert(file).second)
      throw invalid_argument(flag + ": " + file + " is planned twice");
  };
  for (const PositiveSpec& p : plan.positives) {
    if (!p.sweep) continue;
    if (p.attack.attack != Attack::WeightPrune && p.attack.attack != Attack::FilterPrune)
      throw invalid_argument("--positives: only wp and fp sweep, not " +
                             attack_name(p.attack.attack));
    if (!swept.insert(attack_name(p.attack.attack)).second)
      throw invalid_argument("--positives: " + attack_name(p.attack.attack) +
                             ":sweep is planned twice");
  }
  for (const PositiveSpec& p : plan.positives) {
    if (p.sweep) continue;
    if (swept.count(attack_name(p.attack.attack)))
      throw invalid_argument("--positives: " + to_string(p.attack) + " and " +
                             attack_name(p.attack.attack) + ":sweep both; give one or the other");
    claim("--positives", "positive/" + file_stem(p.attack) + ".h5");
  }
  for (const NegativeSpec& n : plan.negatives) {
    const std::string a = n.arch == "same" ? arch : n.arch;
    if (a != "rf" && !known(a))
      throw invalid_argument("--negatives: unknown architecture '" + n.arch + "' (" + names +
                             ", rf)");
    if (n.count < 1 || n.count > 100)
      throw invalid_argument("--negatives " + n.arch + ": COUNT must be 1-100");
  }
  for (const AdaptiveSpec& a : plan.adaptive) {
    const std::string s = a.arch == "same" ? arch : a.arch;
    if (!known(s))
      throw invalid_argument("--adaptive: unknown architecture '" + a.arch + "' (" + names +
                             ")");
    claim("--adaptive", "adaptive/" + extraction_name(a.kind) + "-" + s + ".h5");
  }
}

namespace {

// --resume without a manifest continues a build interrupted before its first manifest: the
// files where the zoo writes must be that build's. A target.h5 other than --target, or a
// file that is no model of ours, is someone else's: refused rather than written over.
void check_interrupted_build(const ZooPlan& plan, const ZooOptions& o) {
  using std::invalid_argument;
  std::error_code ec;
  const std::filesystem::path out(o.out);
  const std::filesystem::path target = out / "target.h5";
  if (std::filesystem::exists(target, ec) && !std::filesystem::equivalent(target, o.target, ec) &&
      sha256_file(target.string()) != sha256_file(o.target))
    throw invalid_argument("--resume: " + target.string() + " is another model than --target " +
                           o.target + ", and there is no manifest.json: this folder is not an "
                           "interrupted build of this zoo; choose another --out");
  for (const std::string& f : zoo_files(plan, o)) {
    if (f == "target.h5" || f == "manifest.json") continue;
    const std::filesystem::path p = out / f;
    if (!std::filesystem::exists(p, ec)) continue;
    try {
      if (!is_forest_file(p.string())) read_model_info(p.string());
    } catch (const FileError& e) {
      throw invalid_argument(std::string("--resume: ") + e.what() +
                             "; not a model the zoo made, and there is no manifest.json: move "
                             "it away or choose another --out");
    }
  }
}

}  // namespace

void check_zoo_folder(const ZooPlan& plan, const ZooOptions& o) {
  using std::invalid_argument;
  std::error_code ec;
  if (!o.resume && std::filesystem::exists(std::filesystem::path(o.out) / "manifest.json", ec))
    throw invalid_argument("--out " + o.out +
                           " already holds a zoo (manifest.json): --resume continues it; to "
                           "build anew, choose another folder");
  // No manifest: files the build would write over are someone else's (a zoo put together
  // by hand), unless --resume says they are an interrupted build's, made before its first
  // manifest. The --target itself is left to the caller: as target.h5 it is not written
  // over (a rerun from the zoo's own copy), elsewhere its check names it as the input.
  if (o.resume) {
    // A zoo made with other options is not continued: every model would be made again.
    const std::string manifest = (std::filesystem::path(o.out) / "manifest.json").string();
    ZooManifest old;
    try {
      if (!std::filesystem::exists(manifest, ec)) return check_interrupted_build(plan, o);
      old = read_manifest(manifest);
    } catch (const FileError&) {
      return;  // a damaged manifest: the build names it
    }
    const std::string why = zoo_detail::option_mismatch(
        old, zoo_detail::planned_models(plan, o, zoo_detail::read_target_info(o)), o);
    if (!why.empty())
      throw invalid_argument("--resume: " + manifest + " was made with different " + why +
                             "; choose another --out");
    return;
  }
  std::vector<std::string> there;
  for (const std::string& f : zoo_files(plan, o)) {
    const std::filesystem::path p = std::filesystem::path(o.out) / f;
    if (!std::filesystem::exists(p, ec)) continue;
    if (std::filesystem::equivalent(p, o.target, ec)) continue;
    there.push_back(f);
  }
  if (there.empty()) return;
  std::string held;
  for (size_t i = 0; i < there.size() && i < 3; ++i) held += (i ? ", " : "") + there[i];
  if (there.size() > 3) held += " and " + std::to_string(there.size() - 3) + " more";
  throw invalid_argument("--out " + o.out + " already holds " + held +
                         ", which the zoo would write over, and no manifest.json: choose an "
                         "empty folder or move them away (--resume continues a build "
                         "interrupted before its manifest, making them anew)");
}

void check_zoo(const ZooPlan& plan, const ZooOptions& o) {
  check_zoo_plan(plan, o);
  check_zoo_folder(plan, o);
}

}  // namespace ipg
