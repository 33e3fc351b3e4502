// Inside the zoo builder (models/zoo.cpp, models/zoo_plan.cpp): one planned model, its
// recipe, file name, seed and the single command that makes the same file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "models/recipe.h"
#include "models/zoo.h"

namespace ipg::zoo_detail {

struct Planned {
  std::string file;    // relative to the zoo folder: "positive/wp-0.2.h5"
  std::string group;   // positive | negative | adaptive
  std::string attack;  // ftll ... fp | independent | distill | label-only
  std::string arch;    // resolved ("same" -> the target's)
  std::optional<double> param;
  std::string sweep;  // "wp" or "fp" for a sweep's value (planned_models); "" otherwise
  ModelRecipe recipe;
  std::string command;      // "ipguard --device D --threads N --seed S <subcommand> ..."
  std::string description;  // for progress lines
};

// The target's architecture and class count, read (and checked) once.
struct TargetInfo {
  std::string arch;
  int classes = 0;
};

Planned plan_positive(const ZooOptions& o, const TargetInfo& t, const PostProcess& p);
// The i-th (1-based) independent model of `arch` (resolved).
Planned plan_negative(const ZooOptions& o, const std::string& arch, int i);
Planned plan_adaptive(const ZooOptions& o, const TargetInfo& t, const AdaptiveSpec& a);
// Every model the plan may make, in build_zoo's order, every value of a sweep included.
std::vector<Planned> planned_models(const ZooPlan& plan, const ZooOptions& o, const TargetInfo& t);
// The target's architecture and class count, from its file.
TargetInfo read_target_info(const ZooOptions& o);

// A command without its device and thread count (from " --seed " on): what must match
// for a resumed build to reuse a model made with another thread count's command.
std::string command_body(const std::string& command);
// A path or word as a POSIX shell reads it back (quoted only when it needs to be).
std::string shell_word(const std::string& s);
// The thread count recorded in commands: o.threads, or OpenMP's current count.
int recorded_threads(const ZooOptions& o);

}  // namespace ipg::zoo_detail
