// The planner's layer lowerings: convolutions (with a following batch norm, residual add
// and ReLU fused in), linear layers (with ReLU), max pooling, zero padding absorbed into
// the convolution or pooling after it, and the reshapes that flatten.
#include <string>
#include <utility>
#include <vector>

#include "engine/plan_internal.h"
#include "kernels/common/pool_math.h"

namespace ipg::plan_detail {

void Planner::conv(int i) {
  const Node& n = node(i);
  // The fused lowerings take one stride and one padding for both axes (with any groups
  // and dilations); anything else is refused by name rather than planned wrongly.
  const trace::Attrs& a = n.attrs;
  if (a.groups < 1 || a.dilation[0] < 1 || a.dilation[1] < 1)
    throw Refused{where(i) + ": convolution with groups " + std::to_string(a.groups) +
                  ", dilation " + std::to_string(a.dilation[0]) + "x" +
                  std::to_string(a.dilation[1])};
  if (a.stride_w != a.stride || a.pad[0] != a.padding || a.pad[1] != a.padding ||
      a.pad[2] != a.padding || a.pad[3] != a.padding)
    throw Refused{where(i) + ": convolution with unequal strides or paddings (stride " +
                  std::to_string(a.stride) + "x" + std::to_string(a.stride_w) + ", pads " +
                  std::to_string(a.pad[0]) + "/" + std::to_string(a.pad[1]) + "/" +
                  std::to_string(a.pad[2]) + "/" + std::to_string(a.pad[3]) +
                  ") has no fused lowering"};
  Chain c;
  PlanStep& s = c.step;
  s.kind = PlanStep::Kind::Conv;
  const auto [x, extra] = through_pad(n.inputs[0]);
  // A 1x1 convolution of a squeezed [n, C, 1, 1] value (squeeze-and-excitation) is a
  // linear layer of its [n, C] value, the weight [out, C, 1, 1] read as [out, C].
  c.squeeze = squeezed(x);
  s.x = c.squeeze ? lowered_squeezed(x, i) : lowered(x, i);
  s.stride = n.attrs.stride;
  s.padding = n.attrs.padding + extra;
  s.groups = a.groups;
  s.dilation_h = a.dilation[0];
  s.dilation_w = a.dilation[1];
  s.weight = host(n.inputs[1], i);
  s.weight_shape = shape(n.inputs[1]);
  const int64_t c_out = s.weight_shape[0];
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) s.bias = host(n.inputs[2], i);
  s.from = "conv2d";
  c.out = n.output;
  if (c.squeeze) {
    const Shape& w = s.weight_shape;
    if (w.size() != 4 || w[2] != 1 || w[3] != 1 || s.padding != 0 || s.groups != 1)
      throw Refused{where(i) + ": a convolution of a [n, C, 1, 1] value other than 1x1, "
                    "ungrouped and unpadded"};
    s.kind = PlanStep::Kind::Linear;
    s.weight_shape = {w[0], w[1]};
    s.stride = 1, s.dilation_h = 1, s.dilation_w = 1;
  }
  int next = sole_consumer(c.out);
  std::vector<float> scale, shift;
  if (next >= 0 && bn_affine(next, c.out, scale, shift)) {
    const size_t per = s.weight.size() / size_t(c_out);
    for (size_t o = 0; o < size_t(c_out); ++o)
      for (size_t k = 0; k < per; ++k) s.weight[o * per + k] *= scale[o];
    if (s.bias.empty()) s.bias.assign(size_t(c_out), 0.f);
    for (size_t o = 0; o < size_t(c_out); ++o) s.bias[o] = s.bias[o] * scale[o] + shift[o];
    absorb(c, next, "batch_norm");
    next = sole_consumer(c.out);
  }
  if (!c.squeeze && next >= 0 && node(next).op == Op::Add && node(next).inputs.size() == 2) {
    const Node& add = node(next);
    const int other = add.inputs[0] == c.out ? add.inputs[1] : add.inputs[0];
    if (other != c.out && !g_.is_constant(other) && shape(other) == shape(c.out)) {
      c.residual = other;
      absorb(c, next, "add");
      next = sole_consumer(c.out);
    }
  }
  if (next >= 0 && node(next).op == Op::Relu) {
    s.relu = true;
    absorb(c, next, "relu");
  } else if (!c.squeeze && next >= 0 && node(next).op == Op::Clamp && node(next).attrs.lo == 0.f &&
             node(next).attrs.hi > 0.f) {
    // ReLU6 (a clamp to [0, hi]): the ReLU epilogue with an upper bound. Its gradient
    // passes where 0 < y < hi, which is where 0 < x < hi, as the clamp's does.
    s.relu = true;
    s.relu_max = node(next).attrs.hi;
    absorb(c, next, "clamp");
  }
  finish(std::move(c), i);
}

void Planner::linear(int i) {
  const Node& n = node(i);
  Chain c;
  PlanStep& s = c.step;
  s.kind = PlanStep::Kind::Linear;
  s.x = lowered(n.inputs[0], i);
  if (plan_.shape(s.x).size() != 2) throw Refused{where(i) + ": input is not [n, features]"};
  s.weight = host(n.inputs[1], i);
  s.weight_shape = shape(n.inputs[1]);
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) s.bias = host(n.inputs[2], i);
  s.from = "linear";
  c.out = n.output;
  const int next = sole_consumer(c.out);
  if (next >= 0 && node(next).op == Op::Relu) {
    s.relu = true;
    absorb(c, next, "relu");
  }
  finish(std::move(c), i);
}

// Max or average pooling, with a zero padding before it taken as its own (zero_pad says
// when that holds).
void Planner::pool(int i) {
  const Node& n = node(i);
  const bool max = n.op == Op::MaxPool2d;
  const auto [x, extra] = through_pad(n.inputs[0]);
  Chain c;
  PlanStep& s = c.step;
  s.kind = max ? PlanStep::Kind::MaxPool : PlanStep::Kind::AvgPool;
  s.x = lowered(x, i);
  s.kernel = n.attrs.kernel;
  s.stride = n.attrs.stride;
  s.padding = n.attrs.padding + extra;
  s.ceil = n.attrs.ceil;
  s.include_pad = extra ? true : n.attrs.include_pad;  // an absorbed zero padding counts
  if (2 * s.padding > s.kernel) throw Refused{where(i) + ": padding wider than half the window"};
  s.from = std::string(extra ? "zero_pad2d+" : "") + (max ? "max_pool2d" : "avg_pool2d");
  c.out = n.output;
  finish(std::move(c), i);
}

void Planner::zero_pad(int i) {
  const Node& n = node(i);
  const int* p = n.attrs.pad;
  const int x = n.inputs[0];
  const int next = sole_consumer(n.output);
  const bool symmetric = p[0] == p[1] && p[1] == p[2] && p[2] == p[3];
  if (symmetric && next >= 0 && pad_[size_t(x)].first < 0) {
    const Node& m = node(next);
    // Zero padding before a convolution is the convolution's own padding.
    const bool conv = m.op == Op::Conv2d && m.inputs[0] == n.output;
    // Before a max pooling it is the pooling's -inf padding when the input is a ReLU's
    // output: no window is all padding, so its max is >= 0 either way.
    bool pool = false;
    if (m.op == Op::MaxPool2d && m.attrs.padding == 0 && !m.attrs.ceil && pv_[size_t(x)] > 0) {
      const PlanStep& src = plan_.steps[size_t(pv_[size_t(x)] - 1)];
      pool = src.relu && src.kind != PlanStep::Kind::Linear;
    }
    // Before an average pool without padding (PyTorch's export of one whose padding counts:
    // Pad, then AveragePool), the zeros are the pool's own padding, counted (at most half
    // the window): the same sums, and the same divisors, each window clipped to the padded
    // input. In ceil mode only where both give the same windows: the explicit padding lets a
    // last window start in the right padding, the pool's own padding does not.
    if (m.op == Op::AvgPool2d && m.attrs.padding == 0 && 2 * p[0] <= m.attrs.kernel) {
      const Shape& s = shape(x);
      const int k = m.attrs.kernel, st = m.attrs.stride;
      bool same = true;
      for (int d : {2, 3})
        same = same && kernels::pool_out_size(s[size_t(d)] + 2 * p[0], k, st, 0, m.attrs.ceil) ==
                           kernels::pool_out_size(s[size_t(d)], k, st, p[0], m.attrs.ceil);
      pool = same;
    }
    if (conv || pool) {
      lowered(x, i);
      pad_[size_t(n.output)] = {x, p[0]};
      done_[size_t(i)] = true;
      return;
    }
  }
  throw Refused{where(i) + ": a zero padding that no convolution or pooling takes"};
}

void Planner::reshape(int i) {
  const Node& n = node(i);
  const int x = n.inputs[0];
  const Shape& in = shape(x);
  const Shape& out = shape(n.output);
  // [n, k] -> [n, k, 1, 1] -> [n, k], as an imported graph's GlobalAveragePool (keeping
  // dims) and Flatten trace: the 4-D view is the [n, k] value itself, marked squeezed so
  // that only the steps that take it as such read it (lowered() refuses it to the others:
  // they run unfused, never wrongly), and the round trip back is that value again.
  if (in.size() == 2 && out == Shape{in[0], in[1], 1, 1} && !squeezed(x)) {
    pv_[size_t(n.output)] = lowered(x, i);
    squeezed_[size_t(n.output)] = true;
    done_[size_t(i)] = true;
    return;
  }
  if (squeezed(x)) {
    if (out != Shape{in[0], in[1]})
      throw Refused{where(i) + ": reshapes a [n, k, 1, 1] value other than to [n, k]"};
    pv_[size_t(n.output)] = lowered_squeezed(x, i);
    done_[size_t(i)] = true;
    return;
  }
  const int px = lowered(x, i);
  if (in.size() == 4 && out.size() == 2 && out[0] == in[0] && out[1] == in[1] * in[2] * in[3]) {
    Chain c;
    c.step.kind = PlanStep::Kind::Flatten;
    c.step.x = px;
    c.step.from = "reshape";
    c.out = n.output;
    return finish(std::move(c), i);
  }
  if (in == out) {  // a no-op view
    pv_[size_t(n.output)] = px;
    done_[size_t(i)] = true;
    return;
  }
  throw Refused{where(i) + ": only flattening [n, C, H, W] to [n, C*H*W] is lowered"};
}

}  // namespace ipg::plan_detail
