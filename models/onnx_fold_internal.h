// Inside the ONNX reader's constant folding (models/onnx_fold.cpp, onnx_host_ops.cpp): the
// operations on host tensors that fold_constant evaluates nodes with. Not part of the
// models layer's interface.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/onnx_internal.h"

namespace ipg::onnx_detail {

// A Constant node's value (value, value_float(s), value_int(s)); an OnnxError otherwise.
HostTensor constant_node(const onnx::NodeProto& n);
// axis in [-rank, rank) -> [0, rank); else an OnnxError naming `what`.
int64_t norm_axis(int64_t axis, int64_t rank, const char* what);
// out[k] = in[src(k)]: the data-movement ops share this.
HostTensor gather_elements(const HostTensor& in, const Shape& out_shape,
                           const std::function<int64_t(int64_t)>& src);
// Transpose (an empty perm reverses the axes).
HostTensor transpose(const HostTensor& x, std::vector<int64_t> perm);
// One axis of a Slice by ONNX's rules (negative indices from the end, then clamped; a
// negative step walks down): the elements begin, begin + step, ... (count of them, maybe 0).
struct SliceAxis {
  int64_t begin = 0, count = 0, step = 1;
};
SliceAxis slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step);
// A Slice's axes and steps filled in by ONNX's defaults (empty axes: the first ones;
// empty steps: 1), the lengths checked.
void slice_defaults(const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                    std::vector<int64_t>& axes, std::vector<int64_t>& steps);
// Slice (empty axes: the first ones; empty steps: 1).
HostTensor slice(const HostTensor& x, const std::vector<int64_t>& starts,
                 const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                 std::vector<int64_t> steps);
// Concat along axis.
HostTensor concat(const std::vector<const HostTensor*>& in, int64_t axis);
// Reshape's target: 0 copies the input's dimension (allowzero 0), -1 is inferred.
Shape reshape_target(const Shape& in, const std::vector<int64_t>& spec, bool allowzero);
// The shape Squeeze (unsqueeze false) or Unsqueeze gives `in` with `axes` (negative ones
// from the end; Squeeze without axes drops every dimension of 1). With `batch`, dimension 0
// is the batch of a runtime value: no axis may name it, and a Squeeze without axes keeps it.
Shape squeeze_shape(const Shape& in, const std::vector<int64_t>& axes, bool unsqueeze, bool batch);
// numpy's broadcast of the shapes (an OnnxError naming them when they do not), and the
// element of an operand of shape s that element k of the broadcast `out` reads.
Shape broadcast_shape(const std::vector<Shape>& shapes);
int64_t broadcast_source(const Shape& s, const Shape& out, int64_t k);
// Add, Sub, Mul, Div, Mod (integers, Python's sign rule) or Equal (op; Equal gives 0/1
// integers) with broadcasting.
HostTensor binary(const std::string& op, const HostTensor& a, const HostTensor& b);
// Where(cond, x, y) with broadcasting; Expand(x, shape): x broadcast with shape.
HostTensor where(const HostTensor& cond, const HostTensor& x, const HostTensor& y);
HostTensor expand(const HostTensor& x, const std::vector<int64_t>& shape);

}  // namespace ipg::onnx_detail
