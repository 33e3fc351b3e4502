// The zoo's models made apart from build_zoo (models/zoo_work.h).
#include "models/zoo_work.h"

#include <filesystem>
#include <stdexcept>

#include "engine/sha256.h"
#include "models/data/dataset.h"
#include "models/model_file.h"
#include "models/recipe.h"
#include "models/train.h"
#include "models/zoo_plan.h"

namespace ipg {

std::vector<ZooWork> zoo_work(const ZooPlan& plan, const ZooOptions& o) {
  ZooManifest old;
  const std::string manifest = (std::filesystem::path(o.out) / "manifest.json").string();
  std::error_code ec;
  if (o.resume && std::filesystem::exists(manifest, ec)) old = read_manifest(manifest);
  std::vector<ZooWork> work;
  for (const zoo_detail::Planned& p :
       zoo_detail::planned_models(plan, o, zoo_detail::read_target_info(o))) {
    ZooWork w;
    w.file = p.file;
    w.description = p.description;
    w.command = p.command;
    w.sweep = p.sweep;
    w.param = p.param;
    const std::string body = zoo_detail::command_body(p.command);
    // A kept model counts when its file is intact (else build_zoo makes it again).
    if (const ZooEntry* e = old.find(p.file); e && zoo_detail::command_body(e->command) == body) {
      const std::string path = (std::filesystem::path(o.out) / e->file).string();
      if (!e->duplicate_of.empty() ||
          (std::filesystem::is_regular_file(path, ec) && sha256_file(path) == e->sha256))
        w.known_accuracy = e->accuracy;
    }
    for (const ZooSweep& s : old.sweeps)
      if (s.stopped_at && zoo_detail::command_body(s.stop_command) == body)
        w.known_accuracy = s.stop_accuracy;
    work.push_back(std::move(w));
  }
  return work;
}

std::string staged_model_path(const std::string& dir, const std::string& command) {
  const std::string digest = sha256_hex(zoo_detail::command_body(command));
  return (std::filesystem::path(dir) / ("model-" + digest.substr(0, 32) + ".h5")).string();
}

bool sweep_stopped_before(const std::vector<ZooWork>& work, const std::vector<double>& accuracy,
                          size_t i, double target_accuracy, double max_loss) {
  if (work[i].sweep.empty()) return false;
  for (size_t j = i; j-- > 0 && work[j].sweep == work[i].sweep;) {
    const double a = accuracy[j] >= 0 ? accuracy[j] : work[j].known_accuracy;
    if (a >= 0 && loses_too_much(target_accuracy, a, max_loss)) return true;
  }
  return false;
}

struct ZooMaker::State {
  ZooOptions o;
  std::vector<zoo_detail::Planned> planned;
  bool loaded = false;
  Dataset train, test;
  double target_accuracy = -1;

  void load() {
    if (loaded) return;
    train = first_rows(load_dataset(o.data, Split::Train), o.limit);
    test = load_dataset(o.data, Split::Test);
    loaded = true;
  }
};

ZooMaker::ZooMaker(const ZooPlan& plan, const ZooOptions& o) : s_(std::make_unique<State>()) {
  s_->o = o;
  s_->planned = zoo_detail::planned_models(plan, o, zoo_detail::read_target_info(o));
}

ZooMaker::~ZooMaker() = default;

size_t ZooMaker::size() const { return s_->planned.size(); }

double ZooMaker::target_accuracy() {
  if (s_->target_accuracy < 0) {
    s_->load();
    auto target = load_model(s_->o.target);
    s_->target_accuracy = evaluate(*target, s_->test, s_->o.device);
  }
  return s_->target_accuracy;
}

double ZooMaker::make(size_t i, const std::string& path) {
  if (i >= s_->planned.size()) throw std::out_of_range("ZooMaker::make: no item " + std::to_string(i));
  const zoo_detail::Planned& p = s_->planned[i];
  s_->load();
  try {
    MadeModel m = make_model(p.recipe, s_->train, s_->test, s_->o.device);
    save_made_model(m, path);
    return m.provenance.accuracy;
  } catch (const std::exception& e) {
    throw std::runtime_error(p.file + ": " + e.what());
  }
}

}  // namespace ipg
