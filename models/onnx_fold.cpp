// ONNX reader, constant folding at load time: the Shape/Gather/Unsqueeze/Concat/Reshape
// chains (with Equal/Where/Expand around an expanded class token), Pad amounts and
// Constant nodes that exporters emit are evaluated once here, on the host, so the network
// that runs holds only operators on the input.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/onnx_fold_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

namespace {

std::vector<int64_t> ints_of(const HostTensor* t, const char* what) {
  if (!t) return {};
  if (!t->is_int) throw OnnxError(std::string(what) + " must be integers");
  if (t->shape.size() > 1) throw OnnxError(std::string(what) + " must be a list");
  for (int64_t v : t->i)
    if (v == kBatch) throw BatchRuleError(std::string(what) + " depends on the batch size");
  return t->i;
}

}  // namespace

HostTensor constant_node(const onnx::NodeProto& n) {
  if (n.attribute_size() != 1)
    throw OnnxError("a Constant needs exactly one value attribute");
  const onnx::AttributeProto& a = n.attribute(0);
  HostTensor h;
  if (a.name() == "value" && a.type() == onnx::AttributeProto::TENSOR)
    return read_tensor(a.t(), "value");
  if (a.name() == "value_float" && a.type() == onnx::AttributeProto::FLOAT) {
    h.f = {a.f()};
  } else if (a.name() == "value_floats" && a.type() == onnx::AttributeProto::FLOATS) {
    if (a.floats_size() > kMaxElements) throw OnnxError("value_floats is too long");
    h.f.assign(a.floats().begin(), a.floats().end());
    h.shape = {int64_t(h.f.size())};
  } else if (a.name() == "value_int" && a.type() == onnx::AttributeProto::INT) {
    h.is_int = true;
    h.i = {a.i()};
  } else if (a.name() == "value_ints" && a.type() == onnx::AttributeProto::INTS) {
    if (a.ints_size() > kMaxElements) throw OnnxError("value_ints is too long");
    h.is_int = true;
    h.i.assign(a.ints().begin(), a.ints().end());
    h.shape = {int64_t(h.i.size())};
  } else {
    throw OnnxError("attribute '" + a.name() + "' of a Constant is not supported");
  }
  for (float v : h.f)
    if (!std::isfinite(v)) throw OnnxError("NaN/Inf constant refused");
  return h;
}

namespace {

const HostTensor& need(const std::vector<const HostTensor*>& in, size_t k) {
  if (k >= in.size() || !in[k]) throw OnnxError("input " + std::to_string(k) + " is missing");
  return *in[k];
}

}  // namespace

bool fold_constant(const onnx::NodeProto& n, const std::vector<const HostTensor*>& in,
                   std::vector<HostTensor>& out) {
  const std::string& op = n.op_type();
  out.clear();
  if (op == "Constant") {
    out.push_back(constant_node(n));
  } else if (op == "Identity" || op == "Dropout") {
    out.push_back(need(in, 0));
  } else if (op == "Shape") {
    check_attrs(n, {"start", "end"});
    const HostTensor& x = need(in, 0);
    const int64_t r = int64_t(x.shape.size());
    int64_t s = attr_int(n, "start", 0), e = attr_int(n, "end", r);
    s = std::clamp<int64_t>(s < 0 ? s + r : s, 0, r);
    e = std::clamp<int64_t>(e < 0 ? e + r : e, 0, r);
    HostTensor o;
    o.is_int = true;
    for (int64_t k = s; k < e; ++k) o.i.push_back(x.shape[size_t(k)]);
    o.shape = {int64_t(o.i.size())};
    out.push_back(o);
  } else if (op == "Gather") {
    check_attrs(n, {"axis"});
    const HostTensor& x = need(in, 0);
    const HostTensor& idx = need(in, 1);
    if (!idx.is_int) throw OnnxError("Gather indices must be integers");
    const int64_t r = int64_t(x.shape.size());
    if (r == 0) throw OnnxError("Gather on a scalar");
    const int64_t axis = norm_axis(attr_int(n, "axis", 0), r, "axis");
    const int64_t dim = x.shape[size_t(axis)];
    Shape os(x.shape.begin(), x.shape.begin() + axis);
    os.insert(os.end(), idx.shape.begin(), idx.shape.end());
    os.insert(os.end(), x.shape.begin() + axis + 1, x.shape.end());
    std::vector<int64_t> ix;
    for (int64_t v : idx.i) {
      if (v < -dim || v >= dim) throw OnnxError("Gather index " + std::to_string(v) + " is out of range");
      ix.push_back(v < 0 ? v + dim : v);
    }
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[size_t(d)];
    const int64_t ni = int64_t(ix.size());
    out.push_back(gather_elements(x, os, [&](int64_t k) {
      const int64_t o = k / (ni * inner), j = k / inner % ni, i = k % inner;
      return (o * dim + ix[size_t(j)]) * inner + i;
    }));
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    check_attrs(n, {"axes"});
    const HostTensor& x = need(in, 0);
    std::vector<int64_t> axes = in.size() > 1 && in[1] ? ints_of(in[1], "axes") : attr_ints(n, "axes", {});
    HostTensor o = x;
    o.shape = squeeze_shape(x.shape, axes, op == "Unsqueeze", false);
    out.push_back(o);
  } else if (op == "Concat") {
    check_attrs(n, {"axis"});
    if (!find_attr(n, "axis")) throw OnnxError("Concat needs an axis");
    out.push_back(concat(in, attr_int(n, "axis", 0)));
  } else if (op == "Slice") {
    check_attrs(n, {"starts", "ends", "axes"});
    const HostTensor& x = need(in, 0);
    if (in.size() >= 3)
      out.push_back(slice(x, ints_of(&need(in, 1), "starts"), ints_of(&need(in, 2), "ends"),
                          ints_of(in.size() > 3 ? in[3] : nullptr, "axes"),
                          ints_of(in.size() > 4 ? in[4] : nullptr, "steps")));
    else
      out.push_back(slice(x, attr_ints(n, "starts", {}), attr_ints(n, "ends", {}),
                          attr_ints(n, "axes", {}), {}));
  } else if (op == "Transpose") {
    check_attrs(n, {"perm"});
    out.push_back(transpose(need(in, 0), attr_ints(n, "perm", {})));
  } else if (op == "Reshape") {
    check_attrs(n, {"allowzero"});
    HostTensor o = need(in, 0);
    o.shape = reshape_target(o.shape, ints_of(&need(in, 1), "shape"), attr_int(n, "allowzero", 0));
    out.push_back(o);
  } else if (op == "Flatten") {
    check_attrs(n, {"axis"});
    HostTensor o = need(in, 0);
    const int64_t r = int64_t(o.shape.size());
    int64_t axis = attr_int(n, "axis", 1);
    if (axis < -r || axis > r) throw OnnxError("axis out of range");
    if (axis < 0) axis += r;
    int64_t a = 1, b = 1;
    for (int64_t k = 0; k < r; ++k) (k < axis ? a : b) *= o.shape[size_t(k)];
    o.shape = {a, b};
    out.push_back(o);
  } else if (op == "Cast") {
    check_attrs(n, {"to", "saturate"});
    const int64_t to = attr_int(n, "to", 0);
    HostTensor o = need(in, 0);
    if (to == onnx::TensorProto::FLOAT) {
      if (o.is_int) {
        for (int64_t v : o.i) {
          if (v == kBatch) throw BatchRuleError("the batch size cast to float");
          o.f.push_back(float(v));
        }
        o.i.clear();
        o.is_int = false;
      }
    } else if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32) {
      if (!o.is_int) {
        for (float v : o.f) o.i.push_back(int64_t(std::trunc(std::clamp(v, -1e15f, 1e15f))));
        o.f.clear();
        o.is_int = true;
      }
    } else if (to == onnx::TensorProto::BOOL) {  // as integers 0 and 1
      if (!o.is_int) {
        for (float v : o.f) o.i.push_back(v != 0);
        o.f.clear();
        o.is_int = true;
      } else {
        for (int64_t& v : o.i) {
          if (v == kBatch) throw BatchRuleError("the batch size cast to bool");
          v = v != 0;
        }
      }
    } else {
      throw OnnxError("Cast to element type " + std::to_string(to) + " is not supported");
    }
    out.push_back(o);
  } else if (op == "ConstantOfShape") {
    check_attrs(n, {"value"});
    HostTensor v;
    v.f = {0.f};
    if (const auto* a = find_attr(n, "value")) {
      if (a->type() != onnx::AttributeProto::TENSOR) throw OnnxError("attribute value is not a tensor");
      v = read_tensor(a->t(), "value");
      if (v.numel() != 1) throw OnnxError("value must hold one element");
    }
    HostTensor o;
    o.is_int = v.is_int;
    o.shape = ints_of(&need(in, 0), "shape");
    const int64_t count = checked_numel(o.shape, "ConstantOfShape");
    if (o.is_int)
      o.i.assign(size_t(count), v.i[0]);
    else
      o.f.assign(size_t(count), v.f[0]);
    out.push_back(o);
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Equal" || op == "Mod") {
    check_attrs(n, op == "Mod" ? std::vector<const char*>{"fmod"} : std::vector<const char*>{});
    if (op == "Mod" && attr_int(n, "fmod", 0)) throw OnnxError("Mod with fmod 1 is not supported");
    out.push_back(binary(op, need(in, 0), need(in, 1)));
  } else if (op == "Pow") {  // Swin's scale (head size)^-0.5, from a shape
    check_attrs(n, {});
    const HostTensor &x = need(in, 0), &e = need(in, 1);
    if (x.is_int || e.numel() != 1) throw OnnxError("Pow on constants needs a float base and one exponent");
    HostTensor o = x;
    for (float& v : o.f) v = float(std::pow(double(v), e.value(0)));
    out.push_back(o);
  } else if (op == "Range") {  // Swin's shifted-window mask, from the map's size
    check_attrs(n, {});
    const HostTensor &a = need(in, 0), &l = need(in, 1), &d = need(in, 2);
    if (a.numel() != 1 || l.numel() != 1 || d.numel() != 1) throw OnnxError("Range takes three scalars");
    if (a.is_int != l.is_int || a.is_int != d.is_int) throw OnnxError("Range's inputs have different element types");
    for (const HostTensor* t : {&a, &l, &d}) {
      if (t->is_int && t->i[0] == kBatch) throw BatchRuleError("Range over the batch size");
      if (!(std::fabs(t->value(0)) <= double(int64_t(1) << 40))) throw OnnxError("Range's inputs are out of range");
    }
    const double start = a.value(0), step = d.value(0);
    if (step == 0) throw OnnxError("Range with a step of 0");
    const double count = std::max(std::ceil((l.value(0) - start) / step), 0.0);  // finite: bounded inputs
    HostTensor o;
    o.is_int = a.is_int;
    o.shape = {int64_t(std::min(count, double(kMaxElements) + 1))};
    checked_numel(o.shape, "Range");
    for (int64_t k = 0; k < o.shape[0]; ++k) {
      if (o.is_int) o.i.push_back(a.i[0] + k * d.i[0]);
      else o.f.push_back(float(start + double(k) * step));
    }
    out.push_back(o);
  } else if (op == "ScatterND") {  // Swin's mask: mask[h_slice, w_slice] = region
    check_attrs(n, {"reduction"});
    if (attr_string(n, "reduction", "none") != "none") throw OnnxError("ScatterND with a reduction is not supported");
    const HostTensor &data = need(in, 0), &idx = need(in, 1), &upd = need(in, 2);
    if (!idx.is_int || idx.shape.empty()) throw OnnxError("ScatterND's indices must be integers [..., k]");
    if (upd.is_int != data.is_int) throw OnnxError("ScatterND's updates and data have different element types");
    const size_t k = size_t(idx.shape.back()), r = data.shape.size();
    if (k < 1 || k > r) throw OnnxError("ScatterND's index length does not fit the data");
    Shape want(idx.shape.begin(), idx.shape.end() - 1);  // updates: indices' batch + data's tail
    want.insert(want.end(), data.shape.begin() + long(k), data.shape.end());
    if (upd.shape != want) throw OnnxError("ScatterND's updates " + shape_text(upd.shape) + " are not " + shape_text(want));
    int64_t inner = 1;
    for (size_t d = k; d < r; ++d) inner *= data.shape[d];
    HostTensor o = data;
    const int64_t count = idx.numel() / int64_t(k);
    for (int64_t j = 0; j < count; ++j) {
      int64_t at = 0;
      for (size_t d = 0; d < k; ++d) {
        int64_t v = idx.i[size_t(j) * k + d];
        const int64_t dim = data.shape[d];
        if (v < -dim || v >= dim) throw OnnxError("ScatterND index " + std::to_string(v) + " is out of range");
        at = at * dim + (v < 0 ? v + dim : v);
      }
      for (int64_t e = 0; e < inner; ++e) {
        const size_t dst = size_t(at * inner + e), src = size_t(j * inner + e);
        if (o.is_int) o.i[dst] = upd.i[src];
        else o.f[dst] = upd.f[src];
      }
    }
    out.push_back(o);
  } else if (op == "Not") {
    check_attrs(n, {});
    HostTensor o = need(in, 0);
    if (!o.is_int) throw OnnxError("Not needs a boolean input");
    for (int64_t& v : o.i) v = v == 0;
    out.push_back(o);
  } else if (op == "Where") {
    check_attrs(n, {});
    out.push_back(where(need(in, 0), need(in, 1), need(in, 2)));
  } else if (op == "Expand") {  // a class token expanded to the batch: [n, 1, C]
    check_attrs(n, {});
    out.push_back(expand(need(in, 0), ints_of(&need(in, 1), "Expand's shape")));
  } else {
    return false;
  }
  return true;
}

}  // namespace ipg::onnx_detail
