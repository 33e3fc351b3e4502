// Open Inference Protocol bodies (models/oip.h): JSON in and out, strictly checked.
#include "models/oip.h"

#include <cfloat>
#include <cmath>
#include <nlohmann/json.hpp>

namespace ipg::oip {

namespace {

using json = nlohmann::json;

json parse_body(const std::string& body, const char* what) {
  if (body.size() > kMaxBodyBytes)
    throw OipError(std::string(what) + ": body of " + std::to_string(body.size()) +
                   " bytes is over the limit of " + std::to_string(kMaxBodyBytes));
  try {
    json j = json::parse(body);
    if (!j.is_object()) throw OipError(std::string(what) + ": body is not a JSON object");
    return j;
  } catch (const json::parse_error& e) {
    // nlohmann's text says where; the body itself could be huge, so it is not repeated.
    throw OipError(std::string(what) + ": malformed JSON (" + e.what() + ")");
  }
}

const json& member(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) throw OipError(where + ": missing \"" + key + "\"");
  return *it;
}

std::string string_member(const json& j, const char* key, const std::string& where) {
  const json& v = member(j, key, where);
  if (!v.is_string()) throw OipError(where + ": \"" + key + "\" is not a string");
  return v.get<std::string>();
}

// A shape: integers >= min_dim (-1 allowed in metadata), at most kMaxRank of them.
std::vector<int64_t> read_shape(const json& j, const std::string& where, int64_t min_dim) {
  const json& s = member(j, "shape", where);
  if (!s.is_array()) throw OipError(where + ": \"shape\" is not an array");
  if (s.size() > size_t(kMaxRank))
    throw OipError(where + ": \"shape\" has " + std::to_string(s.size()) + " dimensions (at most " +
                   std::to_string(kMaxRank) + ")");
  std::vector<int64_t> shape;
  for (const json& d : s) {
    if (!d.is_number_integer() || d.get<int64_t>() < min_dim || d.get<int64_t>() > kMaxTensorElements)
      throw OipError(where + ": \"shape\" has " + d.dump() + ", not a size from " +
                     std::to_string(min_dim) + " to " + std::to_string(kMaxTensorElements));
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& where) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > kMaxTensorElements / d)
      throw OipError(where + ": shape " + shape_text(shape) + " is over the limit of " +
                     std::to_string(kMaxTensorElements) + " values");
    n *= d;
  }
  if (n > kMaxTensorElements)
    throw OipError(where + ": shape " + shape_text(shape) + " is over the limit of " +
                   std::to_string(kMaxTensorElements) + " values");
  return n;
}

// The range of values a datatype holds: [lo, hi] (an integer type: whole numbers only).
struct Range {
  double lo, hi;
  bool integer;
};
Range range_of(const std::string& datatype) {
  if (datatype == "INT32") return {-2147483648.0, 2147483647.0, true};
  // 2^63 itself is out of range; every double below it converts to int64 exactly.
  if (datatype == "INT64") return {-9223372036854775808.0, 9223372036854774784.0, true};
  return {-double(FLT_MAX), double(FLT_MAX), false};
}

// The protocol allows "data" flat (row-major) or nested; both are read flat. Stops at the
// expected count + 1 so a huge body cannot grow the vector beyond the cap. Each value
// must be what its datatype can hold (converting one that is not is undefined in C++):
// FP32 values are kept as the float they are on the wire, integers whole and in range.
void flatten(const json& d, const Range& r, int64_t cap, std::vector<double>& out,
             const std::string& where, int depth) {
  if (depth > kMaxRank) throw OipError(where + ": \"data\" is nested deeper than its shape");
  for (const json& v : d) {
    if (v.is_array()) {
      flatten(v, r, cap, out, where, depth + 1);
      continue;
    }
    if (!v.is_number())
      throw OipError(where + ": \"data\" holds " + v.dump().substr(0, 40) + ", not a number");
    const double x = v.get<double>();
    if (!std::isfinite(x)) throw OipError(where + ": \"data\" holds a value that is not finite");
    if (r.integer && (!v.is_number_integer()))
      throw OipError(where + ": \"data\" holds " + v.dump().substr(0, 40) +
                     ", not an integer as its datatype says");
    if (x < r.lo || x > r.hi)
      throw OipError(where + ": \"data\" holds " + v.dump().substr(0, 40) +
                     ", outside the range of its datatype");
    if (int64_t(out.size()) >= cap) return;  // counted as too many by the caller
    out.push_back(r.integer ? x : double(float(x)));
  }
}

Tensor read_tensor(const json& j, const std::string& where) {
  if (!j.is_object()) throw OipError(where + ": not a JSON object");
  Tensor t;
  t.name = string_member(j, "name", where);
  t.datatype = string_member(j, "datatype", where);
  if (t.datatype != "FP32" && t.datatype != "INT32" && t.datatype != "INT64")
    throw OipError(where + ": datatype \"" + t.datatype.substr(0, 20) +
                   "\" is not one of FP32, INT32, INT64");
  t.shape = read_shape(j, where, 0);
  const int64_t want = checked_numel(t.shape, where);
  const json& d = member(j, "data", where);
  if (!d.is_array()) throw OipError(where + ": \"data\" is not an array");
  t.data.reserve(size_t(std::min<int64_t>(want, int64_t(d.size()))));
  flatten(d, range_of(t.datatype), want + 1, t.data, where, 1);
  if (int64_t(t.data.size()) != want)
    throw OipError(where + ": shape " + shape_text(t.shape) + " needs " + std::to_string(want) +
                   " values, \"data\" has " +
                   (int64_t(t.data.size()) > want ? "more" : std::to_string(t.data.size())));
  return t;
}

json tensor_json(const Tensor& t) {
  json data = json::array();
  const bool integer = t.datatype != "FP32";
  for (double v : t.data) {
    if (integer)
      data.push_back(int64_t(v));
    else
      data.push_back(float(v));  // FP32 on the wire: no digits beyond what a float holds
  }
  return json{{"name", t.name}, {"shape", t.shape}, {"datatype", t.datatype}, {"data", data}};
}

json meta_json(const std::vector<TensorMeta>& ts) {
  json a = json::array();
  for (const TensorMeta& t : ts)
    a.push_back(json{{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}});
  return a;
}

std::vector<TensorMeta> read_metas(const json& j, const char* key, const std::string& where) {
  const json& a = member(j, key, where);
  if (!a.is_array() || a.empty()) throw OipError(where + ": \"" + key + "\" is not a non-empty array");
  if (a.size() > 64) throw OipError(where + ": \"" + key + "\" lists more than 64 tensors");
  std::vector<TensorMeta> out;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string w = where + ": " + key + "[" + std::to_string(i) + "]";
    if (!a[i].is_object()) throw OipError(w + ": not a JSON object");
    TensorMeta t;
    t.name = string_member(a[i], "name", w);
    t.datatype = string_member(a[i], "datatype", w);
    t.shape = read_shape(a[i], w, -1);
    out.push_back(t);
  }
  return out;
}

}  // namespace

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string pixel_range_error(const Tensor& t) {
  for (size_t i = 0; i < t.data.size(); ++i)
    if (!(t.data[i] >= 0.0 && t.data[i] <= 1.0)) {
      json v = t.data[i];
      return "value " + std::to_string(i) + " of the input is " + v.dump() +
             "; pixels are in [0, 1] (divide 0-255 images by 255)";
    }
  return "";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string write_infer_request(const Tensor& input) {
  return json{{"inputs", json::array({tensor_json(input)})}}.dump();
}

Tensor read_infer_request(const std::string& body) {
  const json j = parse_body(body, "infer request");
  const json& in = member(j, "inputs", "infer request");
  if (!in.is_array() || in.size() != 1)
    throw OipError("infer request: \"inputs\" must be an array of exactly one tensor");
  Tensor t = read_tensor(in[0], "infer request: inputs[0]");
  if (t.datatype != "FP32")
    throw OipError("infer request: inputs[0]: datatype " + t.datatype + ", expected FP32");
  if (t.shape.empty()) throw OipError("infer request: inputs[0]: a scalar, expected a batch");
  return t;
}

std::string write_infer_response(const std::string& model_name, const Tensor& output) {
  return json{{"model_name", model_name}, {"outputs", json::array({tensor_json(output)})}}.dump();
}

Tensor read_infer_response(const std::string& body) {
  const json j = parse_body(body, "infer response");
  const json& out = member(j, "outputs", "infer response");
  if (!out.is_array() || out.empty())
    throw OipError("infer response: \"outputs\" is not a non-empty array");
  return read_tensor(out[0], "infer response: outputs[0]");
}

std::string write_metadata(const ModelMetadata& m) {
  json j{{"name", m.name},
         {"versions", json::array({"1"})},
         {"platform", m.platform},
         {"inputs", meta_json(m.inputs)},
         {"outputs", meta_json(m.outputs)}};
  // The class count of a labels-only output is not in its shape: said as a parameter.
  if (m.classes > 0 && !j["outputs"].empty())
    j["outputs"][0]["parameters"] = json{{"classes", m.classes}};
  return j.dump();
}

ModelMetadata read_metadata(const std::string& body) {
  const json j = parse_body(body, "model metadata");
  ModelMetadata m;
  m.name = string_member(j, "name", "model metadata");
  if (j.contains("platform") && j["platform"].is_string()) m.platform = j["platform"];
  m.inputs = read_metas(j, "inputs", "model metadata");
  m.outputs = read_metas(j, "outputs", "model metadata");
  const json& o = j["outputs"][0];
  if (o.contains("parameters") && o["parameters"].is_object() &&
      o["parameters"].contains("classes")) {
    const json& c = o["parameters"]["classes"];
    if (!c.is_number_integer() || c.get<int64_t>() < 1 || c.get<int64_t>() > kMaxTensorElements)
      throw OipError("model metadata: outputs[0]: parameters.classes is " + c.dump().substr(0, 20) +
                     ", not a positive integer");
    m.classes = c.get<int64_t>();
  } else if (m.outputs[0].shape.size() == 2 && m.outputs[0].shape[1] > 0) {
    m.classes = m.outputs[0].shape[1];
  }
  if (m.classes == 1)  // one class names nothing: every point would get label 0
    throw OipError("model metadata: outputs[0] has 1 class: a classifier needs at least 2");
  return m;
}

std::string write_error(const std::string& message) { return json{{"error", message}}.dump(); }

std::string read_error(const std::string& body) {
  if (body.empty() || body.size() > (1 << 20)) return "";
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error") || !j["error"].is_string())
    return "";
  std::string e = j["error"];
  if (e.size() > 300) e = e.substr(0, 300) + "...";
  return e;
}

}  // namespace ipg::oip
