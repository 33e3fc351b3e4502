// Zoo folder reader (experiment_zoo.h): the manifest when there is one, the folder layout
// otherwise. Only paths inside the folder are ever opened: a manifest's file names are
// checked to be relative and free of "..".
#include "fingerprint/experiment_zoo.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engine/sha256.h"
#include "models/zoo_manifest.h"

namespace ipg {

namespace fs = std::filesystem;

const char* group_name(SuspectGroup g) {
  switch (g) {
    case SuspectGroup::Positive:
      return "positive";
    case SuspectGroup::Negative:
      return "negative";
    case SuspectGroup::Adaptive:
      return "adaptive";
  }
  return "?";
}

std::vector<const ZooModel*> Zoo::group(SuspectGroup g) const {
  std::vector<const ZooModel*> out;
  for (const ZooModel& m : suspects)
    if (m.group == g) out.push_back(&m);
  return out;
}

namespace {

constexpr SuspectGroup kGroups[] = {SuspectGroup::Positive, SuspectGroup::Negative,
                                    SuspectGroup::Adaptive};

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

ZooModel model_at(const fs::path& root, const std::string& file, SuspectGroup group) {
  ZooModel m;
  m.file = file;
  m.path = (root / file).string();
  m.name = fs::path(file).stem().string();
  m.group = group;
  return m;
}

// The .h5 files directly in DIR/<group>, as "group/name.h5", sorted.
std::vector<std::string> files_in(const fs::path& root, SuspectGroup g) {
  std::vector<std::string> out;
  const fs::path dir = root / group_name(g);
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".h5")
      out.push_back(std::string(group_name(g)) + "/" + e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A manifest's file name: relative, no "..", no empty or "." parts (read_manifest checks
// this too; the reader opens nothing outside the folder whatever the manifest says).
bool safe_file(const std::string& f) {
  if (f.empty() || f.front() == '/' || f.find('\\') != std::string::npos) return false;
  for (const auto& part : fs::path(f))
    if (part == ".." || part == "." || part.empty()) return false;
  return true;
}

// The manifest (models/zoo_manifest.h read_manifest: JSON, format, version, every field's
// type, its own sha256), then the target's sha256 (fatal), each kept file's (a problem),
// groups and duplicates.
void from_manifest(const fs::path& root, Zoo& z) {
  const fs::path mpath = root / "manifest.json";
  const std::string where = mpath.string();
  ZooManifest m;
  try {
    m = read_manifest(where);
    std::ifstream in(mpath, std::ios::binary);
    z.manifest_sha256 = nlohmann::json::parse(in).at("sha256").get<std::string>();
  } catch (const std::exception& e) {
    bad(e.what());
  }
  std::set<std::string> kept, seen;
  bool have_target = false;
  for (const ZooEntry& e : m.models) {
    if (!safe_file(e.file)) bad(where + ": " + e.file + " is not a path inside the zoo folder");
    if (!seen.insert(e.file).second) bad(where + ": " + e.file + " is listed twice");
    if (e.group == "target") {
      if (have_target) bad(where + ": a second target (" + e.file + ")");
      if (e.file != "target.h5") bad(where + ": the target's file must be target.h5, not " + e.file);
      have_target = true;
      z.target = model_at(root, e.file, SuspectGroup::Positive);
      if (!fs::is_regular_file(z.target.path)) bad(z.target.path + ": missing (the zoo's target)");
      const std::string got = sha256_file(z.target.path);
      if (got != e.sha256)
        bad(z.target.path + ": sha256 " + got + ", the manifest lists " + e.sha256 +
            " (the target was changed or replaced)");
      z.target.sha256 = got;
      continue;
    }
    SuspectGroup g;
    if (e.group == "positive")
      g = SuspectGroup::Positive;
    else if (e.group == "negative")
      g = SuspectGroup::Negative;
    else if (e.group == "adaptive")
      g = SuspectGroup::Adaptive;
    else
      bad(where + ": " + e.file + ": unknown group '" + e.group +
          "' (target, positive, negative, adaptive)");
    if (!e.duplicate_of.empty()) {  // its file is not kept: counted once, as the other
      z.duplicates.push_back({e.file, e.duplicate_of, g});
      continue;
    }
    kept.insert(e.file);
    ZooModel mod = model_at(root, e.file, g);
    mod.sha256 = e.sha256;
    if (!fs::is_regular_file(mod.path)) {
      z.problems.push_back({e.file, "missing (the manifest lists it)"});
      continue;
    }
    const std::string got = sha256_file(mod.path);
    if (got != e.sha256) {
      z.problems.push_back(
          {e.file, "sha256 " + got + ", the manifest lists " + e.sha256 + " (changed or replaced)"});
      continue;
    }
    z.suspects.push_back(mod);
  }
  if (!have_target) bad(where + ": lists no target (group \"target\")");
  for (const ZooDuplicate& d : z.duplicates)
    if (!kept.count(d.duplicate_of) && d.duplicate_of != "target.h5")
      bad(where + ": " + d.file + " is a duplicate of " + d.duplicate_of +
          ", which it does not list as kept");
  for (SuspectGroup g : kGroups)
    for (const std::string& f : files_in(root, g))
      if (!seen.count(f)) z.unlisted.push_back(f);
}

void read_layout(const fs::path& root, Zoo& z) {
  z.target = model_at(root, "target.h5", SuspectGroup::Positive);
  if (!fs::is_regular_file(z.target.path))
    bad(root.string() + ": no target.h5 (the zoo's protected model)");
  z.target.sha256 = sha256_file(z.target.path);
  for (SuspectGroup g : kGroups)
    for (const std::string& f : files_in(root, g)) {
      ZooModel m = model_at(root, f, g);
      m.sha256 = sha256_file(m.path);
      z.suspects.push_back(m);
    }
}

}  // namespace

Zoo scan_zoo(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) bad(dir + ": not a folder");
  Zoo z;
  z.dir = dir;
  if (fs::exists(root / "manifest.json"))
    from_manifest(root, z);
  else
    read_layout(root, z);
  std::stable_sort(z.suspects.begin(), z.suspects.end(), [](const ZooModel& a, const ZooModel& b) {
    return a.group != b.group ? a.group < b.group : a.file < b.file;
  });
  for (SuspectGroup g : {SuspectGroup::Positive, SuspectGroup::Negative})
    if (z.group(g).empty()) {
      std::string why = root.string() + "/" + group_name(g) + ": no usable " + group_name(g) +
                        " suspect (.h5 model files)";
      for (const ZooProblem& p : z.problems) why += "; " + p.file + ": " + p.reason;
      bad(why);
    }
  Sha256 id;
  const std::string t = "target " + z.target.file + " " + z.target.sha256 + "\n";
  id.update(t.data(), t.size());
  for (const ZooModel& m : z.suspects) {
    const std::string line =
        std::string(group_name(m.group)) + " " + m.file + " " + m.sha256 + "\n";
    id.update(line.data(), line.size());
  }
  z.identity = id.hex();
  return z;
}

}  // namespace ipg
