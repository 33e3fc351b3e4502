// conv2d's ONNX geometry (Conv2dParams: per-axis strides, asymmetric pads, dilations,
// groups, depthwise): forward against a plain loop written here, finite-difference
// gradients in x, weight and bias, the square wrapper against the general form, shape
// errors, what the planner keeps (groups, dilations) and refuses (what the fused
// lowerings cannot run), and CUDA parity.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "engine/error.h"
#include "engine/ops/conv.h"
#include "engine/ops/pool.h"
#include "engine/plan.h"
#include "engine/trace.h"
#include "tests/support/gradcheck.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"

namespace ipg {
namespace {

using Inputs = std::vector<Tensor>;
using ops::Conv2dParams;
using testing::random_leaf;
using testing::random_tensor;

struct OnnxConvCase {
  const char* name;
  int64_t n, c_in, h, w, c_out, kh, kw;
  Conv2dParams p;
  Shape w_shape() const { return {c_out, c_in / p.groups, kh, kw}; }
  int64_t h_out() const {
    return (h + p.pad_top + p.pad_bottom - p.dilation_h * (kh - 1) - 1) / p.stride_h + 1;
  }
  int64_t w_out() const {
    return (w + p.pad_left + p.pad_right - p.dilation_w * (kw - 1) - 1) / p.stride_w + 1;
  }
};

Conv2dParams params(int sh, int sw, int top, int left, int bottom, int right, int dh, int dw,
                    int groups) {
  Conv2dParams p;
  p.stride_h = sh, p.stride_w = sw;
  p.pad_top = top, p.pad_left = left, p.pad_bottom = bottom, p.pad_right = right;
  p.dilation_h = dh, p.dilation_w = dw;
  p.groups = groups;
  return p;
}

// Both oneDNN paths are covered: few input channels (plain NCHW input) and 8 or more
// (channel-blocked layouts), grouped and not.
std::vector<OnnxConvCase> cases() {
  return {
      {"groups2", 2, 4, 7, 6, 6, 3, 3, params(1, 1, 1, 1, 1, 1, 1, 1, 2)},
      {"depthwise", 2, 8, 9, 8, 8, 3, 3, params(1, 1, 1, 1, 1, 1, 1, 1, 8)},
      {"depthwise_x2_stride2", 2, 3, 9, 10, 6, 3, 3, params(2, 2, 1, 1, 1, 1, 1, 1, 3)},
      {"dilation2", 2, 3, 9, 9, 4, 3, 3, params(1, 1, 2, 2, 2, 2, 2, 2, 1)},
      {"dilation_2x1_blocked", 1, 8, 9, 8, 8, 3, 2, params(1, 1, 1, 0, 1, 0, 2, 1, 1)},
      {"asymmetric_pads", 2, 3, 6, 7, 4, 3, 3, params(1, 1, 0, 1, 1, 2, 1, 1, 1)},
      {"stride2_asym_pads", 2, 5, 8, 8, 4, 3, 3, params(2, 2, 0, 0, 1, 1, 1, 1, 1)},
      {"stride_2x1", 2, 3, 8, 7, 5, 2, 3, params(2, 1, 1, 1, 1, 1, 1, 1, 1)},
      {"everything", 2, 6, 11, 10, 4, 3, 2, params(2, 1, 2, 1, 0, 3, 2, 3, 2)},
  };
}

// y[n, o, i, j] = b[o] + sum over the group's channels c and taps (a, k) of
// x[n, c, i*sh - top + a*dh, j*sw - left + k*dw] * w[o, c - group start, a, k], in double.
std::vector<float> conv_ref(const OnnxConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
                            const std::vector<float>& b) {
  const int64_t oh = c.h_out(), ow = c.w_out(), cig = c.c_in / c.p.groups,
                cog = c.c_out / c.p.groups;
  std::vector<float> y(size_t(c.n * c.c_out * oh * ow));
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t o = 0; o < c.c_out; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = b.empty() ? 0.0 : b[size_t(o)];
          const int64_t g = o / cog;
          for (int64_t ci = 0; ci < cig; ++ci)
            for (int64_t a = 0; a < c.kh; ++a)
              for (int64_t k = 0; k < c.kw; ++k) {
                const int64_t ih = i * c.p.stride_h - c.p.pad_top + a * c.p.dilation_h;
                const int64_t iw = j * c.p.stride_w - c.p.pad_left + k * c.p.dilation_w;
                if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
                acc += double(x[size_t(((n * c.c_in + g * cig + ci) * c.h + ih) * c.w + iw)]) *
                       w[size_t(((o * cig + ci) * c.kh + a) * c.kw + k)];
              }
          y[size_t(((n * c.c_out + o) * oh + i) * ow + j)] = float(acc);
        }
  return y;
}

TEST(OnnxConv, ForwardMatchesLoopReference) {
  uint64_t seed = 100;
  for (const OnnxConvCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const Tensor x = random_tensor({c.n, c.c_in, c.h, c.w}, ++seed);
    const Tensor w = random_tensor(c.w_shape(), ++seed);
    const Tensor b = random_tensor({c.c_out}, ++seed);
    const Tensor y = ops::conv2d(x, w, b, c.p);
    ASSERT_EQ(y.shape(), (Shape{c.n, c.c_out, c.h_out(), c.w_out()}));
    const auto r = testing::compare_values(conv_ref(c, x.to_vector(), w.to_vector(), b.to_vector()),
                                           y.to_vector(), 1e-5, 1e-5);
    EXPECT_TRUE(r.ok) << r.message;
    const auto r0 = testing::compare_values(conv_ref(c, x.to_vector(), w.to_vector(), {}),
                                            ops::conv2d(x, w, Tensor(), c.p).to_vector(), 1e-5,
                                            1e-5);
    EXPECT_TRUE(r0.ok) << "without bias: " << r0.message;
  }
}

TEST(OnnxConv, FiniteDifferenceGradients) {
  uint64_t seed = 200;
  for (const OnnxConvCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const Tensor x = random_leaf({c.n, c.c_in, c.h, c.w}, ++seed);
    const Tensor w = random_leaf(c.w_shape(), ++seed);
    const Tensor b = random_leaf({c.c_out}, ++seed);
    const Conv2dParams p = c.p;
    EXPECT_GRADCHECK([p](const Inputs& in) { return ops::conv2d(in[0], in[1], in[2], p); },
                     {x, w, b});
    // Frozen weights: the backward-data pass alone (the fingerprint loop's case).
    EXPECT_GRADCHECK([p, w, b](const Inputs& in) {
      return ops::conv2d(in[0], w.detach(), b.detach(), p);
    }, {x});
  }
}

TEST(OnnxConv, SquareWrapperIsTheGeneralForm) {
  const Tensor x = random_tensor({2, 5, 9, 9}, 1), w = random_tensor({4, 5, 3, 3}, 2),
               b = random_tensor({4}, 3);
  for (int stride : {1, 2})
    for (int pad : {0, 1, 2}) {
      const Tensor a = ops::conv2d(x, w, b, stride, pad);
      const Tensor g = ops::conv2d(x, w, b, params(stride, stride, pad, pad, pad, pad, 1, 1, 1));
      EXPECT_EQ(a.to_vector(), g.to_vector()) << "stride " << stride << " pad " << pad;
    }
}

// Depthwise 3x3 at a MobileNet-like size runs through oneDNN's grouped kernels; checked here
// against the loop so a layout mix-up at realistic channel counts cannot pass.
TEST(OnnxConv, DepthwiseAtMobileNetWidth) {
  OnnxConvCase c{"depthwise32", 2, 32, 14, 14, 32, 3, 3, params(1, 1, 1, 1, 1, 1, 1, 1, 32)};
  const Tensor x = random_tensor({c.n, c.c_in, c.h, c.w}, 7), w = random_tensor(c.w_shape(), 8);
  const auto r = testing::compare_values(conv_ref(c, x.to_vector(), w.to_vector(), {}),
                                         ops::conv2d(x, w, Tensor(), c.p).to_vector(), 1e-5, 1e-5);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(OnnxConv, ErrorsNameTheGeometry) {
  const Tensor x = Tensor::zeros({1, 6, 8, 8});
  auto expect_error = [&](const Tensor& w, const Conv2dParams& p, const std::string& part) {
    try {
      ops::conv2d(x, w, Tensor(), p);
      ADD_FAILURE() << "expected ShapeError mentioning '" << part << "'";
    } catch (const ShapeError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error(Tensor::zeros({4, 6, 3, 3}), params(1, 1, 0, 0, 0, 0, 1, 1, 4), "4 groups");
  expect_error(Tensor::zeros({6, 6, 3, 3}), params(1, 1, 0, 0, 0, 0, 1, 1, 2),
               "the weight expects 6");
  expect_error(Tensor::zeros({6, 6, 3, 3}), params(0, 1, 0, 0, 0, 0, 1, 1, 1), "strides");
  expect_error(Tensor::zeros({6, 6, 3, 3}), params(1, 1, 0, 0, 0, 0, 0, 1, 1), "dilations");
  expect_error(Tensor::zeros({6, 6, 3, 3}), params(1, 1, 0, -1, 0, 0, 1, 1, 1), "pads");
  expect_error(Tensor::zeros({6, 6, 3, 3}), params(1, 1, 0, 0, 0, 0, 5, 1, 1), "dilated");
}

// The planner fuses convolutions with one stride and one padding for both axes, grouped
// and dilated ones kept so; every other geometry must be refused with the node named,
// never planned with the wrong geometry.
std::optional<Plan> plan_of(const Tensor& w, const Conv2dParams& p, std::string* why) {
  trace::Tracer t(random_tensor({2, 4, 9, 9}, 5));
  const Tensor y = ops::global_avg_pool2d(ops::conv2d(t.input(), w, Tensor(), p));
  return make_plan(t.finish(y), why);
}

TEST(OnnxConv, PlannerRefusesWhatItCannotLower) {
  const Tensor w = random_tensor({4, 4, 3, 3}, 6), wg = random_tensor({4, 1, 3, 3}, 7);
  std::string why;
  ASSERT_TRUE(plan_of(w, params(2, 2, 1, 1, 1, 1, 1, 1, 1), &why)) << why;  // control
  struct Refusal {
    Tensor w;
    Conv2dParams p;
    const char* says;
  };
  // Grouped (depthwise) and dilated: planned with their groups and dilations.
  for (const auto& [wt, p, says] :
       {std::make_tuple(wg, params(1, 1, 1, 1, 1, 1, 1, 1, 4), "conv(v0) groups 4"),
        std::make_tuple(w, params(1, 1, 2, 2, 2, 2, 2, 2, 1), "conv(v0) dilation 2x2"),
        std::make_tuple(w, params(1, 1, 1, 1, 1, 1, 3, 2, 1), "conv(v0) dilation 3x2")}) {
    const std::optional<Plan> plan = plan_of(wt, p, &why);
    ASSERT_TRUE(plan) << why;
    EXPECT_NE(plan->str().find(says), std::string::npos) << plan->str();
    EXPECT_EQ(plan->steps.at(0).weight_shape, wt.shape());
  }
  for (const Refusal& r : {Refusal{w, params(2, 1, 1, 1, 1, 1, 1, 1, 1), "unequal strides"},
                           Refusal{w, params(1, 1, 1, 0, 1, 0, 1, 1, 1), "unequal strides"},
                           Refusal{w, params(1, 1, 0, 0, 1, 1, 1, 1, 1), "zero padding"}}) {
    why.clear();
    EXPECT_FALSE(plan_of(r.w, r.p, &why)) << "planned a convolution it cannot lower: " << r.says;
    EXPECT_NE(why.find(r.says), std::string::npos) << why;
  }
}

TEST(OnnxConvCuda, ForwardAndGradientsParity) {
  IPG_REQUIRE_CUDA();
  uint64_t seed = 300;
  for (const OnnxConvCase& c : cases()) {
    SCOPED_TRACE(c.name);
    const Conv2dParams p = c.p;
    testing::expect_forward_backward_parity(
        [p](const Inputs& in) { return ops::conv2d(in[0], in[1], in[2], p); },
        {random_leaf({c.n, c.c_in, c.h, c.w}, ++seed), random_leaf(c.w_shape(), ++seed),
         random_leaf({c.c_out}, ++seed)},
        1e-5, 1e-4);
  }
}

}  // namespace
}  // namespace ipg
