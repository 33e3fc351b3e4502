// The Open Inference Protocol (KServe v2 REST, JSON bodies) as far as a label API needs it:
// one FP32 input tensor per request, an INT32 / INT64 / FP32 output tensor per answer, and
// the model metadata that says their shapes. Shared by `ipguard serve` (which writes
// answers and reads requests) and the remote suspect client (the other way round), so the
// two agree by construction and every body is checked the same strict way: shape against
// the number of values, datatype, sizes capped before anything is allocated. Any problem
// is an OipError with one line that says what is wrong with which field.
//
//   request   {"inputs":[{"name","shape":[n,C,H,W],"datatype":"FP32","data":[...]}]}
//   response  {"model_name","outputs":[{"name","shape","datatype","data":[...]}]}
//   metadata  {"name","platform","versions","inputs":[{"name","datatype","shape"}],
//              "outputs":[{"name","datatype","shape"}]}  (-1: any size, the batch)
//   error     {"error":"..."}
#pragma once

#include <stdint.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace ipg::oip {

class OipError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Caps on what a body may claim or hold (a body can say anything).
constexpr int64_t kMaxTensorElements = int64_t{1} << 26;  // 64 Mi values
constexpr size_t kMaxBodyBytes = size_t{1} << 30;         // 1 GiB of JSON text
constexpr int kMaxRank = 8;

// One tensor of a request or a response. Values are kept as doubles (every INT32/INT64
// label and FP32 value a label API sends is exact in a double); `datatype` says which.
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::string datatype;  // "FP32" | "INT32" | "INT64"
  std::vector<double> data;
  int64_t numel() const;
};

// A tensor's description in the model metadata; a -1 in `shape` is any size.
struct TensorMeta {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
};

struct ModelMetadata {
  std::string name;
  std::string platform;
  std::vector<TensorMeta> inputs, outputs;
  int64_t classes = 0;  // from the output's parameters ("classes") or its last dim; 0 unknown
};

// Bodies. Writers take what they are given; readers check everything they return.
std::string write_infer_request(const Tensor& input);
// The one input of a request; it must be FP32 with rank 1..kMaxRank.
Tensor read_infer_request(const std::string& body);
std::string write_infer_response(const std::string& model_name, const Tensor& output);
// The first output of a response; INT32, INT64 or FP32, shape matching its data.
Tensor read_infer_response(const std::string& body);
std::string write_metadata(const ModelMetadata& m);
ModelMetadata read_metadata(const std::string& body);
std::string write_error(const std::string& message);
// The "error" text of an error body, or "" when the body is not one.
std::string read_error(const std::string& body);

// "" when every value of `t` lies in [0, 1], as image pixels must; else which value does
// not and what to do (a client sending 0-255 pixels, say).
std::string pixel_range_error(const Tensor& t);

// "[1,28,28]" for messages.
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace ipg::oip
