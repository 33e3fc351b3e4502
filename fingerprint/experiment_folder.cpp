// The results folder and the recorded run (experiment_folder.h).
#include "fingerprint/experiment_folder.h"


#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "engine/sha256.h"
#include "fingerprint/fingerprint_file.h"

namespace ipg {

namespace fs = std::filesystem;

ResultsFolder ResultsFolder::open(const std::string& dir, bool resume) {
  ResultsFolder f;
  f.dir_ = dir;
  const fs::path root(dir);
  const fs::path results = root / "results.json";
  if (fs::exists(root) && !fs::is_directory(root))
    throw std::invalid_argument(dir + " is a file, not a folder");
  fs::create_directories(root);
  f.lock_ = FolderLock::take(dir);  // one run per folder, held while f lives
  const bool empty = fs::is_empty(root);
  if (!empty && !fs::exists(results))
    throw std::invalid_argument(dir + ": not empty, and not a results folder (no results.json)");
  if (!empty && !resume)
    throw std::invalid_argument(dir +
                                " holds an earlier run's results: --resume to continue it, or "
                                "choose another --out");
  if (!empty) {
    std::ifstream in(results, std::ios::binary);
    if (!in) throw std::runtime_error(results.string() + ": cannot be read");
    std::ostringstream s;
    s << in.rdbuf();
    try {
      f.previous_ = parse_results(s.str(), results.string());
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) +
                               "; this folder cannot be resumed: choose another --out");
    }
  }
  return f;
}

std::string ResultsFolder::results_path() const { return (fs::path(dir_) / "results.json").string(); }

// Why the recorded fingerprint of r cannot be reused ("" when it can): missing, changed
// since results.json recorded its checksum, or failing its own checks.
std::string ResultsFolder::fingerprint_problem(const SettingResult& r) const {
  if (r.fingerprint_file.empty()) return "no fingerprint file recorded";
  const fs::path p = fs::path(dir_) / r.fingerprint_file;
  try {
    if (!fs::exists(p)) return "missing";
    if (sha256_file(p.string()) != r.fingerprint_sha256)
      return "changed since results.json recorded it (SHA-256 differs)";
    load_fingerprint(p.string());  // the seal and every field
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::optional<SettingResult> ResultsFolder::reusable(const Setting& s) const {
  if (!previous_) return std::nullopt;
  const SettingResult* r = previous_->find(s);
  if (!r || !fingerprint_problem(*r).empty()) return std::nullopt;
  return *r;
}

std::vector<std::string> ResultsFolder::damaged_fingerprints() const {
  std::vector<std::string> out;
  if (!previous_) return out;
  for (const SettingResult& r : previous_->results) {
    const std::string why = fingerprint_problem(r);
    if (!why.empty())
      out.push_back(setting_label(r.setting) + ": " +
                    (r.fingerprint_file.empty() ? std::string("its fingerprint")
                                                : r.fingerprint_file) +
                    ": " + why);
  }
  return out;
}

void ResultsFolder::save_fingerprint_of(SettingResult& r, const Fingerprint& fp) const {
  r.fingerprint_file = "fingerprints/" + setting_id(r.setting) + ".h5";
  const std::string path = (fs::path(dir_) / r.fingerprint_file).string();
  fs::create_directories(fs::path(path).parent_path());
  save_fingerprint(fp, path);
  r.fingerprint_sha256 = sha256_file(path);
}

void ResultsFolder::write(const ExperimentRecord& r) const {
  write_file_atomically(results_path(), results_text(r));
}

void ResultsFolder::write_file(const std::string& name, const std::string& text) const {
  write_file_atomically((fs::path(dir_) / name).string(), text);
}

std::vector<std::string> ResultsFolder::remove_stale_fingerprints(const ExperimentRecord& r) const {
  std::set<std::string> used;
  for (const SettingResult& s : r.results) used.insert(s.fingerprint_file);
  std::vector<std::string> removed;
  const fs::path dir = fs::path(dir_) / "fingerprints";
  if (!fs::is_directory(dir)) return removed;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = "fingerprints/" + e.path().filename().string();
    if (e.is_regular_file() && e.path().extension() == ".h5" && !used.count(name)) {
      fs::remove(e.path());
      removed.push_back(name);
    }
  }
  return removed;
}

std::vector<std::string> run_recorded(ExperimentRecord& rec, LoadedZoo& zoo,
                                      const Tensor* train_images, Device device,
                                      const ResultsFolder* folder,
                                      const std::function<void(const ExperimentProgress&)>& progress) {
  rec.results.clear();
  // results.json before the first setting: a run interrupted in it leaves a folder that
  // --resume continues (an earlier run's record stays until a setting is done).
  if (folder && !folder->previous()) folder->write(rec);
  ExperimentHooks hooks;
  hooks.progress = [&](const ExperimentProgress& e) {
    if (e.phase == ExperimentProgress::Phase::Done) {
      rec.results.push_back(*e.result);
      if (!e.result->resumed) rec.results.back().threads = rec.threads;
      if (folder) folder->write(rec);  // after every setting: an interrupted run resumes here
    }
    if (progress) progress(e);
  };
  if (folder) {
    hooks.reuse = [folder](const Setting& s) { return folder->reusable(s); };
    hooks.on_result = [folder](SettingResult& r, const Fingerprint& fp) {
      folder->save_fingerprint_of(r, fp);
    };
  }
  run_experiment(zoo, rec.planned, rec.options, train_images, device, hooks);
  if (!folder) return {};
  std::vector<std::string> removed = folder->remove_stale_fingerprints(rec);
  folder->write(rec);
  return removed;
}

}  // namespace ipg
