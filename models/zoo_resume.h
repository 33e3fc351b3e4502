// Resuming a zoo (models/zoo.cpp): which models an old manifest lists can stand, and its
// commands read with this build's paths, so that a zoo folder copied elsewhere, or a
// target moved, resumes instead of remaking everything (files are checked by digest, not
// by path), while another target invalidates what was made from the old one.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "models/zoo_manifest.h"
#include "models/zoo_plan.h"

namespace ipg::zoo_detail {

// Where a zoo's commands name its target and its folder, as plain shell words.
struct CommandPaths {
  std::string target, folder;  // empty: not known (or quoted, so not taken apart)
};
// The paths of the target entry's command "cp TARGET FOLDER/target.h5".
CommandPaths copy_command_paths(const std::string& cp_command);
// `command` with the word from.target replaced by to.target and words under from.folder/
// moved under to.folder/ (an empty `from` field moves nothing): an old manifest's
// commands as they read for a zoo resumed under another path or from a moved target.
std::string move_paths(const std::string& command, const CommandPaths& from, const CommandPaths& to);
// The old manifest `old` read with the paths of this build, whose target entry is
// `target`: a different target (another SHA-256) clears the commands of what was made
// from the old one (positives, adaptive models, sweeps), so none of it is reused; then
// the target's and the folder's paths are moved (the target's only when it is the same).
void read_with_paths_of(ZooManifest& old, const ZooEntry& target);

// The first zoo option `old` was made with another value of, as "--epochs (2 then, 1
// now)" ("--seed" alone: commands record each model's seed, not the global one); "" when
// none differs. Read from the commands of the models `old` lists that `planned` (this
// build's models, o's options) has too, and from its sweeps' accuracy limit. Resuming with
// other options would make everything again instead of continuing: check_zoo_folder
// refuses it.
std::string option_mismatch(const ZooManifest& old, const std::vector<Planned>& planned,
                            const ZooOptions& o);

// The entry of `old` for p when it can stand as it is: same command (up to the device and
// thread count) and its file in `folder` intact, or a duplicate of a model this build has
// kept with the same weights (kept_weights: weights_sha256 -> file). Otherwise null, with
// *why saying why a model `old` lists is made again ("" when it lists none).
const ZooEntry* reusable_entry(const ZooManifest& old, const Planned& p,
                               const std::map<std::string, std::string>& kept_weights,
                               const std::string& folder, std::string* why);

}  // namespace ipg::zoo_detail
