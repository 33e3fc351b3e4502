// Fuzz target: the Open Inference Protocol body readers (models/oip.h), what `ipguard
// serve` reads from any client that reaches its port (read_infer_request) and what the
// label-API client reads from any server it is pointed at (read_infer_response,
// read_metadata, read_error). The first input byte picks the reader, the rest is the
// body. Each reader must return or throw a std::exception; what it returns must satisfy
// its own contract (shape matching the data, the datatype it admits) and read back the
// same after being written again. A crash, a sanitizer report, a leak, a timeout or an
// allocation above -malloc_limit_mb is a finding.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "models/oip.h"

namespace {

void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

void check_tensor(const ipg::oip::Tensor& t, bool request) {
  if (t.numel() != int64_t(t.data.size())) fail("a tensor read has data of another size than its shape");
  if (request && t.datatype != "FP32") fail("a request read with another datatype than FP32");
  if (t.datatype != "FP32" && t.datatype != "INT32" && t.datatype != "INT64")
    fail("a tensor read with an unknown datatype");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  namespace oip = ipg::oip;
  try {
    switch (data[0] % 4) {
      case 0: {
        const oip::Tensor t = oip::read_infer_request(body);
        check_tensor(t, true);
        const oip::Tensor again = oip::read_infer_request(oip::write_infer_request(t));
        if (again.shape != t.shape || again.data != t.data) fail("a request does not read back the same");
        break;
      }
      case 1: {
        const oip::Tensor t = oip::read_infer_response(body);
        check_tensor(t, false);
        const oip::Tensor again = oip::read_infer_response(oip::write_infer_response("m", t));
        if (again.shape != t.shape || again.datatype != t.datatype || again.data != t.data)
          fail("a response does not read back the same");
        break;
      }
      case 2: {
        const oip::ModelMetadata m = oip::read_metadata(body);
        const oip::ModelMetadata again = oip::read_metadata(oip::write_metadata(m));
        if (again.name != m.name || again.inputs.size() != m.inputs.size() ||
            again.outputs.size() != m.outputs.size() || again.classes != m.classes)
          fail("metadata do not read back the same");
        break;
      }
      default:
        oip::read_error(body);
    }
  } catch (const std::exception&) {
  }
  return 0;
}
