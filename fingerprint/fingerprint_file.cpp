// Fingerprint files over engine/hdf5 (layout in fingerprint_file.h).
#include "fingerprint/fingerprint_file.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <stdexcept>

#include "engine/hdf5.h"
#include "models/model_file.h"  // resave_hint

namespace ipg {

namespace {

constexpr const char* kFormat = "ipguard-fingerprint";
// Version 2 files are sealed (engine/hdf5.h); version 1 files still load, with a notice.
constexpr int64_t kVersion = 2;
constexpr int64_t kOldestVersion = 1;

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The rules shared by writer and reader, on an in-memory fingerprint whose tensors are
// on the CPU. Returns "<object>: problem", or "" when all is well.
std::string problem_in(const Fingerprint& fp) {
  if (fp.method.empty()) return "/: attribute 'method' is empty";
  if (!fp.model_sha256.empty() && !is_sha256_hex(fp.model_sha256))
    return "/: attribute 'model_sha256' is not 64 lowercase hex digits";
  const FingerprintParams& p = fp.params;
  if (!std::isfinite(p.k)) return "/: attribute 'param_k' is not finite";
  if (!(std::isfinite(p.lr) && p.lr >= 0)) return "/: attribute 'param_lr' must be finite and >= 0";
  if (!(std::isfinite(p.eps) && p.eps >= 0))
    return "/: attribute 'param_eps' must be finite and >= 0";
  if (p.iters < 0) return "/: attribute 'param_iters' is negative";

  if (!fp.points.defined()) return "/points: missing";
  if (fp.points.dtype() != DType::F32 || fp.points.ndim() != 4)
    return std::string("/points: must be float32 [n, C, H, W], found ") +
           dtype_name(fp.points.dtype()) + " " + shape_str(fp.points.shape());
  const int64_t n = fp.points.dim(0);
  for (int64_t d : fp.points.shape())
    if (d <= 0) return "/points: empty dimension in " + shape_str(fp.points.shape());
  if (n > kMaxFingerprintPoints || fp.points.numel() > kMaxFingerprintElements)
    return "/points: " + shape_str(fp.points.shape()) + " is larger than the reader accepts";
  if (!fp.labels.defined() || fp.labels.dtype() != DType::I32 || fp.labels.shape() != Shape{n})
    return "/labels: must be int32 [" + std::to_string(n) + "] (one per point), found " +
           (fp.labels.defined()
                ? std::string(dtype_name(fp.labels.dtype())) + " " + shape_str(fp.labels.shape())
                : std::string("nothing"));
  const size_t un = static_cast<size_t>(n);
  const std::pair<const char*, size_t> lengths[] = {{"source", fp.source.size()},
                                                    {"target", fp.target.size()},
                                                    {"iterations", fp.iterations.size()},
                                                    {"final_loss", fp.final_loss.size()},
                                                    {"converged", fp.converged.size()}};
  for (const auto& [name, len] : lengths)
    if (len != un)
      return std::string("/candidates/") + name + ": has " + std::to_string(len) + " values for " +
             std::to_string(n) + " points";

  const Tensor pts = fp.points.cpu();
  const float* x = pts.data();
  for (int64_t i = 0; i < pts.numel(); ++i)
    if (!(x[i] >= 0.f && x[i] <= 1.f))  // false for NaN too
      return "/points: value " + std::to_string(i) + " is " + std::to_string(x[i]) +
             " (points must be finite and in [0, 1])";
  const Tensor lab = fp.labels.cpu();
  const int32_t* l = lab.data_i32();
  for (int64_t i = 0; i < n; ++i)
    if (l[i] < 0)
      return "/labels: label " + std::to_string(i) + " is negative (" + std::to_string(l[i]) + ")";
  for (size_t i = 0; i < un; ++i) {
    if (fp.source[i] < 0) return "/candidates/source: value " + std::to_string(i) + " is negative";
    if (fp.target[i] < 0) return "/candidates/target: value " + std::to_string(i) + " is negative";
    if (fp.iterations[i] < 0)
      return "/candidates/iterations: value " + std::to_string(i) + " is negative";
    if (fp.converged[i] > 1)
      return "/candidates/converged: value " + std::to_string(i) + " is not 0 or 1";
  }
  return "";
}

// Refuses shapes the reader would not accept, before anything is allocated for them.
void check_points_shape(const Shape& s, const std::string& where) {
  if (s.size() != 4) throw FileError(where + "expected rank 4 [n, C, H, W], found " + shape_str(s));
  int64_t total = 1;
  for (int64_t d : s) {
    if (d <= 0) throw FileError(where + "empty dimension in " + shape_str(s));
    if (d > kMaxFingerprintElements || total > kMaxFingerprintElements / d)
      throw FileError(where + shape_str(s) + " has more than " +
                      std::to_string(kMaxFingerprintElements) + " elements; refusing to read");
    total *= d;
  }
  if (s[0] > kMaxFingerprintPoints)
    throw FileError(where + std::to_string(s[0]) + " points; at most " +
                    std::to_string(kMaxFingerprintPoints) + " are accepted");
}

h5::Dataset open_dataset(const h5::Group& g, const std::string& name, const std::string& where) {
  if (!g.is_dataset(name)) throw FileError(where + "missing (no such dataset)");
  return g.dataset(name);
}

// An int32 [n] dataset.
std::vector<int32_t> read_ints(const h5::Group& g, const std::string& name, int64_t n,
                               const std::string& where) {
  const h5::Dataset d = open_dataset(g, name, where);
  return d.read(DType::I32, {n}).to_vector_i32();
}

}  // namespace

std::string utc_timestamp() {
  // SOURCE_DATE_EPOCH (the reproducible-builds convention), when set, stands for now: the
  // same extraction then writes the same bytes, which a model owner archiving evidence can
  // check with cmp or a checksum. A value that is not a whole number of seconds is an
  // error, as the convention asks: ignoring it would stamp the current time on what the
  // user meant to be reproducible. Empty counts as unset.
  std::time_t now = std::time(nullptr);
  const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
  if (epoch && *epoch) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(epoch, &end, 10);
    // Up to year 9999, so that the stamp keeps its fixed width.
    const bool digits_only = std::isdigit(static_cast<unsigned char>(*epoch)) && *end == '\0';
    if (!digits_only || errno != 0 || v > 253402300799LL)
      throw std::invalid_argument(std::string("SOURCE_DATE_EPOCH must be a whole number of "
                                              "seconds since 1970 (or unset), not '") +
                                  epoch + "'");
    now = static_cast<std::time_t>(v);
  }
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void save_fingerprint(const Fingerprint& fp, const std::string& path) {
  const std::string bad = problem_in(fp);
  if (!bad.empty()) throw std::invalid_argument("save_fingerprint " + path + ": " + bad);
  const int64_t n = fp.points.dim(0);
  h5::FileWriter w(path);
  w.set_attr_string("format", kFormat);
  w.set_attr_int("version", kVersion);
  w.set_attr_string("method", fp.method);
  w.set_attr_int("seed", static_cast<int64_t>(fp.seed));
  w.set_attr_string("model_sha256", fp.model_sha256);
  w.set_attr_string("arch", fp.arch);
  w.set_attr_string("created", fp.created);
  w.set_attr_double("param_k", fp.params.k);
  w.set_attr_double("param_lr", fp.params.lr);
  w.set_attr_int("param_iters", fp.params.iters);
  w.set_attr_double("param_eps", fp.params.eps);
  w.set_attr_string("param_init", fp.params.init);
  w.set_attr_string("param_target", fp.params.target);
  w.write("points", fp.points);
  w.write("labels", fp.labels);
  w.write("candidates/source", Tensor::from_vector_i32(fp.source, {n}));
  w.write("candidates/target", Tensor::from_vector_i32(fp.target, {n}));
  w.write("candidates/iterations", Tensor::from_vector_i32(fp.iterations, {n}));
  w.write("candidates/final_loss", Tensor::from_vector(fp.final_loss, {n}));
  w.write(
      "candidates/converged",
      Tensor::from_vector_i32(std::vector<int32_t>(fp.converged.begin(), fp.converged.end()), {n}));
  w.commit();
}

Fingerprint load_fingerprint(const std::string& path) {
  const h5::File f(path);
  const std::string root = path + ": ";
  if (!f.has_attr("format") || f.scalar_string("format") != kFormat) {
    if (f.has_attr("format") && f.scalar_string("format") == kModelFormat)
      throw FileError(root + "an ipguard model, not a fingerprint (make one from it with "
                      "`ipguard extract --model " + path + "`)");
    throw FileError(root + "not an ipguard fingerprint file (attribute format is not '" +
                    std::string(kFormat) + "')");
  }
  const int64_t version = f.scalar_int("version");
  if (version < kOldestVersion || version > kVersion)
    throw FileError(root + "fingerprint file version " + std::to_string(version) +
                    " is not supported (this build reads versions " +
                    std::to_string(kOldestVersion) + " to " + std::to_string(kVersion) + ")");
  h5::check_integrity(f, version, resave_hint(path));
  // Every attribute with exactly the type and shape the writer gives it.
  Fingerprint fp;
  fp.method = f.scalar_string("method");
  fp.seed = static_cast<uint64_t>(f.scalar_int("seed"));
  fp.model_sha256 = f.scalar_string("model_sha256");
  fp.arch = f.scalar_string("arch");
  fp.created = f.scalar_string("created");
  fp.params.k = f.scalar_float("param_k");
  fp.params.lr = f.scalar_float("param_lr");
  fp.params.iters = f.scalar_int("param_iters");
  fp.params.eps = f.scalar_float("param_eps");
  fp.params.init = f.scalar_string("param_init");
  fp.params.target = f.scalar_string("param_target");

  const std::string wp = path + ": /points: ";
  const h5::Dataset points = open_dataset(f, "points", wp);
  const Shape ps = points.shape();
  check_points_shape(ps, wp);
  fp.points = points.read(DType::F32, ps);  // checks the type, and the storage it holds
  const int64_t n = ps[0];
  fp.labels = open_dataset(f, "labels", path + ": /labels: ").read(DType::I32, {n});

  const std::string wc = path + ": /candidates: ";
  if (!f.is_group("candidates")) throw FileError(wc + "missing (no such group)");
  const h5::Group c = f.group("candidates");
  auto where = [&](const char* name) { return path + ": /candidates/" + name + ": "; };
  fp.source = read_ints(c, "source", n, where("source"));
  fp.target = read_ints(c, "target", n, where("target"));
  fp.iterations = read_ints(c, "iterations", n, where("iterations"));
  fp.final_loss =
      open_dataset(c, "final_loss", where("final_loss")).read(DType::F32, {n}).to_vector();
  {
    const h5::Dataset d = open_dataset(c, "converged", where("converged"));
    const std::string type = d.type_name();
    if (type != "int32" && type != "uint8")
      throw FileError(where("converged") + "expected int32 or uint8, found " + type);
    const Shape s = d.shape();
    if (s != Shape{n})
      throw FileError(where("converged") + "expected shape [" + std::to_string(n) + "], found " +
                      shape_str(s));
    const std::vector<float> v = d.read_floats();  // exact for int32 0/1 and uint8
    fp.converged.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] != 0.f && v[i] != 1.f)
        throw FileError(where("converged") + "value " + std::to_string(i) + " is not 0 or 1");
      fp.converged[i] = static_cast<uint8_t>(v[i]);
    }
  }
  const std::string bad = problem_in(fp);
  if (!bad.empty()) throw FileError(path + ": " + bad);
  return fp;
}

}  // namespace ipg
