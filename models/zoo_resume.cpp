// Resuming a zoo (zoo_resume.h).
#include "models/zoo_resume.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <vector>

#include "engine/sha256.h"

namespace ipg::zoo_detail {

CommandPaths copy_command_paths(const std::string& cp_command) {
  std::vector<std::string> w;
  std::istringstream in(cp_command);
  for (std::string word; std::getline(in, word, ' ');) w.push_back(word);
  static const std::string kCopy = "/target.h5";
  if (w.size() != 3 || w[0] != "cp" || w[1] != shell_word(w[1]) || w[2] != shell_word(w[2]) ||
      w[2].size() <= kCopy.size() || w[2].compare(w[2].size() - kCopy.size(), kCopy.size(), kCopy))
    return {};
  return {w[1], w[2].substr(0, w[2].size() - kCopy.size())};
}

std::string move_paths(const std::string& command, const CommandPaths& from, const CommandPaths& to) {
  std::string out;
  std::istringstream in(command);
  bool first = true;
  for (std::string w; std::getline(in, w, ' '); first = false) {
    if (!from.target.empty() && w == from.target)
      w = to.target;
    else if (!from.folder.empty() && w.rfind(from.folder + "/", 0) == 0)
      w = to.folder + w.substr(from.folder.size());
    out += (first ? "" : " ") + w;
  }
  return out;
}

void read_with_paths_of(ZooManifest& old, const ZooEntry& target) {
  const ZooEntry* was = old.find("target.h5");
  if (!was) return;
  CommandPaths from = copy_command_paths(was->command);
  const CommandPaths to = copy_command_paths(target.command);
  if (was->sha256 != target.sha256) {
    // Another target: nothing made from the old one (its copies, sweeps, extractions)
    // stands; independent models do.
    for (ZooEntry& m : old.models)
      if (m.group == "positive" || m.group == "adaptive") m.command.clear();
    old.sweeps.clear();
    from.target.clear();
  }
  if (to.folder.empty()) return;
  for (ZooEntry& m : old.models) m.command = move_paths(m.command, from, to);
  for (ZooSweep& w : old.sweeps) w.stop_command = move_paths(w.stop_command, from, to);
}

namespace {

// The word after `flag` in `command` ("" when it has none).
std::string option_word(const std::string& command, const std::string& flag) {
  std::istringstream in(command);
  for (std::string w; in >> w;)
    if (w == flag) return in >> w ? w : "";
  return "";
}

}  // namespace

std::string option_mismatch(const ZooManifest& old, const std::vector<Planned>& planned,
                            const ZooOptions& o) {
  auto differs = [](const std::string& option, const std::string& then, const std::string& now) {
    return option + " (" + then + " then, " + now + " now)";
  };
  for (const ZooSweep& s : old.sweeps)
    if (s.max_accuracy_loss != o.max_accuracy_loss &&
        std::any_of(planned.begin(), planned.end(),
                    [&](const Planned& q) { return q.sweep == s.attack; }))
      return differs("--max-loss", exact_number(s.max_accuracy_loss),
                     exact_number(o.max_accuracy_loss));
  for (const ZooEntry& e : old.models) {
    const auto p = std::find_if(planned.begin(), planned.end(),
                                [&](const Planned& q) { return q.file == e.file; });
    if (p == planned.end() || e.command.empty()) continue;
    // Each word of the commands and the zoo option it comes from: fresh networks
    // (negatives, extractions) train with --train-epochs and their own learning rates.
    const bool fresh = e.group != "positive";
    const std::pair<const char*, std::string> words[] = {
        {"--seed", "--seed"},
        {"--data", "--data"},
        {"--limit", "--limit"},
        {"--batch", "--batch"},
        {"--epochs", fresh && o.fresh_epochs > 0 ? "--train-epochs" : "--epochs"},
        {"--lr", !fresh                  ? "--lr"
                 : e.attack == "distill" ? "--distill-lr"
                                         : "--train-lr"},
        {"--trees", "--trees"},
        {"--temperature", "--temperature"}};
    for (const auto& [word, option] : words) {
      std::string then = option_word(e.command, word), now = option_word(p->command, word);
      if (then == now) continue;
      if (option == "--seed") return option;
      if (option == "--limit") {  // left out of a command when 0 (all images)
        if (then.empty()) then = "0";
        if (now.empty()) now = "0";
      }
      return differs(option, then, now);
    }
  }
  return "";
}

const ZooEntry* reusable_entry(const ZooManifest& old, const Planned& p,
                               const std::map<std::string, std::string>& kept_weights,
                               const std::string& folder, std::string* why) {
  const ZooEntry* e = old.find(p.file);
  auto no = [why](const char* reason) -> const ZooEntry* {
    if (why) *why = reason;
    return nullptr;
  };
  if (!e) return no("");
  if (e->command.empty() && e->group != "target") return no("made from another target");
  if (command_body(e->command) != command_body(p.command))
    return no("the manifest lists it made by another command");
  if (!e->duplicate_of.empty()) {
    const auto it = kept_weights.find(e->weights_sha256);
    return it != kept_weights.end() && it->second == e->duplicate_of
               ? e
               : no("it was a duplicate of a model not kept now");
  }
  if (kept_weights.count(e->weights_sha256)) return no("it is now a duplicate");
  const std::string path = (std::filesystem::path(folder) / e->file).string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return no("its file is missing");
  if (sha256_file(path) != e->sha256) return no("its file changed since the manifest listed it");
  return e;
}

}  // namespace ipg::zoo_detail
