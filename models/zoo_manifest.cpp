// manifest.json of a zoo folder (models/zoo_manifest.h): JSON both ways, its checksum,
// and the check of every listed file.
#include "models/zoo_manifest.h"


#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/hdf5.h"
#include "engine/sha256.h"

namespace ipg {

namespace {

using nlohmann::json;

json or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
template <class T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json to_json(const ZooManifest& m) {
  json models = json::array();
  for (const ZooEntry& e : m.models)
    models.push_back({{"file", e.file},
                      {"group", e.group},
                      {"kind", e.kind},
                      {"arch", e.arch},
                      {"parent", or_null(e.parent)},
                      {"attack", e.attack},
                      {"param", or_null(e.param)},
                      {"seed", or_null(e.seed)},
                      {"accuracy", e.accuracy},
                      {"sha256", e.sha256},
                      {"command", e.command},
                      {"duplicate_of", or_null(e.duplicate_of)},
                      {"weights_sha256", e.weights_sha256},
                      {"same_outputs_as", or_null(e.same_outputs_as)}});
  json sweeps = json::array();
  for (const ZooSweep& s : m.sweeps)
    sweeps.push_back({{"attack", s.attack},
                      {"target_accuracy", s.target_accuracy},
                      {"max_accuracy_loss", s.max_accuracy_loss},
                      {"kept", s.kept},
                      {"stopped_at", or_null(s.stopped_at)},
                      {"stop_accuracy", s.stopped_at ? json(s.stop_accuracy) : json(nullptr)},
                      {"stop_command", or_null(s.stop_command)}});
  return {{"format", kZooFormat}, {"version", kZooVersion}, {"models", models},
          {"sweeps", sweeps}};
}

// Field readers: a missing key or a wrong type is a FileError naming the field.
struct Reader {
  std::string path;
  [[noreturn]] void fail(const std::string& what) const {
    throw FileError(path + ": manifest: " + what);
  }
  const json& at(const json& o, const char* key, const std::string& where) const {
    if (!o.is_object() || !o.contains(key)) fail(where + " has no '" + key + "'");
    return o.at(key);
  }
  std::string str(const json& o, const char* key, const std::string& where,
                  bool nullable = false) const {
    const json& v = at(o, key, where);
    if (nullable && v.is_null()) return "";
    if (!v.is_string()) fail(where + "." + key + " is not a string");
    return v.get<std::string>();
  }
  std::optional<double> number(const json& o, const char* key, const std::string& where,
                               bool nullable) const {
    const json& v = at(o, key, where);
    if (nullable && v.is_null()) return std::nullopt;
    if (!v.is_number()) fail(where + "." + key + " is not a number");
    return v.get<double>();
  }
};

}  // namespace

const ZooEntry* ZooManifest::find(const std::string& file) const {
  for (const ZooEntry& e : models)
    if (e.file == file) return &e;
  return nullptr;
}

std::string manifest_sha256(const ZooManifest& m) { return sha256_hex(to_json(m).dump()); }

std::string manifest_text(const ZooManifest& m) {
  json j = to_json(m);
  j["sha256"] = sha256_hex(j.dump());
  return j.dump(2) + "\n";
}

void write_manifest(const ZooManifest& m, const std::string& path) {
  write_file_atomically(path, manifest_text(m));
}

ZooManifest read_manifest(const std::string& path) {
  Reader r{path};
  std::ifstream f(path, std::ios::binary);
  if (!f) throw FileError(path + ": cannot open");
  std::stringstream text;
  text << f.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) r.fail("not JSON");
  if (!j.is_object()) r.fail("not a JSON object");
  if (r.str(j, "format", "the manifest") != kZooFormat)
    r.fail("format is not '" + std::string(kZooFormat) + "'");
  const json& version = r.at(j, "version", "the manifest");
  if (!version.is_number_integer() || version.get<int64_t>() != kZooVersion)
    r.fail("version " + version.dump() + " (this build reads " + std::to_string(kZooVersion) +
           ")");
  const std::string listed = r.str(j, "sha256", "the manifest");
  json body = j;
  body.erase("sha256");
  const std::string actual = sha256_hex(body.dump());
  if (actual != listed)
    r.fail("checksum mismatch (its content hashes to " + actual + ", it lists " + listed +
           "): changed since it was written");
  ZooManifest m;
  const json& models = r.at(j, "models", "the manifest");
  if (!models.is_array()) r.fail("models is not a list");
  for (size_t i = 0; i < models.size(); ++i) {
    const json& o = models[i];
    const std::string w = "models[" + std::to_string(i) + "]";
    ZooEntry e;
    e.file = r.str(o, "file", w);
    e.group = r.str(o, "group", w);
    e.kind = r.str(o, "kind", w);
    e.arch = r.str(o, "arch", w);
    e.parent = r.str(o, "parent", w, true);
    e.attack = r.str(o, "attack", w);
    e.param = r.number(o, "param", w, true);
    const json& seed = r.at(o, "seed", w);
    if (!seed.is_null() && !seed.is_number_integer()) r.fail(w + ".seed is not an integer");
    if (!seed.is_null()) e.seed = seed.get<int64_t>();
    e.accuracy = *r.number(o, "accuracy", w, false);
    e.sha256 = r.str(o, "sha256", w);
    e.command = r.str(o, "command", w);
    e.duplicate_of = r.str(o, "duplicate_of", w, true);
    e.weights_sha256 = r.str(o, "weights_sha256", w);
    e.same_outputs_as = r.str(o, "same_outputs_as", w, true);
    if (e.file.empty() || e.file.find("..") != std::string::npos || e.file[0] == '/')
      r.fail(w + ".file '" + e.file + "' is not a path inside the zoo");
    m.models.push_back(e);
  }
  if (j.contains("sweeps")) {
    const json& sweeps = j.at("sweeps");
    if (!sweeps.is_array()) r.fail("sweeps is not a list");
    for (size_t i = 0; i < sweeps.size(); ++i) {
      const json& o = sweeps[i];
      const std::string w = "sweeps[" + std::to_string(i) + "]";
      ZooSweep s;
      s.attack = r.str(o, "attack", w);
      s.target_accuracy = *r.number(o, "target_accuracy", w, false);
      s.max_accuracy_loss = *r.number(o, "max_accuracy_loss", w, false);
      const json& kept = r.at(o, "kept", w);
      if (!kept.is_array()) r.fail(w + ".kept is not a list");
      for (const json& v : kept) {
        if (!v.is_number()) r.fail(w + ".kept holds a non-number");
        s.kept.push_back(v.get<double>());
      }
      s.stopped_at = r.number(o, "stopped_at", w, true);
      if (s.stopped_at) s.stop_accuracy = *r.number(o, "stop_accuracy", w, false);
      s.stop_command = r.str(o, "stop_command", w, true);
      m.sweeps.push_back(s);
    }
  }
  return m;
}

void verify_zoo_files(const std::string& dir, const ZooManifest& m) {
  for (const ZooEntry& e : m.models) {
    if (!e.duplicate_of.empty()) {  // not kept: the model it duplicates must be
      const ZooEntry* kept = m.find(e.duplicate_of);
      if (!kept || !kept->duplicate_of.empty())
        throw FileError((std::filesystem::path(dir) / "manifest.json").string() + ": " + e.file +
                        " duplicates " + e.duplicate_of + ", which is not a kept model");
      continue;
    }
    const std::string path = (std::filesystem::path(dir) / e.file).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      throw FileError(path + ": listed in the manifest but missing");
    const std::string actual = sha256_file(path);
    if (actual != e.sha256)
      throw FileError(path + ": sha256 " + actual + ", the manifest lists " + e.sha256 +
                      " (the file changed since the zoo was made)");
  }
}

}  // namespace ipg
