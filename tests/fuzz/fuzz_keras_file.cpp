// Fuzz target: the Keras weight import, ipg::import_keras (models/keras_import.h), on
// files built from the fuzz input (tests/fuzz/fuzz_keras_build.h): a valid Keras LeNet-5
// file, then its layer and weight lists, groups and datasets mutated. Keras files come
// from elsewhere (a model owner's own training, a download), so the importer must return
// or throw a std::exception. A network it returns must hold finite weights and give
// [1, classes] logits for one image. A crash, a sanitizer report, a leak, a timeout or
// an allocation above -malloc_limit_mb is a finding.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "engine/autograd.h"
#include "fuzz_h5.h"
#include "fuzz_keras_build.h"
#include "models/keras_import.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch_path("keras");
  FuzzedDataProvider p(data, size);
  ipg::KerasImportOptions opts;
  opts.arch = "lenet5";
  opts.preprocess = p.ConsumeBool() ? "none" : "caffe";
  fuzz_keras::build(p, path);
  std::unique_ptr<ipg::Network> net;
  try {
    net = ipg::import_keras(path, opts);
  } catch (const std::exception&) {
    return 0;
  }
  for (auto& [name, t] : net->named_parameters())
    for (float v : t->to_vector())
      if (!std::isfinite(v)) {
        std::fprintf(stderr, "import_keras accepted a non-finite weight in %s\n", name.c_str());
        std::abort();
      }
  const ipg::ModelConfig& c = net->config();
  try {
    ipg::NoGradGuard no_grad;
    net->eval();
    const ipg::Tensor y = net->logits(ipg::Tensor::full({1, c.in_channels, c.height, c.width}, 0.5f));
    if (y.ndim() != 2 || y.dim(0) != 1 || y.dim(1) != c.classes) {
      std::fprintf(stderr, "an imported network's logits have the wrong shape\n");
      std::abort();
    }
  } catch (const std::exception&) {
  }
  return 0;
}
