// Fuzz target: the native model file readers, ipg::read_model_info and ipg::load_model
// (models/model_file.h), on files built from the fuzz input (tests/fuzz/fuzz_h5.h): a
// valid model file of a small architecture, then attributes, datasets and groups
// mutated as the input says (fuzz_model_build.h), then maybe sealed and flipped
// (fuzz::finish). The readers must return or throw a std::exception; a
// crash, a sanitizer report, a leak, a timeout or an allocation above -malloc_limit_mb
// is a finding.
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "fuzz_h5.h"
#include "fuzz_model_build.h"
#include "models/model_file.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch_path("model");
  FuzzedDataProvider p(data, size);
  fuzz_model::build(p, path);
  const fuzz::Finished done = fuzz::finish(p, path);
  try {
    ipg::read_model_info(path);
  } catch (const std::exception&) {
  }
  try {
    ipg::Provenance prov;
    auto net = ipg::load_model(path, &prov);
    // A sealed file with a changed byte is never loaded (integrity header, engine/hdf5).
    if (done.changed()) {
      std::fprintf(stderr, "load_model accepted a sealed file with %zu flipped byte(s)\n",
                   done.flips.size());
      std::abort();
    }
    // A loaded network has the shapes its config says, with finite weights.
    for (auto& [name, t] : net->named_parameters()) {
      const float* v = t->data();
      const int64_t n = t->numel();
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(v[i])) {
          std::fprintf(stderr, "load_model accepted a non-finite weight in %s\n", name.c_str());
          std::abort();
        }
    }
  } catch (const std::exception&) {
  }
  std::remove(path.c_str());
  return 0;
}
