// ONNX reader, constant folding's operations on host tensors (onnx_fold.cpp uses them):
// axis checks, the gather that data movement shares, Transpose, Slice, Concat, Reshape's
// target shape, the broadcasting arithmetic (Add, Sub, Mul, Div, Mod, Equal), Where and Expand.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/onnx_fold_internal.h"

namespace ipg::onnx_detail {

namespace {

// Strides of a row-major shape.
std::vector<int64_t> strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t k = s.size(); k-- > 1;) st[k - 1] = st[k] * s[k];
  return st;
}

}  // namespace

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

SliceAxis slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (step == 0) throw OnnxError("a slice step is 0");
  // A step longer than the axis takes one element at most, as the axis' length does;
  // clamped, the counts below cannot overflow.
  const int64_t lim = std::max<int64_t>(dim, 1), st = std::clamp<int64_t>(step, -lim, lim);
  int64_t s = start, e = end;
  if (s < 0) s = s < -dim ? -1 : s + dim;
  if (e < 0) e = e < -dim ? -1 : e + dim;
  SliceAxis r;
  r.step = st;
  if (st > 0) {
    s = std::clamp<int64_t>(s, 0, dim);
    e = std::clamp<int64_t>(e, 0, dim);
    r.count = e > s ? (e - s + st - 1) / st : 0;
  } else {
    s = std::clamp<int64_t>(s, -1, dim - 1);
    e = std::clamp<int64_t>(e, -1, dim - 1);
    r.count = s > e ? (s - e - st - 1) / -st : 0;
  }
  r.begin = s;
  return r;
}

void slice_defaults(const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                    std::vector<int64_t>& axes, std::vector<int64_t>& steps) {
  if (starts.size() != ends.size()) throw OnnxError("starts and ends differ in length");
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(int64_t(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    throw OnnxError("axes/steps differ in length from starts");
}

HostTensor slice(const HostTensor& x, const std::vector<int64_t>& starts,
                 const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                 std::vector<int64_t> steps) {
  const int64_t r = int64_t(x.shape.size());
  slice_defaults(starts, ends, axes, steps);
  std::vector<int64_t> begin(size_t(r), 0), step(size_t(r), 1);
  Shape out = x.shape;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t a = norm_axis(axes[k], r, "axis");
    const SliceAxis sa = slice_axis(x.shape[size_t(a)], starts[k], ends[k], steps[k]);
    out[size_t(a)] = sa.count;
    begin[size_t(a)] = sa.begin;
    step[size_t(a)] = sa.step;
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

Shape squeeze_shape(const Shape& in, const std::vector<int64_t>& axes, bool unsqueeze, bool batch) {
  const char* op = unsqueeze ? "Unsqueeze" : "Squeeze";
  if (unsqueeze && axes.empty()) throw OnnxError("Unsqueeze needs axes");
  const int64_t r = int64_t(in.size()) + (unsqueeze ? int64_t(axes.size()) : 0);
  if (r > kMaxRank) throw OnnxError("rank above " + std::to_string(kMaxRank));
  std::vector<bool> marked(size_t(r), false);
  for (int64_t a : axes) {
    const int64_t k = norm_axis(a, r, "axis");
    if (marked[size_t(k)]) throw OnnxError("axis " + std::to_string(a) + " is repeated");
    if (batch && k == 0) throw BatchRuleError(std::string(op) + " of the batch dimension is not supported");
    marked[size_t(k)] = true;
  }
  Shape out;
  for (int64_t k = 0, src = 0; k < r; ++k) {
    if (unsqueeze) {
      out.push_back(marked[size_t(k)] ? 1 : in[size_t(src++)]);
      continue;
    }
    const bool drop = axes.empty() ? in[size_t(k)] == 1 && !(batch && k == 0) : marked[size_t(k)];
    if (!drop) out.push_back(in[size_t(k)]);
    else if (in[size_t(k)] != 1)
      throw OnnxError("dimension " + std::to_string(k) + " of " + shape_text(in) + " is not 1");
  }
  return out;
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

Shape broadcast_shape(const std::vector<Shape>& shapes) {
  size_t r = 0;
  for (const Shape& s : shapes) r = std::max(r, s.size());
  Shape out(r, 1);
  for (const Shape& s : shapes)
    for (size_t k = 0; k < s.size(); ++k) {
      int64_t& o = out[r - s.size() + k];
      const int64_t d = s[k];
      if (d != o && d != 1 && o != 1) {
        std::string list;
        for (const Shape& t : shapes) list += (list.empty() ? "" : " and ") + shape_text(t);
        throw OnnxError("shapes " + list + " do not broadcast");
      }
      if (o == 1) o = d;
    }
  return out;
}

int64_t broadcast_source(const Shape& s, const Shape& out, int64_t k) {
  int64_t idx = 0, mul = 1;
  for (size_t d = out.size(); d-- > 0;) {
    const int64_t coord = k % out[d];
    k /= out[d];
    const size_t back = out.size() - d;  // 1 for the last axis
    if (back > s.size()) break;
    const int64_t sd = s[s.size() - back];
    if (sd != 1) idx += coord * mul;
    mul *= sd;
  }
  return idx;
}

HostTensor binary(const std::string& op, const HostTensor& a, const HostTensor& b) {
  if (a.is_int != b.is_int) throw OnnxError("operands of different element types");
  const Shape out = broadcast_shape({a.shape, b.shape});
  const int64_t n = checked_numel(out, "folded constant");
  HostTensor o;
  o.is_int = a.is_int || op == "Equal";
  o.shape = out;
  for (int64_t k = 0; k < n; ++k) {
    const size_t ia = size_t(broadcast_source(a.shape, out, k)), ib = size_t(broadcast_source(b.shape, out, k));
    if (op == "Equal") {
      // The batch size is at least 1: unequal to the -1 of an Expand's "keep this
      // dimension" (torch's export of expand(n, -1, -1)); to any other number, unknown.
      const double x = a.value(ia), y = b.value(ib);
      const bool xb = a.is_int && a.i[ia] == kBatch, yb = b.is_int && b.i[ib] == kBatch;
      if (xb != yb && (xb ? y : x) >= 1) throw BatchRuleError("the batch size compared with a number");
      o.i.push_back(xb || yb ? int64_t(xb == yb) : int64_t(x == y));
    } else if (a.is_int) {
      const int64_t x = a.i[ia], y = b.i[ib];
      if (x == kBatch || y == kBatch) throw BatchRuleError("arithmetic on the batch size");
      if (std::llabs(x) > (int64_t(1) << 40) || std::llabs(y) > (int64_t(1) << 40))
        throw OnnxError("integer operands out of range");
      int64_t v = 0;
      if (op == "Add") v = x + y;
      else if (op == "Sub") v = x - y;
      else if (op == "Mul") v = x * y;
      else {
        if (y == 0) throw OnnxError("integer division by zero");
        v = x / y;
        // Mod (fmod 0): the sign of the divisor, as Python's %; Swin's padding to windows
        if (op == "Mod" && (v = x % y) != 0 && ((v < 0) != (y < 0))) v += y;
      }
      o.i.push_back(v);
    } else {
      const float x = a.f[ia], y = b.f[ib];
      if (op == "Mod") throw OnnxError("Mod of floats is not supported");
      o.f.push_back(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y);
    }
  }
  return o;
}

HostTensor where(const HostTensor& cond, const HostTensor& x, const HostTensor& y) {
  if (!cond.is_int) throw OnnxError("Where's condition must be boolean");
  if (x.is_int != y.is_int) throw OnnxError("Where's operands have different element types");
  const Shape out = broadcast_shape({cond.shape, x.shape, y.shape});
  const int64_t n = checked_numel(out, "folded constant");
  HostTensor o;
  o.is_int = x.is_int;
  o.shape = out;
  for (int64_t k = 0; k < n; ++k) {
    const bool pick = cond.i[size_t(broadcast_source(cond.shape, out, k))] != 0;
    const HostTensor& t = pick ? x : y;
    const size_t at = size_t(broadcast_source(t.shape, out, k));
    if (t.is_int) o.i.push_back(t.i[at]);
    else o.f.push_back(t.f[at]);
  }
  return o;
}

HostTensor expand(const HostTensor& x, const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    if (d < 0) throw OnnxError("Expand to a negative dimension " + std::to_string(d));
  const Shape out = broadcast_shape({x.shape, Shape(shape.begin(), shape.end())});
  return gather_elements(x, out, [&](int64_t k) { return broadcast_source(x.shape, out, k); });
}

}  // namespace ipg::onnx_detail
