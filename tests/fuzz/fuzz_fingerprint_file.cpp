// Fuzz target: ipg::load_fingerprint (fingerprint/fingerprint_file.h) on files built from
// the fuzz input (tests/fuzz/fuzz_h5.h): a valid fingerprint of a few small points,
// then attributes, datasets and groups mutated as the input says
// (fuzz_fingerprint_build.h), then maybe sealed and flipped (fuzz::finish). The reader must
// return or throw a std::exception; what it returns must satisfy the documented rules
// and survive save_fingerprint + load_fingerprint bit for bit. Anything else (crash,
// sanitizer report, leak, timeout, allocation above -malloc_limit_mb) is a finding.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "fingerprint/fingerprint_file.h"
#include "fuzz_fingerprint_build.h"
#include "fuzz_h5.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_fingerprint_file: %s\n", what);
  std::abort();
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
  fuzz_fingerprint::build(p, path);
  const fuzz::Finished done = fuzz::finish(p, path);
  try {
    const ipg::Fingerprint fp = ipg::load_fingerprint(path);
    if (done.changed()) finding("accepted a sealed file with flipped bytes");
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
