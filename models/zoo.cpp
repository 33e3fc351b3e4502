// build_zoo (models/zoo.h): the target copied and measured, then every planned model made
// (or, resuming, reused), checked for duplicate weights, saved, and the manifest
// rewritten after each.
#include "models/zoo.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "engine/atomic_file.h"
#include "engine/autograd.h"
#include "engine/folder_lock.h"
#include "engine/hdf5.h"
#include "engine/sha256.h"
#include "models/data/dataset.h"
#include "models/forest_file.h"
#include "models/model_file.h"
#include "models/zoo_work.h"
#include "models/zoo_plan.h"
#include "models/zoo_resume.h"

namespace ipg {

namespace {

namespace fs = std::filesystem;
using zoo_detail::Planned;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class Builder {
 public:
  Builder(const ZooOptions& o, const ZooProgress& progress) : o_(o), progress_(progress) {}

  // Copies and measures the target; loads the data and the old manifest.
  void start(int planned) {
    planned_ = planned;
    const fs::path dir(o_.out);
    manifest_path_ = (dir / "manifest.json").string();
    std::error_code ec;
    if (o_.resume && fs::exists(manifest_path_, ec)) old_ = read_manifest(manifest_path_);
    train_ = first_rows(load_dataset(o_.data, Split::Train), o_.limit);
    test_ = load_dataset(o_.data, Split::Test);
    Provenance tp;
    auto target = load_model(o_.target, &tp);
    const ModelConfig& c = target->config();
    if (c.in_channels != train_.images.dim(1) || c.height != train_.images.dim(2) ||
        c.width != train_.images.dim(3))
      throw std::invalid_argument("--target " + o_.target + " takes " +
                                  std::to_string(c.in_channels) + "x" + std::to_string(c.height) +
                                  "x" + std::to_string(c.width) + " input, " + train_.name +
                                  " has " + shape_str(train_.images.shape()));
    const std::string copy = (dir / "target.h5").string();
    const std::string sha = sha256_file(o_.target);
    // Never write over the input itself (a zoo rebuilt from its own target.h5).
    if (!fs::equivalent(o_.target, copy, ec) &&
        (!fs::exists(copy, ec) || sha256_file(copy) != sha)) {
      copy_file_atomically(o_.target, copy);  // a full disk: no partial copy left, and why
    }
    ZooEntry e;
    e.file = "target.h5";
    e.group = "target";
    e.kind = "network";
    e.arch = c.arch;
    e.attack = "target";
    if (tp.seed >= 0) e.seed = tp.seed;
    e.accuracy = evaluate(*target, test_, o_.device);
    e.sha256 = sha;
    e.command = "cp " + zoo_detail::shell_word(o_.target) + " " + zoo_detail::shell_word(copy);
    e.weights_sha256 = weights_sha256(*target);
    move_old_paths(e);
    result_.target_accuracy = e.accuracy;
    add(e);
    ZooEvent ev(ZooEvent::Kind::Target);
    ev.file = e.file;
    ev.accuracy = e.accuracy;
    emit(ev);
  }

  double target_accuracy() const { return result_.target_accuracy; }

  // Makes (or reuses) one model and keeps it; returns its accuracy.
  double make_and_keep(const Planned& p) {
    ++index_;
    if (const ZooEntry* e = reusable(p)) {
      add(*e);
      if (!e->duplicate_of.empty()) ++result_.duplicates;
      if (!e->same_outputs_as.empty()) ++result_.same_outputs;
      ++result_.reused;
      ZooEvent ev(ZooEvent::Kind::Reused);
      ev.file = p.file;
      ev.index = index_;
      ev.planned = planned_;
      ev.accuracy = e->accuracy;
      ev.duplicate_of = e->duplicate_of;
      emit(ev);
      return e->accuracy;
    }
    MadeModel m = make(p);
    keep(p, m);
    return m.provenance.accuracy;
  }

  // One value of a sweep: kept when within the limit, else recorded as the sweep's stop.
  double sweep_value(const Planned& p, ZooSweep& sweep) {
    for (const ZooSweep& s : old_.sweeps)  // a stop already measured
      if (s.attack == sweep.attack && s.stopped_at && p.param && *s.stopped_at == *p.param &&
          zoo_detail::command_body(s.stop_command) == zoo_detail::command_body(p.command) &&
          s.target_accuracy == result_.target_accuracy) {
        ++index_;
        stopped(p, s.stop_accuracy, s.stop_command, sweep);
        return s.stop_accuracy;
      }
    if (reusable(p)) return make_and_keep(p);
    ++index_;
    MadeModel m = make(p);
    if (loses_too_much(result_.target_accuracy, m.provenance.accuracy, o_.max_accuracy_loss)) {
      stopped(p, m.provenance.accuracy, p.command, sweep);
      return m.provenance.accuracy;
    }
    keep(p, m);
    return m.provenance.accuracy;
  }

  void add_sweep(const ZooSweep& s) {
    manifest_.sweeps.push_back(s);
    write_manifest(manifest_, manifest_path_);
  }

  ZooResult finish(std::chrono::steady_clock::time_point t0) {
    write_manifest(manifest_, manifest_path_);
    result_.manifest = manifest_;
    result_.seconds = seconds_since(t0);
    return result_;
  }

 private:
  void emit(const ZooEvent& e) const {
    if (progress_) progress_(e);
  }

  void add(const ZooEntry& e) {
    manifest_.models.push_back(e);
    if (e.duplicate_of.empty()) kept_weights_[e.weights_sha256] = e.file;
    write_manifest(manifest_, manifest_path_);
  }

  // The old manifest's commands read with this build's paths (zoo_resume.h).
  void move_old_paths(const ZooEntry& target) { zoo_detail::read_with_paths_of(old_, target); }

  // The old manifest's entry for p when it can stand as it is (zoo_resume.h); otherwise
  // null, with *why saying why a model the manifest lists is made again.
  const ZooEntry* reusable(const Planned& p, std::string* why = nullptr) const {
    return zoo_detail::reusable_entry(old_, p, kept_weights_, o_.out, why);
  }

  MadeModel make(const Planned& p) {
    const auto t0 = std::chrono::steady_clock::now();
    ZooEvent ev(ZooEvent::Kind::Begin);
    ev.file = p.file;
    ev.index = index_;
    ev.planned = planned_;
    ev.description = p.description;
    reusable(p, &ev.again);
    emit(ev);
    if (MadeModel m; take_staged(p, m)) {
      seconds_ = -1;
      return m;
    }
    MakeCallbacks cb;
    cb.epoch = [&](const EpochReport& r) {
      ZooEvent e(ZooEvent::Kind::Epoch);
      e.file = p.file;
      e.report = &r;
      e.epoch = r.epoch;
      e.total = p.recipe.opt.epochs;
      e.accuracy = r.test_accuracy;
      emit(e);
    };
    cb.batch = [&](int epoch, int64_t done, int64_t total, double loss) {
      ZooEvent e(ZooEvent::Kind::Batch);
      e.file = p.file;
      e.epoch = epoch;
      e.done = done;
      e.total = total;
      e.loss = loss;
      emit(e);
    };
    cb.trees = [&](int done, int total) {
      ZooEvent e(ZooEvent::Kind::Trees);
      e.file = p.file;
      e.done = done;
      e.total = total;
      emit(e);
    };
    try {
      MadeModel m = make_model(p.recipe, train_, test_, o_.device, cb);
      seconds_ = seconds_since(t0);
      return m;
    } catch (const std::exception& e) {
      throw std::runtime_error(p.file + ": " + e.what());
    }
  }

  // The model another process made for p (ZooOptions::staged), loaded with every check
  // into m; false when there is none (or a damaged one: p is then made here).
  bool take_staged(const Planned& p, MadeModel& m) {
    staged_path_.clear();
    if (o_.staged.empty()) return false;
    const std::string path = staged_model_path(o_.staged, p.command);
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return false;
    try {
      if (is_forest_file(path))
        m.forest = load_forest(path, &m.provenance);
      else
        m.net = load_model(path, &m.provenance);
    } catch (const FileError&) {
      m = MadeModel();
      return false;
    }
    staged_path_ = path;
    return true;
  }

  void keep(const Planned& p, MadeModel& m) {
    const std::string path = (fs::path(o_.out) / p.file).string();
    ZooEntry e;
    e.file = p.file;
    e.group = p.group;
    e.kind = m.forest ? "forest" : "network";
    e.arch = p.arch;
    if (p.group != "negative") e.parent = "target.h5";
    e.attack = p.attack;
    e.param = p.param;
    e.seed = static_cast<int64_t>(p.recipe.seed);
    e.accuracy = m.provenance.accuracy;
    e.command = p.command;
    try {
      if (staged_path_.empty()) {
        save_made_model(m, path);
      } else {  // the very file that process wrote
        copy_file_atomically(staged_path_, path);
      }
      e.sha256 = sha256_file(path);
    } catch (const std::exception& x) {
      throw std::runtime_error(p.file + ": " + x.what());
    }
    e.weights_sha256 = m.net ? weights_sha256(*m.net) : weights_sha256(*m.forest);
    const auto same = kept_weights_.find(e.weights_sha256);
    ZooEvent ev(same == kept_weights_.end() ? ZooEvent::Kind::Done : ZooEvent::Kind::Duplicate);
    if (same != kept_weights_.end()) {
      // Identical weights: the same suspect twice. Listed, counted once, file not kept.
      e.duplicate_of = same->second;
      fs::remove(path);
      ++result_.duplicates;
    }
    if (e.duplicate_of.empty() && m.net) e.same_outputs_as = same_outputs(*m.net, e);
    if (!e.same_outputs_as.empty()) ++result_.same_outputs;
    ++result_.made;
    add(e);
    ev.file = p.file;
    ev.index = index_;
    ev.planned = planned_;
    ev.accuracy = e.accuracy;
    ev.seconds = seconds_;
    ev.duplicate_of = e.duplicate_of;
    ev.same_outputs_as = e.same_outputs_as;
    emit(ev);
  }

  // Logits of every test image, bit for bit.
  std::vector<float> test_logits(Network& net) const {
    net.to(o_.device);
    net.eval();
    NoGradGuard no_grad;
    std::vector<float> out;
    const int64_t n = test_.size();
    for (int64_t b = 0; b < n; b += 500) {
      const std::vector<float> z =
          net.logits(test_.images.narrow0(b, std::min<int64_t>(500, n - b)).to(o_.device))
              .to_vector();
      out.insert(out.end(), z.begin(), z.end());
    }
    return out;
  }

  // The first kept network of the same architecture and test accuracy whose logits on
  // every test image equal net's; "" when none. Accuracy first: it rules out almost all.
  std::string same_outputs(Network& net, const ZooEntry& e) {
    std::vector<float> mine;
    for (const ZooEntry& k : manifest_.models) {
      if (!k.duplicate_of.empty() || k.kind != "network" || k.arch != e.arch ||
          k.accuracy != e.accuracy)
        continue;
      if (mine.empty()) mine = test_logits(net);
      auto other = load_model((fs::path(o_.out) / k.file).string());
      if (test_logits(*other) == mine) return k.file;
    }
    return "";
  }

  void stopped(const Planned& p, double accuracy, const std::string& command, ZooSweep& sweep) {
    sweep.stopped_at = p.param;
    sweep.stop_accuracy = accuracy;
    sweep.stop_command = command;
    ZooEvent ev(ZooEvent::Kind::SweepStop);
    ev.file = p.file;
    ev.index = index_;
    ev.planned = planned_;
    ev.param = p.param.value_or(0);
    ev.accuracy = accuracy;
    emit(ev);
  }

  const ZooOptions& o_;
  const ZooProgress& progress_;
  std::string manifest_path_;
  ZooManifest old_, manifest_;
  Dataset train_, test_;
  std::map<std::string, std::string> kept_weights_;  // weights_sha256 -> file
  ZooResult result_;
  int index_ = 0, planned_ = 0;
  double seconds_ = 0;
  std::string staged_path_;  // the staged file of the model being made ("" none)
};

}  // namespace

ZooResult build_zoo(const ZooPlan& plan, const ZooOptions& o, const ZooProgress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  check_zoo(plan, o);
  const std::vector<Planned> all =
      zoo_detail::planned_models(plan, o, zoo_detail::read_target_info(o));

  const fs::path dir(o.out);
  fs::create_directories(dir);
  const FolderLock lock = FolderLock::take(o.out);  // one build per zoo folder at a time
  fs::create_directories(dir / "positive");
  fs::create_directories(dir / "negative");
  if (!plan.adaptive.empty()) fs::create_directories(dir / "adaptive");
  Builder b(o, progress);
  b.start(static_cast<int>(all.size()));

  for (size_t i = 0; i < all.size();) {
    if (all[i].sweep.empty()) {
      b.make_and_keep(all[i++]);
      continue;
    }
    // A sweep: its values, in order, until the first that loses too much.
    size_t end = i;
    std::vector<double> values;
    for (; end < all.size() && all[end].sweep == all[i].sweep; ++end) values.push_back(*all[end].param);
    ZooSweep sweep;
    sweep.attack = all[i].sweep;
    sweep.target_accuracy = b.target_accuracy();
    sweep.max_accuracy_loss = o.max_accuracy_loss;
    const size_t first = i;
    const SweepResult r =
        run_sweep(values, b.target_accuracy(), o.max_accuracy_loss, [&](double v) {
          const size_t k = first + static_cast<size_t>(
                                       std::find(values.begin(), values.end(), v) - values.begin());
          return b.sweep_value(all[k], sweep);
        });
    sweep.kept = r.kept;
    b.add_sweep(sweep);
    i = end;
  }
  return b.finish(t0);
}

}  // namespace ipg
