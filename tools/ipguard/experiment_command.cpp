// `ipguard experiment`: the paper's whole evaluation over a zoo folder. Parses the grid into
// typed settings (experiment_grid.h), runs them (fingerprint/experiment.h) with progress on
// stderr, keeps the results folder (--out, --resume: fingerprint/experiment_folder.h) and
// prints Tables 4, 5 and 8 (or the results as JSON with --json).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "fingerprint/experiment_folder.h"
#include "fingerprint/experiment_report.h"
#include "fingerprint/experiment_tables.h"
#include "models/data/dataset.h"
#include "tools/ipguard/build_info.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/experiment_grid.h"
#include "tools/ipguard/mpi_run.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

namespace {

const char* const kHelp =
    "Run the paper's evaluation (section 5) over a zoo folder: every method over its grid, in\n"
    "every mode, a fingerprint per setting, every suspect's matching rate, and ARUC, AUC and\n"
    "TPR at FPR <= 5%; prints Tables 4, 5 and 8.\n"
    "Presets: quick (default) is sized for the main job, a LeNet-5 zoo on 2 CPU cores in\n"
    "about 10 minutes: all five methods, all four modes, the paper's points (n = 100):\n"
    "  ipguard:k=0.1,1,3,10,30,100 (1000 iters); cwl2:k=0,1,10 (9 binary steps x 200 iters);\n"
    "  fgsm:eps=0.01,0.03,0.1,0.3; igsm:eps=0.01,0.03,0.1,0.3 (1000 iters); random.\n"
    "  CW-L2 keeps Carlini's 9 binary steps but runs 200 Adam iterations per step instead of\n"
    "  his 10,000: 9 x 1,000 took 76 s per setting there, so his budget would take over 10\n"
    "  minutes per setting; 200 lets its 12 settings (3 k x 4 modes) share the budget with\n"
    "  the other methods. Fewer of its points converge than with his budget (the tables\n"
    "  count them in every row).\n"
    "full: the paper's budgets, for a GPU: cwl2 9 x 10,000 iters, wider grids, and both\n"
    "  convergence policies.\n"
    "The zoo: DIR/target.h5, DIR/positive/*.h5, DIR/negative/*.h5, optional DIR/adaptive/*.h5\n"
    "and DIR/manifest.json (checked when present).";

// Progress lines on stderr: every setting's start and result, and inside a setting at most
// one line every two seconds (iteration and active rows, or the suspect being labeled).
class Progress {
 public:
  void operator()(const ExperimentProgress& p) {
    using Phase = ExperimentProgress::Phase;
    const auto now = std::chrono::steady_clock::now();
    const bool due = now - last_ >= std::chrono::seconds(2);
    const std::string tag =
        "[" + std::to_string(p.setting + 1) + "/" + std::to_string(p.settings) + "] ";
    if (p.phase == Phase::Loading) {
      if (due || p.suspect + 1 == p.suspects) {
        std::fprintf(stderr, "loading suspect %zu/%zu: %s\n", p.suspect + 1, p.suspects,
                     p.file.c_str());
        last_ = now;
      }
      return;
    }
    if (p.phase == Phase::Done) {
      const SettingResult& r = *p.result;
      std::fprintf(
          stderr, "%s%s: ARUC %.3f  AUC %.3f  TPR %.3f  converged %lld/%lld%s  %.1f s%s%s\n",
          tag.c_str(), setting_label(r.setting).c_str(), r.aruc, r.auc, r.tpr_at_fpr5,
          static_cast<long long>(r.converged), static_cast<long long>(r.points),
          r.setting.convergence == Convergence::UntilConverged
              ? (" of " + std::to_string(r.drawn) + " drawn").c_str()
              : "",
          r.extract_seconds,
          r.shared > 1 ? (" (1/" + std::to_string(r.shared) + " of a shared batch)").c_str() : "",
          r.resumed ? " (resumed: done in the earlier run)" : "");
      started_ = false;
      return;
    }
    if (!started_) {
      const std::string more = p.phase == Phase::Extracting && p.shared > 1
                                   ? " (in one batch with " + std::to_string(p.shared - 1) +
                                         " other setting" + (p.shared > 2 ? "s)" : ")")
                                   : "";
      std::fprintf(stderr, "%s%s ...%s\n", tag.c_str(), setting_label(*p.current).c_str(),
                   more.c_str());
      started_ = true;
      last_ = now;
      return;
    }
    if (!due) return;
    last_ = now;
    if (p.phase == Phase::Extracting)
      std::fprintf(
          stderr, "%s  round %lld: iteration %lld, %lld of %lld rows searching%s\n", tag.c_str(),
          static_cast<long long>(p.round), static_cast<long long>(p.extract.iteration),
          static_cast<long long>(p.extract.active), static_cast<long long>(p.extract.chunk_rows),
          p.round > 0 ? (" (" + std::to_string(p.converged) + " converged so far)").c_str() : "");
    else
      std::fprintf(stderr, "%s  labeling suspect %zu/%zu: %s\n", tag.c_str(), p.suspect + 1,
                   p.suspects, p.file.c_str());
  }

 private:
  std::chrono::steady_clock::time_point last_{};
  bool started_ = false;
};

}  // namespace

void add_experiment(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  struct Args {
    std::string zoo, preset = "quick", grid, methods, modes, converged, data = "fashion-mnist", out;
    int64_t n = 100, batch = 0, max_draws = 10;
    bool resume = false, until_converged = false, share_batch = false;
  };
  auto a = std::make_shared<Args>();
  // Parse-time checks: the text is parsed once against the quick preset (a bad value is a
  // usage error before any work); the runner parses it again against the chosen preset.
  auto checked = [](std::function<void(const std::string&)> parse) {
    return CLI::Validator(
        [parse](std::string& text) {
          parse(text);
          return std::string();
        },
        "");
  };
  CLI::App* cmd = app.add_subcommand("experiment", kHelp);
  cmd->add_option("--zoo", a->zoo, "zoo folder (see above)")->required();
  cmd->add_option("--preset", a->preset, "quick | full: the grids, modes and policies by default")
      ->capture_default_str()
      ->check(CLI::IsMember({"quick", "full"}));
  CLI::Option* grid_opt =
      cmd->add_option(
             "--grid", a->grid,
             "methods and their grids, separated by ';' or spaces: METHOD[:KEY=V,V...]...; keys "
             "k (ipguard, cwl2), eps (fgsm, igsm), iters, lr, steps (cwl2), c0 (cwl2), alpha "
             "(igsm); what is not named comes from the preset. E.g. "
             "\"ipguard:k=1,3,10;cwl2:k=0,1:iters=1000;random\"")
          ->check(checked([](const std::string& t) { parse_grid(t, preset("quick").grids); }));
  cmd->add_option("--methods", a->methods,
                  "the preset's grids of these methods only (comma-separated)")
      ->excludes(grid_opt)
      ->check(checked([](const std::string& t) { pick_methods(t, preset("quick").grids); }));
  cmd->add_option("--modes", a->modes,
                  "all, or a list of train/least-likely, train/random, random/least-likely, "
                  "random/random (or TL, TR, RL, RR); default: the preset's (all four)")
      ->check(checked([](const std::string& t) { parse_modes(t); }));
  CLI::Option* converged_opt =
      cmd->add_option(
             "--converged", a->converged,
             "paper (keep unconverged candidates as they ended), until (draw new ones until "
             "n converge, at most --max-draws x n), or both; default: the preset's "
             "(quick: paper, full: both)")
          ->check(checked([](const std::string& t) { parse_convergence(t); }));
  cmd->add_flag("--until-converged", a->until_converged, "the same as --converged until")
      ->excludes(converged_opt);
  at_least(cmd->add_option("--max-draws", a->max_draws,
                           "until-converged: candidates drawn at most, as a multiple of n")
               ->capture_default_str(),
           1);
  at_least(cmd->add_option("--n", a->n, "points per fingerprint")->capture_default_str(), 1);
  at_least(cmd->add_option("--batch", a->batch,
                           "candidates run together (0: 100 on the CPU; on a GPU as many as fit "
                           "in half its free memory)")
               ->capture_default_str(),
           0);
  cmd->add_flag("--share-batch", a->share_batch,
                "extract settings of the same method and budget (any k, mode or policy; cwl2 "
                "each with its own early abort) as one batch, each with the points it gets "
                "alone: fills a GPU that one fingerprint leaves mostly idle (no gain on a few "
                "CPU cores); --batch is per setting, and Table 8 divides a batch's time among "
                "its settings");
  data_spec(cmd->add_option("--data", a->data, "training images for the T (train) modes")
                ->capture_default_str());
  CLI::Option* out_opt =
      cmd->add_option("--out", a->out,
                      "results folder: results.json (after every setting), fingerprints/, "
                      "report.html; created when missing; an earlier run's folder needs --resume");
  cmd->add_flag("--resume", a->resume,
                "continue the results folder of an earlier, interrupted run: settings recorded "
                "there with an intact fingerprint file are not redone");
  runners[cmd] = [&g, a, out_opt]() {
    // --out "" is a mistake (an unset variable), not a run without a folder.
    if (out_opt->count() > 0 && a->out.empty()) check_output_dir("--out", a->out);
    const Preset p = preset(a->preset);
    const std::vector<MethodGrid> grids = !a->grid.empty()      ? parse_grid(a->grid, p.grids)
                                          : !a->methods.empty() ? pick_methods(a->methods, p.grids)
                                                                : p.grids;
    const std::vector<Mode> modes = a->modes.empty() ? p.modes : parse_modes(a->modes);
    const std::vector<Convergence> policies = a->until_converged ? parse_convergence("until")
                                              : a->converged.empty()
                                                  ? p.convergence
                                                  : parse_convergence(a->converged);
    const std::vector<Setting> settings = expand(grids, modes, policies);
    if (a->resume && a->out.empty())
      throw UsageError("--resume needs --out (the folder to resume)");

    // Under mpirun every rank runs this; only rank 0 keeps the folder and reports.
    Communicator& comm = world();
    const bool lead = comm.rank() == 0;
    if (!a->out.empty() && lead) {
      check_output_dir("--out", a->out);
      // Files in OUT/fingerprints that no setting wrote are removed at the end (stale).
      check_inputs_outside((std::filesystem::path(a->out) / "fingerprints").string(),
                           with_data({{"--zoo", a->zoo}}, a->data),
                           "whose .h5 files the experiment replaces");
    }
    Zoo zoo = scan_zoo(a->zoo);
    std::optional<ResultsFolder> folder;
    if (!a->out.empty() && lead) {
      try {
        folder = ResultsFolder::open(a->out, a->resume);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--out ") + e.what());
      }
    }
    const Device dev = resolve_device(g.device, &std::cerr);
    ExperimentOptions options;
    options.n = a->n;
    options.batch = a->batch;
    options.seed = g.seed;
    options.max_draws_factor = a->max_draws;
    options.share_batch = a->share_batch;

    Progress progress;
    LoadedZoo loaded = load_zoo(zoo, dev, std::ref(progress));
    for (const ZooProblem& q : zoo.problems)
      if (lead)
        std::cerr << "ipguard experiment: left out " << q.file << ": " << q.reason
                  << " (the other suspects are evaluated)\n";
    for (const std::string& u : zoo.unlisted)
      if (lead)
        std::cerr << "ipguard experiment: ignored " << u << " (not in the zoo's manifest)\n";
    ExperimentRecord rec = new_record(zoo, loaded);
    rec.version = IPG_VERSION;
    rec.commit = build_commit();
    rec.device = dev.str();
    rec.threads = omp_get_max_threads();
    rec.data = a->data;
    rec.options = options;
    rec.planned = settings;
    if (folder && folder->previous()) {
      const std::string why = resume_mismatch(*folder->previous(), rec);
      if (!why.empty())
        throw UsageError("--resume: " + folder->results_path() + " was made with different " + why +
                         "; choose another --out");
      const std::string warn = resume_warning(*folder->previous(), rec);
      if (!warn.empty()) std::cerr << "ipguard experiment: note: " << warn << "\n";
      for (const std::string& d : folder->damaged_fingerprints())
        std::cerr << "ipguard experiment: redone: " << d << "\n";
    }

    Dataset train_set;
    const bool need_train = std::any_of(settings.begin(), settings.end(), [](const Setting& s) {
      return s.mode.init == Init::Train;
    });
    if (need_train) train_set = load_dataset(a->data, Split::Train);
    const Tensor* train_images = need_train ? &train_set.images : nullptr;
    if (lead)
      std::cerr << zoo.group(SuspectGroup::Positive).size() << " positive, "
                << zoo.group(SuspectGroup::Negative).size() << " negative and "
                << zoo.group(SuspectGroup::Adaptive).size() << " adaptive suspects; "
                << counted(settings.size(), "setting") << " of " << counted(options.n, "point")
                << " (" << grid_text(grids) << ")\n";

    const std::vector<std::string> removed = run_recorded_on_ranks(
        comm, rec, loaded, train_images, dev, folder ? &*folder : nullptr, std::ref(progress));
    if (!lead) {
      comm.barrier(kTagBarrier);  // wait for rank 0's report without spinning in MPI_Finalize
      return 0;
    }
    for (const std::string& f : removed)
      std::cerr << "ipguard experiment: removed " << f << " (not in this run's grid)\n";

    const std::vector<std::string> notes = {
        std::string("preset ") + p.name + "; grid " + grid_text(grids),
        "cwl2 runs Carlini's binary search (9 steps) with the iterations per step shown; the "
        "quick preset's 200 (not his 10,000) is what fits the main job's ~10 minutes on 2 CPU "
        "cores, so fewer of its points converge"};
    if (folder) {
      folder->write_file(
          "report.html",
          report_html(rec, report_points(rec, folder->dir(), *loaded.target, train_images), notes));
      std::cerr << "results in " << folder->dir() << ": results.json, fingerprints/, report.html\n";
    }
    if (g.json) {
      std::cout << results_text(rec);
    } else {
      std::cout << render_text(table4(rec)) << "\n";
      for (const TextTable& t : table5(rec)) std::cout << render_text(t) << "\n";
      std::cout << render_text(table8(rec));
    }
    std::cout << std::flush;
    if (comm.distributed()) comm.barrier(kTagBarrier);
    return 0;
  };
}

}  // namespace ipg::cli
