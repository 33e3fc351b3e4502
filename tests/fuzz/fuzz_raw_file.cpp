// Fuzz target, on request only (not in CI): the raw bytes of the input are the file, and
// all three readers (read_model_info, load_model, load_fingerprint) read it. This mostly
// exercises libhdf5's own parser, which can crash or hang on malformed files in ways we
// cannot fix; a finding here is first triaged: a stack inside libhdf5 only is reported
// upstream, not fixed in our readers. Start it from corpus/raw (real small files).
#include <cstdio>
#include <stdexcept>

#include "fingerprint/fingerprint_file.h"
#include "fuzz_h5.h"
#include "models/model_file.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz::scratch_path("raw");
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    ipg::read_model_info(path);
  } catch (const std::exception&) {
  }
  try {
    ipg::load_model(path);
  } catch (const std::exception&) {
  }
  try {
    ipg::load_fingerprint(path);
  } catch (const std::exception&) {
  }
  std::remove(path.c_str());
  return 0;
}
