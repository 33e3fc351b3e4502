// Concatenation: each input is one part copied into the output by kernels/*/concat; the
// backward takes each part's gradient back out of the output's.
#include "engine/ops/concat.h"

#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/cpu/concat.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/concat.h"
#endif

namespace ipg::ops {

using kernels::ConcatPart;

namespace {

std::string shapes_str(const std::vector<Tensor>& xs) {
  std::string s;
  for (size_t i = 0; i < xs.size(); ++i) s += (i ? ", " : "") + shape_str(xs[i].shape());
  return s;
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw std::invalid_argument("concat: no inputs");
  for (const Tensor& x : xs)
    if (!x.defined()) throw std::invalid_argument("concat: an input is undefined");
  const Tensor& first = xs[0];
  const int rank = static_cast<int>(first.ndim());
  const int ax = axis < 0 ? axis + rank : axis;
  if (ax < 0 || ax >= rank)
    throw ShapeError("concat: axis " + std::to_string(axis) + " out of range for inputs " +
                     shapes_str(xs));
  Shape out = first.shape();
  out[size_t(ax)] = 0;
  for (const Tensor& x : xs) {
    detail::check_dtype("concat", x, DType::F32);
    detail::check_same_device("concat", first, x);
    bool fits = static_cast<int>(x.ndim()) == rank;
    for (int d = 0; fits && d < rank; ++d)
      fits = d == ax || x.dim(d) == first.dim(d);
    if (!fits)
      throw ShapeError("concat: inputs " + shapes_str(xs) + " differ outside axis " +
                       std::to_string(ax));
    out[size_t(ax)] += x.dim(ax);
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= first.dim(d);
  for (int d = ax + 1; d < rank; ++d) inner *= first.dim(d);
  const Device dev = first.device();
  Tensor y = Tensor::empty(out, dev);
  std::vector<ConcatPart> parts(xs.size());
  int64_t offset = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    ConcatPart& p = parts[k];
    p.outer = outer;
    p.x_row = xs[k].dim(ax) * inner;
    p.y_row = out[size_t(ax)] * inner;
    p.offset = offset;
    offset += p.x_row;
    if (p.numel() == 0) continue;
    IPG_ON_DEVICE("concat", dev, kernels::cpu::concat_forward(xs[k].data(), y.data(), p),
                  kernels::cuda::concat_forward(xs[k].data(), y.data(), p, stream));
  }
  if (autograd::needs_graph(xs)) {
    autograd::attach(y, "concat", xs, [parts](const Tensor& g, GradSink& sink) {
      for (size_t k = 0; k < parts.size(); ++k) {
        if (!sink.wants(k) || parts[k].numel() == 0) continue;
        float* dx = sink.at(k).data();
        IPG_ON_DEVICE("concat_backward", g.device(),
                      kernels::cpu::concat_backward(g.data(), dx, parts[k]),
                      kernels::cuda::concat_backward(g.data(), dx, parts[k], stream));
      }
    });
  }
  return y;
}

}  // namespace ipg::ops
