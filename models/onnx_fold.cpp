// ONNX reader, constant folding at load time: the Shape/Gather/Unsqueeze/Concat/Reshape
// chains, Pad amounts and Constant nodes that exporters emit are evaluated once here, on
// the host, so the network that runs holds only operators on the input.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/onnx_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

namespace {

// Strides of a row-major shape.
std::vector<int64_t> strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
  return st;
}

int64_t norm_axis(int64_t axis, int64_t rank, const char* what) {
  if (axis < -rank || axis >= rank)
    throw OnnxError(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
                    std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

// out[k] = in[src(k)]: the data-movement ops share this.
HostTensor gather_elements(const HostTensor& in, const Shape& out_shape,
                           const std::function<int64_t(int64_t)>& src) {
  HostTensor o;
  o.is_int = in.is_int;
  o.shape = out_shape;
  const int64_t n = checked_numel(out_shape, "folded constant");
  if (in.is_int) {
    o.i.resize(size_t(n));
    for (int64_t k = 0; k < n; ++k) o.i[size_t(k)] = in.i[size_t(src(k))];
  } else {
    o.f.resize(size_t(n));
    for (int64_t k = 0; k < n; ++k) o.f[size_t(k)] = in.f[size_t(src(k))];
  }
  return o;
}

std::vector<int64_t> ints_of(const HostTensor* t, const char* what) {
  if (!t) return {};
  if (!t->is_int) throw OnnxError(std::string(what) + " must be integers");
  if (t->shape.size() > 1) throw OnnxError(std::string(what) + " must be a list");
  for (int64_t v : t->i)
    if (v == kBatch) throw OnnxError(std::string(what) + " depends on the batch size");
  return t->i;
}

HostTensor transpose(const HostTensor& x, std::vector<int64_t> perm) {
  const int64_t r = int64_t(x.shape.size());
  if (perm.empty())
    for (int64_t k = r; k-- > 0;) perm.push_back(k);
  if (int64_t(perm.size()) != r) throw OnnxError("perm does not match the rank");
  std::vector<bool> seen(size_t(r), false);
  Shape out(static_cast<size_t>(r), 0);
  for (int64_t k = 0; k < r; ++k) {
    const int64_t p = norm_axis(perm[size_t(k)], r, "perm");
    if (seen[size_t(p)]) throw OnnxError("perm repeats an axis");
    seen[size_t(p)] = true;
    perm[size_t(k)] = p;
    out[size_t(k)] = x.shape[size_t(p)];
  }
  const auto in_st = strides(x.shape), out_st = strides(out);
  return gather_elements(x, out, [&](int64_t k) {
    int64_t s = 0;
    for (int64_t d = 0; d < r; ++d) s += (k / out_st[size_t(d)] % out[size_t(d)]) * in_st[size_t(perm[size_t(d)])];
    return s;
  });
}

HostTensor slice(const HostTensor& x, const std::vector<int64_t>& starts,
                 const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                 std::vector<int64_t> steps) {
  const int64_t r = int64_t(x.shape.size());
  if (starts.size() != ends.size()) throw OnnxError("starts and ends differ in length");
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(int64_t(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    throw OnnxError("axes/steps differ in length from starts");
  std::vector<int64_t> begin(size_t(r), 0), step(size_t(r), 1);
  Shape out = x.shape;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t a = norm_axis(axes[k], r, "axis");
    const int64_t dim = x.shape[size_t(a)];
    if (steps[k] == 0) throw OnnxError("a slice step is 0");
    // A step longer than the axis takes one element at most, as the axis' length does;
    // clamped, the counts below cannot overflow.
    const int64_t lim = std::max<int64_t>(dim, 1), st = std::clamp<int64_t>(steps[k], -lim, lim);
    int64_t s = starts[k], e = ends[k];
    if (s < 0) s = s < -dim ? -1 : s + dim;
    if (e < 0) e = e < -dim ? -1 : e + dim;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      out[size_t(a)] = e > s ? (e - s + st - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, -1, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      out[size_t(a)] = s > e ? (s - e - st - 1) / -st : 0;
    }
    begin[size_t(a)] = s;
    step[size_t(a)] = st;
  }
  const auto in_st = strides(x.shape), out_st = strides(out);
  return gather_elements(x, out, [&](int64_t k) {
    int64_t src = 0;
    for (int64_t d = 0; d < r; ++d)
      src += (begin[size_t(d)] + (k / out_st[size_t(d)] % out[size_t(d)]) * step[size_t(d)]) *
             in_st[size_t(d)];
    return src;
  });
}

HostTensor concat(const std::vector<const HostTensor*>& in, int64_t axis) {
  const HostTensor& a = *in.at(0);
  const int64_t r = int64_t(a.shape.size());
  axis = norm_axis(axis, r, "axis");
  Shape out = a.shape;
  out[size_t(axis)] = 0;
  for (const HostTensor* t : in) {
    if (!t) throw OnnxError("an input is absent");
    if (t->is_int != a.is_int) throw OnnxError("inputs of different element types");
    if (int64_t(t->shape.size()) != r) throw OnnxError("inputs of different ranks");
    for (int64_t d = 0; d < r; ++d)
      if (d != axis && t->shape[size_t(d)] != a.shape[size_t(d)])
        throw OnnxError("shapes " + shape_text(a.shape) + " and " + shape_text(t->shape) +
                        " do not concatenate");
    out[size_t(axis)] += t->shape[size_t(axis)];
  }
  checked_numel(out, "concatenation");
  HostTensor o;
  o.is_int = a.is_int;
  o.shape = out;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= out[size_t(d)];
  for (int64_t d = axis + 1; d < r; ++d) inner *= out[size_t(d)];
  for (int64_t b = 0; b < outer; ++b)
    for (const HostTensor* t : in) {
      const int64_t len = t->shape[size_t(axis)] * inner;
      for (int64_t k = 0; k < len; ++k) {
        if (o.is_int)
          o.i.push_back(t->i[size_t(b * len + k)]);
        else
          o.f.push_back(t->f[size_t(b * len + k)]);
      }
    }
  return o;
}

// Reshape's target: 0 copies the input's dimension (allowzero 0), -1 is inferred.
Shape reshape_target(const Shape& in, const std::vector<int64_t>& spec, bool allowzero) {
  Shape out(spec.size());
  int64_t known = 1, infer = -1;
  for (size_t k = 0; k < spec.size(); ++k) {
    int64_t v = spec[k];
    if (v == 0 && !allowzero) {
      if (k >= in.size()) throw OnnxError("shape copies a dimension the input lacks");
      v = in[k];
    }
    if (v == -1) {
      if (infer >= 0) throw OnnxError("shape has two -1 entries");
      infer = int64_t(k);
      continue;
    }
    if (v < 0) throw OnnxError("shape has a negative entry " + std::to_string(v));
    out[k] = v;
    // Checked before multiplying: a huge entry would overflow the product first.
    if (v > 0 && known > kMaxElements / v) throw OnnxError("shape " + shape_text(out) + " is too large");
    known *= v;
  }
  int64_t total = 1;
  for (int64_t d : in) total *= d;
  if (infer >= 0) {
    if (known == 0 || total % known) throw OnnxError("cannot infer the -1 entry of the shape");
    out[size_t(infer)] = total / known;
  } else if (known != total) {
    throw OnnxError("cannot reshape " + shape_text(in) + " to " + shape_text(out));
  }
  return out;
}

HostTensor binary(const std::string& op, const HostTensor& a, const HostTensor& b) {
  if (a.is_int != b.is_int) throw OnnxError("operands of different element types");
  const size_t r = std::max(a.shape.size(), b.shape.size());
  Shape out(r);
  auto dim = [&](const Shape& s, size_t k) {
    return k + s.size() < r ? int64_t(1) : s[k + s.size() - r];
  };
  for (size_t k = 0; k < r; ++k) {
    const int64_t x = dim(a.shape, k), y = dim(b.shape, k);
    if (x != y && x != 1 && y != 1)
      throw OnnxError("shapes " + shape_text(a.shape) + " and " + shape_text(b.shape) +
                      " do not broadcast");
    out[k] = x == 1 ? y : x;
  }
  const int64_t n = checked_numel(out, "folded constant");
  const auto ost = strides(out);
  auto index = [&](const Shape& s, int64_t k) {
    int64_t idx = 0, mul = 1;
    for (size_t d = r; d-- > 0;) {
      const int64_t sd = dim(s, d);
      if (sd != 1) idx += (k / ost[d] % out[d]) * mul;
      mul *= sd;
    }
    return idx;
  };
  HostTensor o;
  o.is_int = a.is_int;
  o.shape = out;
  for (int64_t k = 0; k < n; ++k) {
    const size_t ia = size_t(index(a.shape, k)), ib = size_t(index(b.shape, k));
    if (a.is_int) {
      const int64_t x = a.i[ia], y = b.i[ib];
      if (x == kBatch || y == kBatch) throw OnnxError("arithmetic on the batch size");
      if (std::llabs(x) > (int64_t(1) << 40) || std::llabs(y) > (int64_t(1) << 40))
        throw OnnxError("integer operands out of range");
      int64_t v = 0;
      if (op == "Add") v = x + y;
      else if (op == "Sub") v = x - y;
      else if (op == "Mul") v = x * y;
      else {
        if (y == 0) throw OnnxError("integer division by zero");
        v = x / y;
      }
      o.i.push_back(v);
    } else {
      const float x = a.f[ia], y = b.f[ib];
      o.f.push_back(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y);
    }
  }
  return o;
}

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
    if (op == "Unsqueeze") {
      const int64_t r = int64_t(x.shape.size() + axes.size());
      if (r > kMaxRank) throw OnnxError("rank above " + std::to_string(kMaxRank));
      std::vector<bool> one(size_t(r), false);
      for (int64_t a : axes) one[size_t(norm_axis(a, r, "axis"))] = true;
      o.shape.clear();
      size_t src = 0;
      for (int64_t k = 0; k < r; ++k) o.shape.push_back(one[size_t(k)] ? 1 : x.shape.at(src++));
      if (src != x.shape.size()) throw OnnxError("repeated axes");
    } else {
      const int64_t r = int64_t(x.shape.size());
      std::vector<bool> drop(size_t(r), axes.empty());
      for (int64_t a : axes) drop[size_t(norm_axis(a, r, "axis"))] = true;
      o.shape.clear();
      for (int64_t k = 0; k < r; ++k) {
        if (drop[size_t(k)] && x.shape[size_t(k)] == 1) continue;
        if (drop[size_t(k)] && !axes.empty()) throw OnnxError("squeezing a dimension that is not 1");
        o.shape.push_back(x.shape[size_t(k)]);
      }
    }
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
          if (v == kBatch) throw OnnxError("the batch size cast to float");
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
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    check_attrs(n, {});
    out.push_back(binary(op, need(in, 0), need(in, 1)));
  } else {
    return false;
  }
  return true;
}

}  // namespace ipg::onnx_detail
