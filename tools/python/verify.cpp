// ipguard.verify: a suspect's matching rate on a fingerprint (paper section 4.3), the
// suspect being a loaded model, a model file, a label API address (Open Inference
// Protocol) or any Python callable f(points) -> labels.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "fingerprint/verify.h"
#include "models/load.h"
#include "models/train.h"
#include "tools/python/bindings.h"
#include "tools/python/fingerprint.h"
#include "models/remote_classifier.h"  // RemoteOptions; the client itself only with IPG_PY_REMOTE

namespace ipg::py {

namespace {

bool is_address(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

// Labels of `points` by a Python callable, `batch` rows per call; each answer must be a
// 1-D integer array (or sequence) of one label per row, each a class of 0..classes-1 (a
// callable declares no class count: `classes` is the caller's, else the fingerprint's, as
// for the CLI's --suspect-cmd; `note` says which, after a label past them). Needs the GIL.
std::vector<int32_t> callable_labels(const pyb::object& f, const Tensor& points, int batch,
                                     int64_t classes, const std::string& note) {
  const int64_t n = points.dim(0);
  std::vector<int32_t> out;
  out.reserve(size_t(n));
  pyb::module_ np = pyb::module_::import("numpy");
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t len = std::min<int64_t>(batch, n - start);
    const pyb::object got = f(to_numpy(points.narrow0(start, len)));
    const pyb::array a = np.attr("asarray")(got);
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u')
      throw std::invalid_argument("suspect: the callable returned " +
                                  std::string(pyb::str(a.dtype())) +
                                  " labels; expected integers (one class index per point)");
    if (a.ndim() != 1 || a.shape(0) != len)
      throw std::invalid_argument("suspect: the callable returned an array of shape " +
                                  std::string(pyb::str(np.attr("shape")(a))) + " for " +
                                  std::to_string(len) + " points; expected (" +
                                  std::to_string(len) + ",)");
    // Unsigned labels are read as such: a uint64 above INT64_MAX is not a negative label.
    const pyb::array_t<uint64_t> u = np.attr("asarray")(a, "uint64");
    const pyb::array_t<int64_t> v = np.attr("asarray")(a, "int64");
    for (int64_t i = 0; i < len; ++i) {
      const int64_t label = v.at(i);
      if ((kind == 'u' && u.at(i) > uint64_t(INT32_MAX)) || (kind == 'i' && (label < 0 || label > INT32_MAX)))
        throw std::invalid_argument("suspect: the callable returned label " +
                                    (kind == 'u' ? std::to_string(u.at(i)) : std::to_string(label)) +
                                    " for point " + std::to_string(start + i) +
                                    "; labels are class indices from 0 to 2147483647");
      if (label >= classes)
        throw std::invalid_argument("suspect: the callable labels point " +
                                    std::to_string(start + i) + " " + std::to_string(label) +
                                    ", not a class of 0.." + std::to_string(classes - 1) + note);
      out.push_back(int32_t(label));
    }
  }
  return out;
}

// `options`: how the label API is asked (verify's keyword arguments, as the CLI's
// --timeout, --retries, --max-queries and --max-rate).
std::vector<int32_t> address_labels(const std::string& url, const Tensor& points,
                                    RemoteOptions options) {
#ifdef IPG_PY_REMOTE
  // Ctrl-C between requests: Python's signal handlers run here (the main thread), and a
  // KeyboardInterrupt they raise stops the client before its next request.
  options.stop = [] {
    pyb::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
  };
  try {
    pyb::gil_scoped_release nogil;
    std::unique_ptr<Classifier> remote = open_remote_classifier(url, options);
    const Tensor labels = remote->labels(points);
    return labels.cpu().to_vector_i32();
  } catch (const RemoteError&) {
    if (PyErr_Occurred()) throw pyb::error_already_set();  // the KeyboardInterrupt itself
    throw;
  }
#else
  (void)points;
  (void)options;
  PyErr_SetString(PyExc_NotImplementedError,
                  (url + ": this build has no label API client (models/remote_classifier)").c_str());
  throw pyb::error_already_set();
#endif
}

pyb::dict verify(const pyb::object& fp_arg, const pyb::object& suspect, double threshold, int batch,
                 const std::optional<std::string>& device, double timeout, int retries,
                 int64_t max_queries, double max_rate, int64_t classes) {
  if (!(timeout > 0 && timeout <= 86400))
    throw std::invalid_argument("timeout must be more than 0 seconds (at most a day), not " +
                                std::to_string(timeout));
  if (retries < 0) throw std::invalid_argument("retries must be at least 0, not " + std::to_string(retries));
  if (max_queries < 0)
    throw std::invalid_argument("max_queries must be 0 (no cap) or more, not " + std::to_string(max_queries));
  if (!(max_rate >= 0 && std::isfinite(max_rate)))
    throw std::invalid_argument("max_rate must be 0 (no limit) or more points per second, not " +
                                std::to_string(max_rate));
  if (!(threshold >= 0 && threshold <= 1))
    throw std::invalid_argument("threshold must be between 0 and 1, not " + std::to_string(threshold));
  if (batch < 1) throw std::invalid_argument("batch must be at least 1, not " + std::to_string(batch));
  if (classes < 0)
    throw std::invalid_argument("classes must be 0 (the fingerprint's) or more, not " +
                                std::to_string(classes));
  if (device) parse_device(*device);  // a bad name is an error whatever the suspect
  const std::shared_ptr<PyFingerprint> f = fingerprint_arg(fp_arg);
  const Fingerprint& fp = f->fp;
  std::vector<int32_t> got;
  std::string suspect_sha256;
  const std::optional<std::string> suspect_path = maybe_path(suspect);
  if (pyb::isinstance<Model>(suspect) || (suspect_path && !is_address(*suspect_path))) {
    const std::shared_ptr<Model> model = resolve_model(suspect, device);
    suspect_sha256 = model->sha256;
    pyb::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(model->mutex);
    got = predict(*model->classifier, fp.points, model->device, batch);
  } else if (suspect_path) {
    if (max_queries > 0 && max_queries < fp.size())
      throw std::invalid_argument("max_queries " + std::to_string(max_queries) + " is below the " +
                                  std::to_string(fp.size()) +
                                  " points of the fingerprint: every point is asked once");
    RemoteOptions options;
    options.batch = batch;
    options.timeout_s = timeout;
    options.retries = retries;
    options.max_queries = max_queries;
    options.max_rate_per_s = max_rate;
    got = address_labels(*suspect_path, fp.points, options);
  } else if (PyCallable_Check(suspect.ptr())) {
    // As --suspect-cmd's --classes: the target's classes, at least those the fingerprint shows.
    const int64_t shown = classes_shown(fp);
    if (classes > 0 && classes < shown)
      throw std::invalid_argument("classes " + std::to_string(classes) +
                                  ": the fingerprint's target gives class " +
                                  std::to_string(shown - 1) + "; give its number of classes");
    got = callable_labels(suspect, fp.points, batch, classes > 0 ? classes : shown,
                          classes > 0 ? ""
                                      : " (the classes the fingerprint shows; classes=N "
                                        "if the target has more)");
  } else {
    throw pyb::type_error("suspect must be an ipguard.Model, a model file path, an address "
                          "http://HOST:PORT/v2/models/NAME or a callable f(points) -> labels, "
                          "not " +
                          std::string(pyb::str(pyb::type::handle_of(suspect).attr("__name__"))));
  }
  const Tensor labels = Tensor::from_vector_i32(got, {fp.size()});
  const double rate = matching_rate(fp.labels, labels);
  const int64_t matches = std::llround(rate * double(fp.size()));
  pyb::dict d;
  d["matching_rate"] = rate;
  d["matches"] = matches;
  d["points"] = fp.size();
  d["threshold"] = threshold;
  d["copy"] = rate >= threshold;
  d["labels"] = to_numpy(got);
  if (!suspect_sha256.empty())
    d["same_file_as_target"] = !fp.model_sha256.empty() && suspect_sha256 == fp.model_sha256;
  return d;
}

}  // namespace

void register_verify(pyb::module_& m) {
  m.def("verify", &verify, pyb::arg("fingerprint"), pyb::arg("suspect"),
        pyb::arg("threshold") = 0.5, pyb::arg("batch") = 500, pyb::arg("device") = pyb::none(),
        pyb::arg("timeout") = 30.0, pyb::arg("retries") = 3, pyb::arg("max_queries") = 0,
        pyb::arg("max_rate") = 0.0, pyb::arg("classes") = 0,
        "The suspect's matching rate on the fingerprint (an ipguard.Fingerprint or a file). "
        "suspect: an ipguard.Model (on its device; `device`, when given, must be that one), "
        "a model file (loaded on `device`, default cpu), an address "
        "http://HOST:PORT/v2/models/NAME of an Open Inference Protocol server, or a callable "
        "f(points: float32 [b, C, H, W]) -> b integer labels (called `batch` points at a "
        "time; e.g. a PyTorch model wrapped in a lambda; a label outside 0..classes-1 raises "
        "ValueError, classes 0 meaning the classes the fingerprint shows, as the CLI's "
        "--suspect-cmd and --classes). "
        "For an address, as verify's --timeout (seconds per answer), --retries, --max-queries "
        "(points sent, retries included; 0: no cap) and --max-rate (points per second; 0: no "
        "limit); Ctrl-C stops it before the next request (the one in flight ends with its "
        "answer or its timeout). "
        "Returns a dict: matching_rate, "
        "matches, points, threshold, copy (matching_rate >= threshold), labels (the "
        "suspect's), and for files same_file_as_target.");
}

}  // namespace ipg::py
