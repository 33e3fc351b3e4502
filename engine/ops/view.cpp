// Views share storage; their backward reshapes the gradient back.
#include "engine/ops/view.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"

namespace ipg::ops {

namespace {

// A graph-free tensor over t's storage with another shape of equal size.
Tensor view_as(const Tensor& t, const Shape& shape) {
  auto im = std::make_shared<TensorImpl>();
  const TensorImpl& src = t.impl();
  im->storage = src.storage;
  im->offset = src.offset;
  im->shape = shape;
  im->strides = contiguous_strides(shape);
  im->dtype = src.dtype;
  im->device = src.device;
  return Tensor(std::move(im));
}

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw ShapeError("reshape: more than one -1 in " + shape_str(shape));
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      throw ShapeError("reshape: negative dimension in " + shape_str(shape));
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      // A shape read from a file may name dimensions whose product is no int64.
      throw ShapeError("reshape: " + shape_str(shape) + " has more elements than an int64 counts");
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw ShapeError("reshape: cannot view " + shape_str(x.shape()) + " as " + shape_str(shape));
    shape[infer] = x.numel() / known;
  }
  if (shape_numel(shape) != x.numel())
    throw ShapeError("reshape: cannot view " + shape_str(x.shape()) + " (" +
                     std::to_string(x.numel()) + " elements) as " + shape_str(shape));
  Tensor y = view_as(x, shape);
  if (autograd::needs_graph({x})) {
    autograd::attach(y, "reshape", {x}, [in_shape = x.shape()](const Tensor& g, GradSink& sink) {
      add_(sink.at(0), view_as(g, in_shape));
    });
  }
  return y;
}

Tensor flatten(const Tensor& x) {
  if (x.ndim() < 1) throw ShapeError("flatten: needs at least 1 dimension, got []");
  return reshape(x, {x.dim(0), -1});
}

}  // namespace ipg::ops
