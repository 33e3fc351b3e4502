// Fuzz target: ipg::load_fingerprint (fingerprint/fingerprint_file.h) on files built from
// the fuzz input (tests/fuzz/fuzz_h5.h): a valid fingerprint of a few small points,
// then attributes, datasets and groups mutated as the input says. The reader must
// return or throw a std::exception; what it returns must satisfy the documented rules
// and survive save_fingerprint + load_fingerprint bit for bit. Anything else (crash,
// sanitizer report, leak, timeout, allocation above -malloc_limit_mb) is a finding.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "fingerprint/fingerprint_file.h"
#include "fuzz_h5.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_fingerprint_file: %s\n", what);
  std::abort();
}

void build(FuzzedDataProvider& p, const std::string& path) {
  const hsize_t n = p.ConsumeIntegralInRange<hsize_t>(1, 4);
  const hsize_t c = p.ConsumeBool() ? 3 : 1;
  const hsize_t h = p.ConsumeIntegralInRange<hsize_t>(1, 6);
  const hsize_t w = p.ConsumeIntegralInRange<hsize_t>(1, 6);
  fuzz::Id f = fuzz::create_file(path);
  if (!f.ok()) return;
  const hid_t root = f.id;
  fuzz::attr_string(p, root, "format", "ipguard-fingerprint");
  fuzz::attr_int(p, root, "version", 1);
  fuzz::attr_string(p, root, "method", "ipguard");
  fuzz::attr_int(p, root, "seed", 42);
  fuzz::attr_string(p, root, "model_sha256",
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  fuzz::attr_string(p, root, "arch", "lenet5");
  fuzz::attr_string(p, root, "created", "2026-11-28T19:30:00Z");
  fuzz::attr_double(p, root, "param_k", 10);
  fuzz::attr_double(p, root, "param_lr", 0.01);
  fuzz::attr_int(p, root, "param_iters", 1000);
  fuzz::attr_double(p, root, "param_eps", 0);
  fuzz::attr_string(p, root, "param_init", "train");
  fuzz::attr_string(p, root, "param_target", "random");

  std::vector<double> points(n * c * h * w);
  for (size_t i = 0; i < points.size(); ++i) points[i] = static_cast<double>(i % 11) / 10.0;
  fuzz::dataset(p, root, "/points", {n, c, h, w}, fuzz::Kind::F32, std::move(points));
  std::vector<double> labels(n), source(n), target(n), iters(n), loss(n), conv(n);
  for (hsize_t i = 0; i < n; ++i) {
    labels[i] = static_cast<double>(i % 10);
    source[i] = static_cast<double>((i + 1) % 10);
    target[i] = static_cast<double>((i + 2) % 10);
    iters[i] = static_cast<double>(10 * i);
    loss[i] = 0.5 - static_cast<double>(i);
    conv[i] = static_cast<double>(i % 2);
  }
  fuzz::dataset(p, root, "/labels", {n}, fuzz::Kind::I32, std::move(labels));
  if (fuzz::mutation(p, 1)) {  // /candidates as a dataset
    std::vector<double> v{1};
    fuzz::make_dataset(root, "/candidates", {1}, H5T_STD_I32LE, &v);
  }
  fuzz::dataset(p, root, "/candidates/source", {n}, fuzz::Kind::I32, std::move(source));
  fuzz::dataset(p, root, "/candidates/target", {n}, fuzz::Kind::I32, std::move(target));
  fuzz::dataset(p, root, "/candidates/iterations", {n}, fuzz::Kind::I32, std::move(iters));
  fuzz::dataset(p, root, "/candidates/final_loss", {n}, fuzz::Kind::F32, std::move(loss));
  fuzz::dataset(p, root, "/candidates/converged", {n}, fuzz::Kind::I32, std::move(conv));
  fuzz::extras(p, root, "");
  fuzz::extras(p, root, "/candidates");
  fuzz::close_file(f);
}

void check(const ipg::Fingerprint& fp) {
  const int64_t n = fp.size();
  if (n <= 0 || fp.points.ndim() != 4 || fp.points.dim(0) != n) finding("inconsistent n");
  const float* x = fp.points.data();
  const int64_t m = fp.points.numel();
  for (int64_t i = 0; i < m; ++i)
    if (!(x[i] >= 0.f && x[i] <= 1.f)) finding("accepted a point outside [0, 1]");
  for (int32_t l : fp.labels.to_vector_i32())
    if (l < 0) finding("accepted a negative label");
  const size_t un = static_cast<size_t>(n);
  if (fp.source.size() != un || fp.target.size() != un || fp.iterations.size() != un ||
      fp.final_loss.size() != un || fp.converged.size() != un)
    finding("candidate lengths differ from n");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch_path("fp");
  static const std::string again = fuzz::scratch_path("fp_again");
  FuzzedDataProvider p(data, size);
  build(p, path);
  try {
    const ipg::Fingerprint fp = ipg::load_fingerprint(path);
    check(fp);
    ipg::save_fingerprint(fp, again);
    const ipg::Fingerprint r = ipg::load_fingerprint(again);
    if (r.points.shape() != fp.points.shape() ||
        std::memcmp(r.points.data(), fp.points.data(), fp.points.nbytes()) != 0 ||
        r.labels.to_vector_i32() != fp.labels.to_vector_i32() || r.source != fp.source ||
        r.target != fp.target || r.iterations != fp.iterations || r.converged != fp.converged ||
        std::memcmp(r.final_loss.data(), fp.final_loss.data(), 4 * fp.final_loss.size()) != 0 ||
        r.method != fp.method || r.seed != fp.seed || r.arch != fp.arch ||
        r.model_sha256 != fp.model_sha256 || r.created != fp.created || !(r.params == fp.params))
      finding("save + load does not reproduce a loaded fingerprint");
  } catch (const std::exception&) {
  }
  std::remove(path.c_str());
  std::remove(again.c_str());
  return 0;
}
