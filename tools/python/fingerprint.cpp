// ipguard.extract, ipguard.load_fingerprint and the Fingerprint class: the library's
// extraction (fingerprint/extract.h) with `ipguard extract`'s options and defaults, its
// result as numpy arrays, and the sealed fingerprint file.
#include "tools/python/fingerprint.h"

#include "engine/sha256.h"
#include "fingerprint/extract.h"
#include "models/data/dataset.h"
#include "tools/ipguard/output_check.h"

namespace ipg::py {

namespace {

void save(PyFingerprint& f, const pyb::object& path_obj) {
  const std::string path = path_arg(path_obj, "path");
  // Never over one of its inputs: the file it was loaded from, the target model's file.
  cli::check_output_file("path", path, {{"the fingerprint's own file", f.file},
                                        {"the target model", f.model_path}});
  pyb::gil_scoped_release nogil;
  save_fingerprint(f.fp, path);
  f.file = path;
}

pyb::dict params_of(const Fingerprint& fp) {
  pyb::dict d;
  d["k"] = fp.params.k;
  d["lr"] = fp.params.lr;
  d["iters"] = fp.params.iters;
  d["eps"] = fp.params.eps;
  d["init"] = fp.params.init;
  d["target"] = fp.params.target;
  return d;
}

pyb::array_t<bool> converged_of(const Fingerprint& fp) {
  pyb::array_t<bool> a(pyb::ssize_t(fp.converged.size()));
  for (size_t i = 0; i < fp.converged.size(); ++i) a.mutable_data()[i] = fp.converged[i] != 0;
  return a;
}

std::shared_ptr<PyFingerprint> extract(pyb::object model_arg, const std::string& method, int64_t n,
                                       double k, int64_t iters, double lr, double eps, double alpha,
                                       int64_t binary_steps, double c0, const std::string& init,
                                       const std::string& target, int64_t batch,
                                       const pyb::object& seed, const std::string& data,
                                       pyb::object progress,
                                       const std::optional<std::string>& device) {
  ExtractOptions o;
  o.method = method;
  o.n = n;
  o.k = k;
  o.iters = iters;
  o.lr = lr;
  o.eps = eps;
  o.alpha = alpha;
  o.binary_steps = binary_steps;
  o.c0 = c0;
  o.init = init;
  o.target = target;
  o.batch = batch;
  o.seed = seed_arg(seed);
  validate(o);
  // As the CLI: an option the method would ignore is refused, not dropped (given at its
  // default it cannot be told from one left out).
  const ExtractOptions d;
  const std::pair<MethodOption, std::pair<const char*, bool>> given[] = {
      {MethodOption::K, {"k", o.k != d.k}},
      {MethodOption::Eps, {"eps", o.eps != d.eps}},
      {MethodOption::Iters, {"iters", o.iters != d.iters}},
      {MethodOption::BinarySteps, {"binary_steps", o.binary_steps != d.binary_steps}},
      {MethodOption::Lr, {"lr", o.lr != d.lr}},
      {MethodOption::C0, {"c0", o.c0 != d.c0}},
      {MethodOption::Alpha, {"alpha", o.alpha != d.alpha}},
      {MethodOption::Target, {"target", o.target != d.target}}};
  for (const auto& [option, what] : given)
    if (what.second && !reads_option(o.method, option))
      throw std::invalid_argument(std::string(what.first) + " does not apply to method " +
                                  o.method);
  if (!progress.is_none() && !PyCallable_Check(progress.ptr()))
    throw std::invalid_argument("progress must be a callable or None");
  std::shared_ptr<Model> model = resolve_model(model_arg, device);
  if (!model->network)
    throw std::invalid_argument(model->path + ": a " + model->classifier->arch() +
                                " has no gradient to search along; extract needs a network "
                                "(forests can be verified as suspects)");
  auto on_progress = python_progress<ExtractProgress>(progress, [n](const ExtractProgress& p) {
    pyb::dict d;
    d["done"] = p.done;
    d["n"] = n;
    d["chunk_rows"] = p.chunk_rows;
    d["active"] = p.active;
    d["iteration"] = p.iteration;
    d["batch_rows"] = p.batch_rows;
    return d;
  });
  auto result = std::make_shared<PyFingerprint>();
  result->model_path = model->path;
  {
    pyb::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(model->mutex);
    Dataset train_set;
    if (o.init == "train") train_set = load_dataset(data, Split::Train);
    result->fp = extract_fingerprint(*model->network, o,
                                     o.init == "train" ? &train_set.images : nullptr, on_progress);
    result->fp.model_sha256 = model->sha256;
  }
  return result;
}

}  // namespace

std::shared_ptr<Model> resolve_model(const pyb::object& model,
                                     const std::optional<std::string>& device) {
  if (pyb::isinstance<Model>(model)) {
    auto loaded = model.cast<std::shared_ptr<Model>>();
    // A loaded model stays where it is: a device other than its own is an error, not ignored.
    if (device && *device != "auto" && !(parse_device(*device) == loaded->device))
      throw std::invalid_argument("device '" + *device + "': the model is loaded on " +
                                  loaded->device.str() + " (ipguard.load(path, device=...) " +
                                  "puts it elsewhere)");
    return loaded;
  }
  if (std::optional<std::string> path = maybe_path(model))
    return load_model_file(*path, device.value_or("cpu"));
  throw pyb::type_error("model must be an ipguard.Model or a model file path, not " +
                        std::string(pyb::str(pyb::type::handle_of(model).attr("__name__"))));
}

std::shared_ptr<PyFingerprint> fingerprint_arg(const pyb::object& fp) {
  if (pyb::isinstance<PyFingerprint>(fp)) return fp.cast<std::shared_ptr<PyFingerprint>>();
  if (std::optional<std::string> path = maybe_path(fp)) {
    auto f = std::make_shared<PyFingerprint>();
    f->file = *path;
    pyb::gil_scoped_release nogil;
    f->fp = load_fingerprint(f->file);
    return f;
  }
  throw pyb::type_error("fingerprint must be an ipguard.Fingerprint or a fingerprint file path, not " +
                        std::string(pyb::str(pyb::type::handle_of(fp).attr("__name__"))));
}

void register_fingerprint(pyb::module_& m) {
  pyb::class_<PyFingerprint, std::shared_ptr<PyFingerprint>>(
      m, "Fingerprint",
      "Points near a target model's decision boundary with the labels it gives them, and a "
      "record per candidate (what the fingerprint file keeps). Arrays are copies.")
      .def_property_readonly("points", [](const PyFingerprint& f) { return to_numpy(f.fp.points); },
                             "float32 [n, C, H, W] in [0, 1]")
      .def_property_readonly("labels", [](const PyFingerprint& f) { return to_numpy_i32(f.fp.labels); },
                             "int32 [n]: the target's labels of the points")
      .def_property_readonly("source", [](const PyFingerprint& f) { return to_numpy(f.fp.source); },
                             "int32 [n]: label i each candidate started from")
      .def_property_readonly("target", [](const PyFingerprint& f) { return to_numpy(f.fp.target); },
                             "int32 [n]: label j each candidate was pushed towards")
      .def_property_readonly("iterations",
                             [](const PyFingerprint& f) { return to_numpy(f.fp.iterations); },
                             "int32 [n]: iterations run")
      .def_property_readonly("final_loss",
                             [](const PyFingerprint& f) { return to_numpy(f.fp.final_loss); },
                             "float32 [n]: loss at the end (diagnostic; NaN possible)")
      .def_property_readonly("converged", [](const PyFingerprint& f) { return converged_of(f.fp); },
                             "bool [n]: whether the candidate met its method's success rule")
      .def_property_readonly("method", [](const PyFingerprint& f) { return f.fp.method; })
      .def_property_readonly("params", [](const PyFingerprint& f) { return params_of(f.fp); },
                             "the extraction parameters the file records")
      .def_property_readonly("seed", [](const PyFingerprint& f) { return f.fp.seed; })
      .def_property_readonly("arch", [](const PyFingerprint& f) { return f.fp.arch; })
      .def_property_readonly("model_sha256", [](const PyFingerprint& f) { return f.fp.model_sha256; })
      .def_property_readonly("created", [](const PyFingerprint& f) { return f.fp.created; })
      .def_property_readonly("file", [](const PyFingerprint& f) -> pyb::object {
        if (f.file.empty()) return pyb::none();
        return pyb::str(f.file);
      }, "the file it was loaded from or last saved to (None before)")
      .def("__len__", [](const PyFingerprint& f) { return f.fp.size(); })
      .def("save", &save, pyb::arg("path"),
           "Writes the sealed HDF5 fingerprint file (atomically: temp name + rename). Refuses "
           "(ValueError) the file it was loaded from and the target model's file.")
      .def("__repr__", [](const PyFingerprint& f) {
        int64_t converged = 0;
        for (uint8_t c : f.fp.converged) converged += c;
        return "<ipguard.Fingerprint " + f.fp.method + " of " + f.fp.arch + ": " +
               std::to_string(f.fp.size()) + " points, " + std::to_string(converged) +
               " converged>";
      });

  m.def("load_fingerprint",
        [](const pyb::object& path) { return fingerprint_arg(pyb::str(path_arg(path, "path"))); },
        pyb::arg("path"),
        "Reads a fingerprint file (integrity and every field checked; OSError otherwise).");

  m.def("extract", &extract, pyb::arg("model"), pyb::arg("method") = "ipguard",
        pyb::arg("n") = 100, pyb::arg("k") = 1.0, pyb::arg("iters") = 1000, pyb::arg("lr") = 0.01,
        pyb::arg("eps") = 0.03, pyb::arg("alpha") = 1.0 / 255, pyb::arg("binary_steps") = 9,
        pyb::arg("c0") = 1e-3, pyb::arg("init") = "train", pyb::arg("target") = "least-likely",
        pyb::arg("batch") = 0, pyb::arg("seed") = 0, pyb::arg("data") = "fashion-mnist",
        pyb::arg("progress") = pyb::none(), pyb::arg("device") = pyb::none(),
        "Extracts a fingerprint of `model` (an ipguard.Model, on its device: `device`, when "
        "given, must be that one; or a network file, loaded on `device`, default cpu), as `ipguard --seed SEED extract` does with the same options (same "
        "defaults; the same bits at the same thread count: set_threads). method: ipguard | "
        "cwl2 | fgsm | igsm | random; init: train (images of `data`, a dataset spec as "
        "--data) | random; target: least-likely | random; batch 0: automatic. progress: "
        "None or a callable given a dict (done, n, chunk_rows, active, iteration, "
        "batch_rows) during the work. The GIL is released while it runs.");
}

}  // namespace ipg::py
