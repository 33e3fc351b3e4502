// `ipguard zoo`: parses the plan (--positives, --negatives, --adaptive) into models/zoo.h's
// types, checks every output before any work, and prints build_zoo's progress on stderr
// and a summary (or --json) on stdout. The folder layout and the manifest:
// models/zoo_manifest.h.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/folder_lock.h"
#include "models/zoo.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/mpi_comm.h"
#include "tools/ipguard/mpi_run.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

namespace {

const char* const kDefaultPositives = "ftll,ftal,rtll,rtal,wp:sweep,fp:sweep";

std::vector<PositiveSpec> parse_positives(const std::string& list) {
  std::vector<PositiveSpec> out;
  for (const std::string& item : split_list(list)) {
    PositiveSpec p;
    if (item == "wp:sweep" || item == "fp:sweep") {
      p.sweep = true;
      p.attack.attack = item[0] == 'w' ? Attack::WeightPrune : Attack::FilterPrune;
    } else {
      try {
        p.attack = parse_post_process(item);
      } catch (const std::invalid_argument& e) {
        throw UsageError("--positives " + std::string(e.what()) + "; or wp:sweep, fp:sweep");
      }
    }
    out.push_back(p);
  }
  return out;
}

// "same:2,rf:1" -> ARCH:COUNT pairs (COUNT 1 when left out).
std::vector<NegativeSpec> parse_negatives(const std::string& list) {
  std::vector<NegativeSpec> out;
  for (const std::string& item : split_list(list)) {
    const size_t colon = item.find(':');
    NegativeSpec n;
    n.arch = item.substr(0, colon);
    double count = 1;
    if (colon != std::string::npos) {
      try {
        count = parse_number(item.substr(colon + 1), "--negatives " + item);
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
    }
    if (!(count >= 1 && count <= 100) || count != std::floor(count))
      throw UsageError("--negatives " + item + ": COUNT must be 1-100");
    n.count = static_cast<int>(count);
    if (n.arch != "same") check_architecture("--negatives", n.arch);
    out.push_back(n);
  }
  return out;
}

// "distill:same,distill:resnet20,label-only:same".
std::vector<AdaptiveSpec> parse_adaptive(const std::string& list) {
  std::vector<AdaptiveSpec> out;
  for (const std::string& item : split_list(list)) {
    const size_t colon = item.find(':');
    AdaptiveSpec a;
    try {
      a.kind = parse_extraction(item.substr(0, colon));
    } catch (const std::invalid_argument& e) {
      throw UsageError("--adaptive " + item + ": " + e.what());
    }
    a.arch = colon == std::string::npos ? "same" : item.substr(colon + 1);
    if (a.arch == "rf") throw UsageError("--adaptive " + item + ": the student is a network");
    if (a.arch != "same") check_architecture("--adaptive", a.arch);
    out.push_back(a);
  }
  return out;
}

// Progress lines on stderr: one per model begun and ended, the epochs, and a running
// batch bar when stderr is a terminal.
void print_event(const ZooEvent& e, bool tty) {
  using K = ZooEvent::Kind;
  const std::string at =
      "[" + std::to_string(e.index) + "/<=" + std::to_string(e.planned) + "] " + e.file;
  switch (e.kind) {
    case K::Target:
      std::fprintf(stderr, "zoo: target.h5: test accuracy %.4f\n", e.accuracy);
      break;
    case K::Begin:
      std::fprintf(stderr, "%s: %s%s\n", at.c_str(), e.description.c_str(),
                   e.again.empty() ? "" : (" (made again: " + e.again + ")").c_str());
      break;
    case K::Batch:
      if (tty)
        std::fprintf(stderr, "\r\033[K  epoch %d: batch %lld/%lld  loss %.4f", e.epoch,
                     (long long)e.done, (long long)e.total, e.loss);
      break;
    case K::Epoch:
      std::fprintf(stderr,
                   "%s  epoch %d/%lld  loss %.4f  train acc %.4f  test acc %.4f  %.0f img/s  "
                   "%.1f s\n",
                   tty ? "\r\033[K" : "", e.epoch, (long long)e.total, e.report->train_loss,
                   e.report->train_accuracy, e.report->test_accuracy,
                   e.report->images_per_second, e.report->seconds);
      break;
    case K::Trees:
      if (tty) std::fprintf(stderr, "\r\033[K  tree %lld/%lld", (long long)e.done, (long long)e.total);
      if (tty && e.done == e.total) std::fprintf(stderr, "\n");
      break;
    case K::Done:
      if (e.seconds < 0)
        std::fprintf(stderr, "  %s: accuracy %.4f (made by an MPI rank, above)\n", e.file.c_str(),
                     e.accuracy);
      else
        std::fprintf(stderr, "  %s: accuracy %.4f (%.1f s)\n", e.file.c_str(), e.accuracy,
                     e.seconds);
      if (!e.same_outputs_as.empty())
        std::fprintf(stderr,
                     "  %s: weights differ from %s's but its logits on every test image are "
                     "the same: kept (a unit off on the data may act elsewhere)\n",
                     e.file.c_str(), e.same_outputs_as.c_str());
      break;
    case K::Duplicate:
      std::fprintf(stderr,
                   "  %s: accuracy %.4f, weights identical to %s: a duplicate, counted once "
                   "(file not kept)\n",
                   e.file.c_str(), e.accuracy, e.duplicate_of.c_str());
      break;
    case K::Reused:
      std::fprintf(stderr, "%s: in the manifest, file intact: kept (accuracy %.4f%s%s)\n",
                   at.c_str(), e.accuracy, e.duplicate_of.empty() ? "" : ", duplicate of ",
                   e.duplicate_of.c_str());
      break;
    case K::SweepStop:
      std::fprintf(stderr,
                   "  %s: accuracy %.4f, more than the allowed loss below the target: the "
                   "sweep stops here (not kept)\n",
                   e.file.c_str(), e.accuracy);
      break;
  }
}

}  // namespace

void add_zoo(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  struct Args {
    std::string positives = kDefaultPositives, negatives = "same:2,rf:1", adaptive;
    ZooOptions o;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "zoo",
      "build a target's zoo: post-processed copies (positive/), independently trained models "
      "(negative/) and optionally extractions (adaptive/), with manifest.json");
  cmd->add_option("--target", a->o.target, "the protected model (HDF5 network)")->required();
  cmd->add_option("--out", a->o.out, "zoo folder to fill (created)")->required();
  data_spec(cmd->add_option("--data", a->o.data, "training data (dataset spec)")
                ->capture_default_str());
  cmd->add_option("--positives", a->positives,
                  "post-processing attacks (see postprocess); wp:sweep and fp:sweep try p = "
                  "0.1, 0.2, ... and c = 1/16, 2/16, ... until the accuracy loss exceeds "
                  "--max-loss (the paper's rule)")
      ->capture_default_str();
  cmd->add_option("--negatives", a->negatives,
                  "ARCH:COUNT list of independent models ('same': the target's arch; rf: "
                  "random forests)")
      ->capture_default_str();
  cmd->add_option("--adaptive", a->adaptive,
                  "beyond the paper, extractions of the target: distill:ARCH (soft labels at "
                  "--temperature), label-only:ARCH (its labels); ARCH 'same': the target's "
                  "own architecture (default: none)");
  at_least(cmd->add_option("--epochs", a->o.epochs,
                           "epochs of post-processing, and of every model trained unless "
                           "--train-epochs is given")
               ->capture_default_str(),
           1);
  at_least(cmd->add_option("--train-epochs", a->o.fresh_epochs,
                           "epochs of fresh networks (negatives, distillation, label-only); 0: "
                           "--epochs (a paper-scale zoo trains them as long as the target)")
               ->capture_default_str(),
           0);
  at_least(cmd->add_option("--limit", a->o.limit, "train on the first N images only (0: all)"),
           0);
  at_least(cmd->add_option("--batch", a->o.batch, "batch size")->capture_default_str(), 1);
  positive(cmd->add_option("--lr", a->o.lr, "peak learning rate of post-processing")
               ->capture_default_str());
  positive(cmd->add_option("--train-lr", a->o.fresh_lr,
                           "peak learning rate of fresh networks (negatives, label-only)")
               ->capture_default_str());
  positive(cmd->add_option("--distill-lr", a->o.distill_lr,
                           "peak learning rate of distillation (lower: the T^2-scaled loss "
                           "steps about T times further)")
               ->capture_default_str());
  at_least(cmd->add_option("--trees", a->o.trees, "trees per random forest")->capture_default_str(),
           1);
  positive(cmd->add_option("--temperature", a->o.temperature, "distillation temperature")
               ->capture_default_str());
  bounded(cmd->add_option("--max-loss", a->o.max_accuracy_loss,
                          "the sweeps stop at the first value losing more accuracy than this "
                          "(0.03: the paper's 3%)")
              ->capture_default_str(),
          unit_interval_bounds());
  cmd->add_flag("--resume", a->o.resume,
                "continue the zoo in --out: models in its manifest whose file still has the "
                "listed sha256 are kept, the rest made (also for a zoo folder copied elsewhere "
                "or a target file moved: paths are not what is compared); a zoo made with other "
                "options (--epochs, --limit, --seed...) is refused");
  runners[cmd] = [&g, a]() {
    namespace fs = std::filesystem;
    // Under mpirun every rank runs this (models shared out: mpi_run.h); only rank 0 checks
    // the folder, writes and reports.
    Communicator& comm = world();
    const bool lead = comm.rank() == 0;
    ZooOptions o = a->o;
    o.seed = g.seed;  // in the commands a resumed zoo's are compared with
    // Everything is checked before anything is written or trained.
    if (lead) check_output_dir("--out", o.out);
    ZooPlan plan;
    plan.positives = parse_positives(a->positives);
    plan.negatives = parse_negatives(a->negatives);
    plan.adaptive = parse_adaptive(a->adaptive);
    // experiment measures the positives against the negatives: a zoo needs both.
    if (plan.positives.empty())
      throw UsageError("--positives: give at least one attack (a zoo needs positive suspects)");
    if (plan.negatives.empty())
      throw UsageError("--negatives: give at least one ARCH:COUNT (a zoo needs negative suspects)");
    try {
      if (lead) check_zoo_plan(plan, o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    // Nothing written may replace the target or the data (a zoo made over an old one).
    const std::vector<Input> inputs = with_data({{"--target", o.target}}, o.data);
    for (const std::string& f : lead ? zoo_files(plan, o) : std::vector<std::string>()) {
      const std::string path = (fs::path(o.out) / f).string();
      if (f == "target.h5")  // a rerun from the zoo's own copy leaves it as it is
        check_output_path("--out", path, with_data({}, o.data));
      else
        check_output_path("--out", path, inputs);
    }
    try {
      if (lead) check_zoo_folder(plan, o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    o.device = resolve_device(g.device, g.json ? nullptr : &std::cerr);
    const bool tty = ::isatty(2);
    ZooProgress progress;
    if (!g.json) progress = [tty](const ZooEvent& e) { print_event(e, tty); };
    ZooResult r;
    try {
      r = build_zoo_on_ranks(comm, plan, o, progress, g.json);
    } catch (const FolderBusy& e) {  // found before any model is made
      throw UsageError(std::string("--out ") + e.what());
    }
    if (!lead) {
      comm.barrier(kTagBarrier);  // wait for rank 0's report without spinning in MPI_Finalize
      return 0;
    }

    int counts[3] = {0, 0, 0};  // kept positive, negative, adaptive
    for (const ZooEntry& e : r.manifest.models)
      if (e.duplicate_of.empty())
        counts[e.group == "positive" ? 0 : e.group == "negative" ? 1 : 2] +=
            e.group != "target";
    if (g.json) {
      nlohmann::json j = nlohmann::json::parse(manifest_text(r.manifest));
      j["zoo"] = o.out;
      j["out"] = o.out;
      j["positives"] = counts[0];
      j["negatives"] = counts[1];
      j["adaptive"] = counts[2];
      j["made"] = r.made;
      j["reused"] = r.reused;
      j["duplicates"] = r.duplicates;
      j["same_outputs"] = r.same_outputs;
      j["target_accuracy"] = r.target_accuracy;
      j["seconds"] = r.seconds;
      std::cout << j.dump(2) << "\n" << std::flush;
      if (comm.distributed()) comm.barrier(kTagBarrier);
      return 0;
    }
    std::printf("%-34s %-9s %-10s %8s  %s\n", "file", "group", "attack", "accuracy", "note");
    for (const ZooEntry& e : r.manifest.models)
      std::printf("%-34s %-9s %-10s %8.4f  %s\n", e.file.c_str(), e.group.c_str(),
                  (e.attack + (e.param ? ":" + exact_number(*e.param) : "")).c_str(), e.accuracy,
                  !e.duplicate_of.empty()      ? ("duplicate of " + e.duplicate_of).c_str()
                  : !e.same_outputs_as.empty() ? ("same test logits as " + e.same_outputs_as).c_str()
                                               : "");
    for (const ZooSweep& s : r.manifest.sweeps)
      if (s.stopped_at)
        std::printf("%s sweep: kept %zu values; %s stopped it (accuracy %.4f, target %.4f)\n",
                    s.attack.c_str(), s.kept.size(), exact_number(*s.stopped_at).c_str(),
                    s.stop_accuracy, s.target_accuracy);
      else
        std::printf("%s sweep: kept all %zu values\n", s.attack.c_str(), s.kept.size());
    std::printf(
        "zoo %s: target.h5, %d positive, %d negative and %d adaptive suspects (%d duplicates "
        "counted once; %d kept with an earlier model's test logits); %d made, %d reused, "
        "%.0f s\n",
        o.out.c_str(), counts[0], counts[1], counts[2], r.duplicates, r.same_outputs, r.made,
        r.reused, r.seconds);
    std::fflush(stdout);
    if (comm.distributed()) comm.barrier(kTagBarrier);
    return 0;
  };
}

}  // namespace ipg::cli
