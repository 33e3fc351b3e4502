// ONNX reader, host side: constants (TensorProto -> HostTensor, with every size checked
// before anything is allocated; host <-> engine tensors) and node attributes (typed, with
// defaults; unknown attributes refused by name).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/onnx_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const Shape& s) {
  std::string r = "[";
  for (size_t k = 0; k < s.size(); ++k)
    r += (k ? ", " : "") + (s[k] == kBatch ? std::string("n") : std::to_string(s[k]));
  return r + "]";
}

namespace {
thread_local int64_t fold_left = -1;  // -1: no FoldBudget
}  // namespace

FoldBudget::FoldBudget(int64_t left) : saved_(fold_left) { fold_left = left < 0 ? 0 : left; }
FoldBudget::~FoldBudget() { fold_left = saved_; }

int64_t checked_numel(const Shape& s, const std::string& what, int64_t limit) {
  if (s.size() > size_t(kMaxRank))
    throw OnnxError(what + ": rank " + std::to_string(s.size()) + " is above " +
                    std::to_string(kMaxRank));
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw OnnxError(what + ": negative dimension in " + shape_text(s));
    if (d > 0 && n > limit / d)
      throw OnnxError(what + ": shape " + shape_text(s) + " has more than " +
                      std::to_string(limit) + " elements");
    n *= d;
  }
  if (fold_left >= 0 && n > fold_left)
    throw OnnxError(what + ": shape " + shape_text(s) + " would take the constants folded at load past their limit (" +
                    std::to_string(fold_left) + " elements left of twice the file's weights + " +
                    std::to_string(kFoldSlack) + ")");
  return n;
}

HostTensor read_tensor(const onnx::TensorProto& t, const std::string& what) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0)
    throw OnnxError(what + ": external data (a separate weights file) is not supported");
  if (t.has_segment()) throw OnnxError(what + ": segmented tensors are not supported");
  HostTensor h;
  h.shape.assign(t.dims().begin(), t.dims().end());
  const int64_t n = checked_numel(h.shape, what, kMaxStoredElements);
  const std::string& raw = t.raw_data();
  auto size_error = [&](size_t got, const char* unit) {
    return OnnxError(what + ": " + std::to_string(got) + " " + unit + " of data for shape " +
                     shape_text(h.shape) + " (" + std::to_string(n) + " elements)");
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (t.has_raw_data()) {
        if (raw.size() != size_t(n) * 4) throw size_error(raw.size(), "bytes");
        h.f.resize(size_t(n));
        if (n) std::memcpy(h.f.data(), raw.data(), raw.size());
      } else {
        if (t.float_data_size() != n) throw size_error(size_t(t.float_data_size()), "floats");
        h.f.assign(t.float_data().begin(), t.float_data().end());
      }
      for (size_t k = 0; k < h.f.size(); ++k)
        if (!std::isfinite(h.f[k]))
          throw OnnxError(what + ": value " + std::to_string(k) + " is " + std::to_string(h.f[k]) +
                          " (NaN/Inf weights refused)");
      return h;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::INT32: {
      h.is_int = true;
      const bool i64 = t.data_type() == onnx::TensorProto::INT64;
      if (t.has_raw_data()) {
        const size_t width = i64 ? 8 : 4;
        if (raw.size() != size_t(n) * width) throw size_error(raw.size(), "bytes");
        h.i.resize(size_t(n));
        for (int64_t k = 0; k < n; ++k) {
          if (i64) {
            std::memcpy(&h.i[size_t(k)], raw.data() + k * 8, 8);
          } else {
            int32_t v;
            std::memcpy(&v, raw.data() + k * 4, 4);
            h.i[size_t(k)] = v;
          }
        }
      } else if (i64) {
        if (t.int64_data_size() != n) throw size_error(size_t(t.int64_data_size()), "int64s");
        h.i.assign(t.int64_data().begin(), t.int64_data().end());
      } else {
        if (t.int32_data_size() != n) throw size_error(size_t(t.int32_data_size()), "int32s");
        h.i.assign(t.int32_data().begin(), t.int32_data().end());
      }
      for (int64_t& v : h.i)
        if (v == kBatch) v = kBatch + 1;  // the marker is ours alone; INT64_MIN is only ever a slice bound
      return h;
    }
    case onnx::TensorProto::BOOL: {  // as integers 0 and 1 (masks, Where's conditions)
      h.is_int = true;
      if (t.has_raw_data()) {
        if (raw.size() != size_t(n)) throw size_error(raw.size(), "bytes");
        for (char c : raw) h.i.push_back(c != 0);
      } else {
        if (t.int32_data_size() != n) throw size_error(size_t(t.int32_data_size()), "int32s");
        for (int32_t v : t.int32_data()) h.i.push_back(v != 0);
      }
      return h;
    }
    default: {
      const auto* d = onnx::TensorProto::DataType_descriptor()->FindValueByNumber(t.data_type());
      throw OnnxError(what + ": element type " +
                      (d ? d->name() : "#" + std::to_string(t.data_type())) +
                      " is not supported (float32, int32, int64 and bool are)");
    }
  }
}

// ---- attributes ----

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

namespace {
const onnx::AttributeProto* typed(const onnx::NodeProto& n, const char* name,
                                  onnx::AttributeProto::AttributeType type, const char* what) {
  const onnx::AttributeProto* a = find_attr(n, name);
  if (a && a->type() != type)
    throw OnnxError(std::string("attribute ") + name + " is not " + what);
  return a;
}
}  // namespace

int64_t attr_int(const onnx::NodeProto& n, const char* name, int64_t def) {
  const auto* a = typed(n, name, onnx::AttributeProto::INT, "an int");
  return a ? a->i() : def;
}
float attr_float(const onnx::NodeProto& n, const char* name, float def) {
  const auto* a = typed(n, name, onnx::AttributeProto::FLOAT, "a float");
  return a ? a->f() : def;
}
std::string attr_string(const onnx::NodeProto& n, const char* name, const std::string& def) {
  const auto* a = typed(n, name, onnx::AttributeProto::STRING, "a string");
  return a ? a->s() : def;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const char* name,
                               const std::vector<int64_t>& def) {
  const auto* a = typed(n, name, onnx::AttributeProto::INTS, "a list of ints");
  if (!a) return def;
  if (a->ints_size() > kMaxRank * 2)
    throw OnnxError(std::string("attribute ") + name + " has " + std::to_string(a->ints_size()) +
                    " values");
  return {a->ints().begin(), a->ints().end()};
}

void check_attrs(const onnx::NodeProto& n, const std::vector<const char*>& known) {
  for (const auto& a : n.attribute()) {
    bool ok = false;
    for (const char* k : known) ok = ok || a.name() == k;
    if (!ok) throw OnnxError("attribute '" + a.name() + "' is not supported");
  }
}

Tensor to_tensor(const HostTensor& h) {
  if (!h.is_int) return Tensor::from_vector(h.f, h.shape);
  std::vector<float> v;
  for (int64_t x : h.i) {
    if (x == kBatch) throw BatchRuleError("the batch size used as data");
    v.push_back(float(x));
  }
  return Tensor::from_vector(v, h.shape);
}

HostTensor from_tensor(const Tensor& t) {
  HostTensor h;
  h.shape = t.shape();
  h.f = t.cpu().to_vector();
  return h;
}

}  // namespace ipg::onnx_detail
