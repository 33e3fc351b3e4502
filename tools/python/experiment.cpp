// ipguard.experiment: the paper's evaluation over a zoo folder, as `ipguard experiment`
// runs it (the same presets and grid text, tools/ipguard/experiment_grid.h; the same
// results folder), returning Tables 4, 5 and 8 and the whole record instead of printing.
#include <omp.h>

#include <optional>

#include "fingerprint/experiment_folder.h"
#include "fingerprint/experiment_report.h"
#include "fingerprint/experiment_tables.h"
#include "models/data/dataset.h"
#include "tools/ipguard/build_info.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/experiment_grid.h"
#include "tools/python/bindings.h"

namespace ipg::py {

namespace {

const char* phase_name(ExperimentProgress::Phase p) {
  switch (p) {
    case ExperimentProgress::Phase::Loading: return "loading";
    case ExperimentProgress::Phase::Extracting: return "extracting";
    case ExperimentProgress::Phase::Labeling: return "labeling";
    case ExperimentProgress::Phase::Done: return "done";
  }
  return "";
}

pyb::dict progress_dict(const ExperimentProgress& p) {
  pyb::dict d;
  d["phase"] = phase_name(p.phase);
  d["setting"] = p.setting;
  d["settings"] = p.settings;
  if (p.current) d["label"] = setting_label(*p.current);
  if (p.phase == ExperimentProgress::Phase::Extracting) {
    d["round"] = p.round;
    d["iteration"] = p.extract.iteration;
    d["active"] = p.extract.active;
    d["chunk_rows"] = p.extract.chunk_rows;
    d["shared"] = p.shared;
  }
  if (p.phase == ExperimentProgress::Phase::Loading ||
      p.phase == ExperimentProgress::Phase::Labeling) {
    d["suspect"] = p.suspect;
    d["suspects"] = p.suspects;
    d["file"] = p.file;
  }
  if (p.phase == ExperimentProgress::Phase::Done && p.result) {
    d["label"] = setting_label(p.result->setting);
    d["aruc"] = p.result->aruc;
    d["auc"] = p.result->auc;
    d["tpr_at_fpr5"] = p.result->tpr_at_fpr5;
    d["seconds"] = p.result->extract_seconds;
  }
  return d;
}

// A table as a plain dict (title, columns, rows as lists of cells, notes) or, with
// pandas, a DataFrame whose attrs hold the title and notes.
pyb::object table(const TextTable& t, bool pandas) {
  pyb::list rows;
  for (const auto& r : t.rows) rows.append(pyb::cast(r));
  if (pandas) {
    pyb::object df = pyb::module_::import("pandas").attr("DataFrame")(rows, pyb::arg("columns") = t.header);
    df.attr("attrs")["title"] = t.title;
    df.attr("attrs")["notes"] = t.notes;
    return df;
  }
  pyb::dict d;
  d["title"] = t.title;
  d["columns"] = t.header;
  d["rows"] = rows;
  d["notes"] = t.notes;
  return d;
}

bool want_pandas(const pyb::object& as_pandas) {
  if (!as_pandas.is_none()) return as_pandas.cast<bool>();
  try {
    pyb::module_::import("pandas");
    return true;
  } catch (const pyb::error_already_set&) {
    return false;
  }
}

pyb::dict experiment(const pyb::object& zoo_arg, const std::string& preset_name,
                     const std::string& grid, const std::string& methods, const std::string& modes,
                     const std::string& converged, int64_t n, int64_t batch,
                     const pyb::object& seed_obj, int64_t max_draws, bool share_batch,
                     const std::string& data, const pyb::object& out_arg, bool resume, const std::string& device, const pyb::object& progress,
                     const pyb::object& as_pandas) {
  const std::string zoo_dir = path_arg(zoo_arg, "zoo_dir");
  const std::string out = out_arg.is_none() ? std::string() : path_arg(out_arg, "out");
  const uint64_t seed = seed_arg(seed_obj);
  if (n < 1) throw std::invalid_argument("n must be at least 1");
  if (batch < 0) throw std::invalid_argument("batch must be 0 (automatic) or more");
  if (max_draws < 1) throw std::invalid_argument("max_draws must be at least 1");
  if (!grid.empty() && !methods.empty())
    throw std::invalid_argument("give grid or methods, not both");
  if (resume && out.empty()) throw std::invalid_argument("resume needs out (the folder to resume)");
  if (!progress.is_none() && !PyCallable_Check(progress.ptr()))
    throw std::invalid_argument("progress must be a callable or None");
  const bool pandas = want_pandas(as_pandas);
  const cli::Preset p = cli::preset(preset_name);
  const std::vector<cli::MethodGrid> grids = !grid.empty()      ? cli::parse_grid(grid, p.grids)
                                             : !methods.empty() ? cli::pick_methods(methods, p.grids)
                                                                : p.grids;
  const std::vector<Mode> mode_list = modes.empty() ? p.modes : cli::parse_modes(modes);
  const std::vector<Convergence> policies =
      converged.empty() ? p.convergence : cli::parse_convergence(converged);
  const std::vector<Setting> settings = cli::expand(grids, mode_list, policies);
  const Device dev = parse_device(device);
  auto on_progress = python_progress<ExperimentProgress>(progress, &progress_dict);

  ExperimentRecord rec;
  std::vector<std::string> problems, removed;
  {
    pyb::gil_scoped_release nogil;
    Zoo zoo = scan_zoo(zoo_dir);
    std::optional<ResultsFolder> folder;
    if (!out.empty()) folder = ResultsFolder::open(out, resume);
    ExperimentOptions options;
    options.n = n;
    options.batch = batch;
    options.seed = seed;
    options.max_draws_factor = max_draws;
    options.share_batch = share_batch;
    LoadedZoo loaded = load_zoo(zoo, dev, on_progress);
    for (const ZooProblem& q : zoo.problems) problems.push_back(q.file + ": " + q.reason);
    rec = new_record(zoo, loaded);
    rec.version = IPG_VERSION;
    rec.commit = cli::build_commit();
    rec.device = dev.str();
    rec.threads = omp_get_max_threads();
    rec.data = data;
    rec.options = options;
    rec.planned = settings;
    if (folder && folder->previous()) {
      const std::string why = resume_mismatch(*folder->previous(), rec);
      if (!why.empty())
        throw std::invalid_argument("resume: " + folder->results_path() +
                                    " was made with different " + why + "; choose another out");
    }
    Dataset train_set;
    const bool need_train = std::any_of(settings.begin(), settings.end(), [](const Setting& s) {
      return s.mode.init == Init::Train;
    });
    if (need_train) train_set = load_dataset(data, Split::Train);
    const Tensor* train_images = need_train ? &train_set.images : nullptr;
    removed = run_recorded(rec, loaded, train_images, dev, folder ? &*folder : nullptr, on_progress);
    if (folder) {
      const std::vector<std::string> notes = {"preset " + p.name + "; grid " + cli::grid_text(grids)};
      folder->write_file("report.html",
                         report_html(rec, report_points(rec, folder->dir(), *loaded.target, train_images),
                                     notes));
    }
  }
  pyb::dict d;
  d["table4"] = table(table4(rec), pandas);
  pyb::list t5;
  for (const TextTable& t : table5(rec)) t5.append(table(t, pandas));
  d["table5"] = t5;
  d["table8"] = table(table8(rec), pandas);
  d["settings"] = table(settings_table(rec), pandas);
  d["results"] = pyb::module_::import("json").attr("loads")(results_text(rec));
  d["problems"] = problems;
  d["removed"] = removed;
  d["out"] = out.empty() ? pyb::object(pyb::none()) : pyb::object(pyb::str(out));
  return d;
}

}  // namespace

void register_experiment(pyb::module_& m) {
  m.def("experiment", &experiment, pyb::arg("zoo_dir"), pyb::arg("preset") = "quick",
        pyb::arg("grid") = "", pyb::arg("methods") = "", pyb::arg("modes") = "",
        pyb::arg("converged") = "", pyb::arg("n") = 100, pyb::arg("batch") = 0,
        pyb::arg("seed") = 0, pyb::arg("max_draws") = 10,
        pyb::arg("share_batch") = false, pyb::arg("data") = "fashion-mnist",
        pyb::arg("out") = pyb::none(), pyb::arg("resume") = false, pyb::arg("device") = "cpu",
        pyb::arg("progress") = pyb::none(), pyb::arg("as_pandas") = pyb::none(),
        "The paper's evaluation over a zoo folder, as `ipguard experiment` runs it: preset "
        "quick | full; grid, methods, modes, converged as its --grid, --methods, --modes, "
        "--converged text ('' : the preset's); share_batch as --share-batch; out: a results folder (results.json, "
        "fingerprints/, report.html; resume continues one). Returns a dict: table4, table5 "
        "(a list, one per convergence policy), table8 and settings, each a dict (title, "
        "columns, rows, notes) or, when pandas is importable (as_pandas=None) or asked for, a "
        "pandas DataFrame; results (results.json's record), problems (suspects left out), "
        "removed, out. progress: None or a callable given a dict (phase, setting, settings, "
        "...). The GIL is released while it runs.");
}

}  // namespace ipg::py
