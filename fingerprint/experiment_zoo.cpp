// Zoo folder reader (experiment_zoo.h): the manifest when there is one, the folder layout
// otherwise. Only paths inside the folder are ever opened: a manifest's file names are
// checked to be relative and free of "..".
#include "fingerprint/experiment_zoo.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "engine/sha256.h"

namespace ipg {

namespace fs = std::filesystem;
using nlohmann::json;

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

bool is_hex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// A manifest's file name: relative, no "..", no empty or "." parts, under one of the
// folders the contract names (or target.h5 itself).
bool safe_file(const std::string& f) {
  if (f.empty() || f.front() == '/' || f.find('\\') != std::string::npos) return false;
  for (const auto& part : fs::path(f))
    if (part == ".." || part == "." || part.empty()) return false;
  return true;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) bad(p.string() + ": cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const json& field(const json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) bad(where + ": no \"" + key + "\"");
  return *it;
}

std::string string_field(const json& obj, const char* key, const std::string& where) {
  const json& v = field(obj, key, where);
  if (!v.is_string()) bad(where + ": \"" + key + "\" is not a string");
  return v.get<std::string>();
}

void read_manifest(const fs::path& root, Zoo& z) {
  const fs::path mpath = root / "manifest.json";
  const std::string where = mpath.string();
  json j;
  try {
    j = json::parse(read_text(mpath));
  } catch (const json::exception& e) {
    bad(where + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) bad(where + ": not a JSON object");
  if (!j.contains("format") || j["format"] != "ipguard-zoo")
    bad(where + ": not an ipguard zoo manifest (format is not \"ipguard-zoo\")");
  if (!j.contains("version") || j["version"] != 1)
    bad(where + ": unsupported manifest version (this reader knows version 1)");
  const std::string listed = string_field(j, "sha256", where);
  json body = j;
  body.erase("sha256");
  const std::string actual = sha256_hex(body.dump());
  if (listed != actual)
    bad(where + ": manifest checksum mismatch (corrupted or modified): it lists " + listed +
        ", its content hashes to " + actual);
  z.manifest_sha256 = listed;
  const json& models = field(j, "models", where);
  if (!models.is_array()) bad(where + ": \"models\" is not an array");
  std::set<std::string> kept, seen;
  bool have_target = false;
  struct Dup {
    std::string file, of;
    SuspectGroup group;
  };
  std::vector<Dup> dups;
  for (size_t i = 0; i < models.size(); ++i) {
    const json& e = models[i];
    const std::string at = where + ": models[" + std::to_string(i) + "]";
    if (!e.is_object()) bad(at + " is not an object");
    const std::string file = string_field(e, "file", at);
    const std::string group = string_field(e, "group", at);
    const std::string sha = string_field(e, "sha256", at);
    if (!safe_file(file)) bad(at + ": file '" + file + "' is not a path inside the zoo folder");
    if (!seen.insert(file).second) bad(at + ": " + file + " is listed twice");
    if (!is_hex64(sha)) bad(at + ": sha256 of " + file + " is not 64 lowercase hex digits");
    std::string dup_of;
    if (e.contains("duplicate_of") && !e["duplicate_of"].is_null()) {
      if (!e["duplicate_of"].is_string()) bad(at + ": \"duplicate_of\" is not a string or null");
      dup_of = e["duplicate_of"].get<std::string>();
    }
    if (group == "target") {
      if (have_target) bad(at + ": a second target");
      if (file != "target.h5") bad(at + ": the target's file must be target.h5, not " + file);
      have_target = true;
      z.target = model_at(root, file, SuspectGroup::Positive);
      const fs::path p = root / file;
      if (!fs::is_regular_file(p)) bad(p.string() + ": missing (the zoo's target)");
      const std::string got = sha256_file(p.string());
      if (got != sha)
        bad(p.string() + ": sha256 " + got + ", the manifest lists " + sha +
            " (the target was changed or replaced)");
      z.target.sha256 = got;
      continue;
    }
    SuspectGroup g;
    if (group == "positive")
      g = SuspectGroup::Positive;
    else if (group == "negative")
      g = SuspectGroup::Negative;
    else if (group == "adaptive")
      g = SuspectGroup::Adaptive;
    else
      bad(at + ": unknown group '" + group + "' (target, positive, negative, adaptive)");
    if (!dup_of.empty()) {
      dups.push_back({file, dup_of, g});
      continue;
    }
    kept.insert(file);
    ZooModel m = model_at(root, file, g);
    m.sha256 = sha;
    const fs::path p = root / file;
    if (!fs::is_regular_file(p)) {
      z.problems.push_back({file, "missing (the manifest lists it)"});
      continue;
    }
    const std::string got = sha256_file(p.string());
    if (got != sha) {
      z.problems.push_back(
          {file, "sha256 " + got + ", the manifest lists " + sha + " (changed or replaced)"});
      continue;
    }
    z.suspects.push_back(m);
  }
  if (!have_target) bad(where + ": lists no target (group \"target\")");
  for (const Dup& d : dups) {
    if (!kept.count(d.of) && d.of != "target.h5")
      bad(where + ": " + d.file + " is a duplicate of " + d.of + ", which it does not list");
    z.duplicates.push_back({d.file, d.of, d.group});
  }
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
    read_manifest(root, z);
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
