// Fuzz target: the ONNX reader, ipg::load_onnx_bytes (models/onnx_model.h), on the raw
// input bytes (libFuzzer's mutations of the seeds, small exported networks in
// tests/fuzz/corpus/onnx, made by tests/golden/make_onnx_golden.py and, an attention
// graph read per batch size, make_onnx_transformers.py). The reader must
// return or throw a std::exception; a network it returns must run a forward pass on one
// row and give finite logits of its class count or throw a std::exception (an op refusing
// its operands). A crash, a sanitizer report, a leak, a timeout or an allocation above
// -malloc_limit_mb is a finding.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "models/onnx_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<ipg::Network> net;
  try {
    net = ipg::load_onnx_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
  } catch (const std::exception&) {
    return 0;
  }
  const ipg::ModelConfig& c = net->config();
  try {
    ipg::NoGradGuard no_grad;
    const ipg::Tensor y =
        net->logits(ipg::Tensor::full({1, c.in_channels, c.height, c.width}, 0.5f));
    if (y.ndim() != 2 || y.dim(0) != 1 || y.dim(1) != c.classes) {
      std::fprintf(stderr, "an ONNX network's logits have the wrong shape\n");
      std::abort();
    }
  } catch (const std::exception&) {
  }
  // Each input is judged alone: the allocator's cache of this input's tensor sizes is
  // given back, so -rss_limit_mb measures one network's run, not the cache's bound
  // (CachingAllocator.CpuCacheStaysBoundedOverManySizes tests that).
  net.reset();
  ipg::CachingAllocator::for_device(ipg::Device::cpu()).empty_cache();
  return 0;
}
