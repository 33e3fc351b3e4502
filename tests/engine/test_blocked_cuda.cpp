// The CUDA kernels of frozen networks (kernels/cuda/blocked.h) against their CPU twins
// (kernels/cpu/blocked.h) on the same inputs: gradient sums with 1 to 3 parts and more
// than one launch takes, with and without the ReLU mask; the per-channel affine step both
// ways, plain and channel-blocked; linear epilogues; max pooling with overlapping padded
// windows and global average pooling, both ways; the activation steps' kinds and the
// channel scale (squeeze-and-excitation), with their CPU gradients against finite
// differences. Sums, routing and epilogues add in the
// same order on both devices and must give the same bits; the affine step may round
// differently (the GPU fuses its multiply-add). Skipped, visibly, where no GPU is present.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/common/act_shape.h"
#include "kernels/cpu/blocked.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/blocked.h"
#include "kernels/cuda/runtime.h"
#endif

namespace ipg {
namespace {

namespace kc = kernels::cpu;
using kernels::ActShape;

#if IPG_HAS_CUDA
namespace kg = kernels::cuda;

using testing::random_values;

// A device copy of host values, and the way back.
Tensor device(const std::vector<float>& v) {
  return Tensor::from_vector(v, {int64_t(v.size())}, Device::cuda());
}
std::vector<float> host(const Tensor& t) { return t.cpu().to_vector(); }
cudaStream_t stream() { return kg::stream(0); }
#endif

TEST(BlockedCuda, SumReluMaskMatchesTheCpu) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  const int64_t n = 10007;
  const std::vector<float> mask = random_values(n, 99);  // half of it <= 0
  // A ReLU's mask (no upper bound) and a ReLU6-like one, bounded inside the values' range.
  for (float mask_max : {std::numeric_limits<float>::infinity(), 0.5f})
  for (int count : {1, 2, 3, kg::kMaxGradParts + 3})
    for (bool masked : {false, true}) {
      SCOPED_TRACE("parts " + std::to_string(count) + (masked ? ", masked" : "") + ", max " +
                   std::to_string(mask_max));
      std::vector<std::vector<float>> parts;
      std::vector<Tensor> on_gpu;
      std::vector<const float*> cpu_ptrs, gpu_ptrs;
      for (int k = 0; k < count; ++k) {
        parts.push_back(random_values(n, 10 + k));
        on_gpu.push_back(device(parts.back()));
      }
      for (int k = 0; k < count; ++k) {
        cpu_ptrs.push_back(parts[k].data());
        gpu_ptrs.push_back(on_gpu[k].data());
      }
      std::vector<float> want(n);
      kc::sum_relu_mask(cpu_ptrs.data(), count, masked ? mask.data() : nullptr, mask_max,
                        want.data(), n);
      const Tensor gmask = device(mask);
      Tensor got = device(std::vector<float>(n, 7.f));  // overwritten, not added to
      kg::sum_relu_mask(gpu_ptrs.data(), count, masked ? gmask.data() : nullptr, mask_max,
                        got.data(), n, stream());
      EXPECT_EQ(host(got), want);
    }
#endif
}

// The CPU's per-channel affine step, plain (one lane per block: its own loop over the
// plane) and channel-blocked, gives every element the bits of the shared per-element math.
TEST(Blocked, ChannelAffineIsThePerElementMathBothWays) {
  for (int64_t block : {1, 16})
    for (bool relu : {false, true}) {
      SCOPED_TRACE("block " + std::to_string(block) + (relu ? ", relu" : ""));
      const ActShape s{3, 32, 5, 7, block};
      const std::vector<float> x = testing::random_values(s.numel(), 1),
                               dy = testing::random_values(s.numel(), 2);
      const std::vector<float> scale = testing::random_values(s.c, 3, 0.5f, 2.f),
                               shift = testing::random_values(s.c, 4);
      std::vector<float> y(s.numel()), dx(s.numel()), want_y(s.numel()), want_dx(s.numel());
      kc::channel_affine(s, x.data(), scale.data(), shift.data(), relu, y.data());
      kc::channel_affine_backward(s, y.data(), dy.data(), scale.data(), relu, dx.data());
      // Element e of a [n, c / block, h, w, block] map belongs to channel
      // (e / (h w block)) % (c / block) * block + e % block.
      const int64_t plane = s.h * s.w;
      for (int64_t e = 0; e < s.numel(); ++e) {
        const int64_t c = (e / (plane * block)) % (s.c / block) * block + e % block;
        want_y[e] = kernels::affine_relu(x[e], scale[c], shift[c], relu);
        want_dx[e] = kernels::affine_relu_backward(y[e], dy[e], scale[c], relu);
      }
      EXPECT_EQ(y, want_y);
      EXPECT_EQ(dx, want_dx);
    }
}

TEST(BlockedCuda, ChannelAffineMatchesTheCpuBothWays) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  for (int64_t block : {1, 16})
    for (bool relu : {false, true}) {
      SCOPED_TRACE("block " + std::to_string(block) + (relu ? ", relu" : ""));
      const ActShape s{3, 32, 5, 7, block};
      const std::vector<float> x = random_values(s.numel(), 1), dy = random_values(s.numel(), 2);
      const std::vector<float> scale = random_values(s.c, 3, 0.5f, 2.f),
                               shift = random_values(s.c, 4);
      std::vector<float> y(s.numel()), dx(s.numel());
      kc::channel_affine(s, x.data(), scale.data(), shift.data(), relu, y.data());
      kc::channel_affine_backward(s, y.data(), dy.data(), scale.data(), relu, dx.data());
      const Tensor gx = device(x), gdy = device(dy), gscale = device(scale), gshift = device(shift);
      Tensor gy = device(std::vector<float>(s.numel(), 7.f));
      Tensor gdx = device(std::vector<float>(s.numel(), 7.f));
      kg::channel_affine(s, gx.data(), gscale.data(), gshift.data(), relu, gy.data(), stream());
      // The backward pass reads the CPU's y, so a rounding difference in the forward
      // cannot move the ReLU's mask.
      const Tensor cpu_y = device(y);
      kg::channel_affine_backward(s, cpu_y.data(), gdy.data(), gscale.data(), relu, gdx.data(),
                                  stream());
      const auto fwd = testing::compare_values(y, host(gy), 1e-6, 1e-6);
      EXPECT_TRUE(fwd.ok) << fwd.message;
      EXPECT_EQ(host(gdx), dx);  // one product each: the same bits
    }
#endif
}

// The activation steps' kinds, each as a descriptor (kernels/common/activation_math.h).
std::vector<std::pair<std::string, kernels::Activation>> activation_kinds() {
  using kernels::Activation;
  auto unary = [](kernels::UnaryOp op) {
    Activation f;
    f.kind = Activation::Kind::Unary;
    f.op = op;
    return f;
  };
  Activation relu6;
  relu6.kind = Activation::Kind::ClampAffine;
  relu6.lo = 0.f, relu6.hi = 6.f;
  Activation hard_sigmoid = relu6;
  hard_sigmoid.a = 1.f / 6, hard_sigmoid.b = 0.5f, hard_sigmoid.hi = 1.f;
  Activation silu;
  silu.kind = Activation::Kind::Silu;
  return {{"sigmoid", unary(kernels::UnaryOp::Sigmoid)},
          {"hard_swish", unary(kernels::UnaryOp::HardSwish)},
          {"gelu", unary(kernels::UnaryOp::Gelu)},
          {"relu6", relu6},
          {"hard_sigmoid", hard_sigmoid},
          {"silu", silu}};
}

// Each kind's gradient kernel against central differences of its forward kernel, at
// points away from the kinks (where a difference quotient straddles two pieces).
TEST(Blocked, ActivationGradientsMatchFiniteDifferences) {
  std::vector<float> x;
  for (float v = -8.f; v <= 8.f; v += 0.37f) {
    const bool kink = std::fabs(v) < 0.02f || std::fabs(std::fabs(v) - 3.f) < 0.02f ||
                      std::fabs(v - 6.f) < 0.02f;
    if (!kink) x.push_back(v);
  }
  const int64_t n = int64_t(x.size());
  const float h = 1e-2f;
  std::vector<float> up(x), down(x), ones(n, 1.f);
  for (int64_t i = 0; i < n; ++i) up[i] += h, down[i] -= h;
  for (const auto& [name, f] : activation_kinds()) {
    SCOPED_TRACE(name);
    std::vector<float> y(n), yu(n), yd(n), dx(n);
    kc::activation(f, x.data(), y.data(), n);
    kc::activation(f, up.data(), yu.data(), n);
    kc::activation(f, down.data(), yd.data(), n);
    kc::activation_backward(f, x.data(), y.data(), ones.data(), dx.data(), n);
    int moving = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double fd = (double(yu[i]) - yd[i]) / (double(up[i]) - down[i]);
      EXPECT_NEAR(dx[i], fd, 2e-3 + 2e-3 * std::fabs(fd)) << "x = " << x[i];
      moving += std::fabs(dx[i]) > 1e-3f;
    }
    EXPECT_GT(moving, n / 4);  // not a kind whose gradient is zero almost everywhere
  }
}

// The channel scale on plain and blocked maps: y = x * gate[n, c], dx = dy * gate[n, c],
// dgate[n, c] = the map's sum of dy * x (in double here; the kernel's own order differs).
TEST(Blocked, ChannelScaleBothWays) {
  for (int64_t block : {1, 16}) {
    SCOPED_TRACE("block " + std::to_string(block));
    const ActShape s{3, 32, 5, 7, block};
    const std::vector<float> x = testing::random_values(s.numel(), 5),
                             dy = testing::random_values(s.numel(), 6),
                             gate = testing::random_values(s.n * s.c, 7, 0.f, 1.f);
    std::vector<float> y(s.numel()), dx(s.numel()), dgate(s.n * s.c);
    kc::channel_scale(s, x.data(), gate.data(), y.data());
    kc::channel_scale_backward(s, x.data(), gate.data(), dy.data(), dx.data(), dgate.data());
    const int64_t plane = s.h * s.w;
    std::vector<double> want_dgate(size_t(s.n * s.c), 0.0);
    for (int64_t e = 0; e < s.numel(); ++e) {
      const int64_t c = (e / (plane * block)) % (s.c / block) * block + e % block;
      const int64_t g = e / (s.c * plane) * s.c + c;
      ASSERT_EQ(y[e], x[e] * gate[g]);
      ASSERT_EQ(dx[e], dy[e] * gate[g]);
      want_dgate[size_t(g)] += double(dy[e] * x[e]);
    }
    for (int64_t g = 0; g < s.n * s.c; ++g) EXPECT_NEAR(dgate[g], want_dgate[size_t(g)], 1e-5);
  }
}

TEST(BlockedCuda, ActivationsAndChannelScaleMatchTheCpu) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  const int64_t n = 20011;
  const std::vector<float> x = random_values(n, 8, -8.f, 8.f), dy = random_values(n, 9);
  for (const auto& [name, f] : activation_kinds()) {
    SCOPED_TRACE(name);
    std::vector<float> y(n), dx(n);
    kc::activation(f, x.data(), y.data(), n);
    kc::activation_backward(f, x.data(), y.data(), dy.data(), dx.data(), n);
    const Tensor gx = device(x), gdy = device(dy), cpu_y = device(y);
    Tensor gy = device(std::vector<float>(n, 7.f)), gdx = device(std::vector<float>(n, 7.f));
    kg::activation(f, gx.data(), gy.data(), n, stream());
    kg::activation_backward(f, gx.data(), cpu_y.data(), gdy.data(), gdx.data(), n, stream());
    const auto fwd = testing::compare_values(y, host(gy), 1e-6, 1e-5);
    EXPECT_TRUE(fwd.ok) << fwd.message;
    const auto bwd = testing::compare_values(dx, host(gdx), 1e-6, 1e-5);
    EXPECT_TRUE(bwd.ok) << bwd.message;
  }
  const ActShape s{3, 48, 9, 11, 1};
  const std::vector<float> mx = random_values(s.numel(), 10), mdy = random_values(s.numel(), 11),
                           gate = random_values(s.n * s.c, 12, 0.f, 1.f);
  std::vector<float> y(s.numel()), dx(s.numel()), dgate(s.n * s.c);
  kc::channel_scale(s, mx.data(), gate.data(), y.data());
  kc::channel_scale_backward(s, mx.data(), gate.data(), mdy.data(), dx.data(), dgate.data());
  const Tensor gx = device(mx), gdy = device(mdy), ggate = device(gate);
  Tensor gy = device(std::vector<float>(s.numel(), 7.f)),
         gdx = device(std::vector<float>(s.numel(), 7.f)),
         gdgate = device(std::vector<float>(s.n * s.c, 7.f));
  kg::channel_scale(s, gx.data(), ggate.data(), gy.data(), stream());
  kg::channel_scale_backward(s, gx.data(), ggate.data(), gdy.data(), gdx.data(), gdgate.data(),
                             stream());
  EXPECT_EQ(host(gy), y);  // one product each: the same bits
  EXPECT_EQ(host(gdx), dx);
  const auto sums = testing::compare_values(dgate, host(gdgate), 1e-6, 1e-6);
  EXPECT_TRUE(sums.ok) << sums.message;
#endif
}

TEST(BlockedCuda, BiasReluRowsMatchesTheCpu) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  const int64_t rows = 37, cols = 53;
  const std::vector<float> y0 = random_values(rows * cols, 5), bias = random_values(cols, 6);
  for (bool with_bias : {false, true})
    for (bool relu : {false, true}) {
      SCOPED_TRACE(std::string(with_bias ? "bias" : "no bias") + (relu ? ", relu" : ""));
      std::vector<float> want = y0;
      kc::bias_relu_rows(want.data(), with_bias ? bias.data() : nullptr, rows, cols, relu);
      Tensor got = device(y0);
      const Tensor gbias = device(bias);
      kg::bias_relu_rows(got.data(), with_bias ? gbias.data() : nullptr, rows, cols, relu,
                         stream());
      EXPECT_EQ(host(got), want);
    }
#endif
}

TEST(BlockedCuda, PoolingMatchesTheCpuBothWays) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  const ActShape s{2, 3, 9, 11, 1};
  // Overlapping windows with padding: an input feeds up to four outputs.
  const int64_t oh = kernels::pool_out_size(s.h, 3, 2, 1),
                ow = kernels::pool_out_size(s.w, 3, 2, 1);
  const kernels::PoolGeometry g{s.h, s.w, oh, ow, 3, 2, 1};
  const ActShape o{s.n, s.c, g.oh, g.ow, 1};
  const std::vector<float> x = random_values(s.numel(), 7), dy = random_values(o.numel(), 8);
  std::vector<float> y(o.numel()), dx(s.numel());
  std::vector<int32_t> argmax(o.numel());
  kc::max_pool(s, g, x.data(), y.data(), argmax.data());
  kc::max_pool_backward(s, g, x.data(), y.data(), argmax.data(), dy.data(), dx.data());
  const Tensor gx = device(x), gdy = device(dy);
  Tensor gy = device(std::vector<float>(o.numel(), 7.f));
  Tensor gdx = device(std::vector<float>(s.numel(), 7.f));
  Tensor gargmax = Tensor::empty({o.numel()}, Device::cuda(), DType::I32);
  kg::max_pool(s, g, gx.data(), gy.data(), gargmax.data_i32(), stream());
  kg::max_pool_backward(s, g, gx.data(), gy.data(), gargmax.data_i32(), gdy.data(), gdx.data(),
                        stream());
  EXPECT_EQ(host(gy), y);
  EXPECT_EQ(gargmax.to_vector_i32(), argmax);
  EXPECT_EQ(host(gdx), dx);

  const std::vector<float> dmean = random_values(s.n * s.c, 9);
  std::vector<float> mean(s.n * s.c), dspread(s.numel());
  kc::global_avg_pool(s, x.data(), mean.data());
  kc::global_avg_pool_backward(s, dmean.data(), dspread.data());
  Tensor gmean = device(std::vector<float>(s.n * s.c, 7.f));
  Tensor gspread = device(std::vector<float>(s.numel(), 7.f));
  const Tensor gdmean = device(dmean);
  kg::global_avg_pool(s, gx.data(), gmean.data(), stream());
  kg::global_avg_pool_backward(s, gdmean.data(), gspread.data(), stream());
  // The GPU sums a map in double, the CPU in float.
  const auto avg = testing::compare_values(mean, host(gmean), 1e-5, 1e-5);
  EXPECT_TRUE(avg.ok) << avg.message;
  EXPECT_EQ(host(gspread), dspread);

  // Average pools over windows (the frozen graph's avg_pool step): the same window sums,
  // divisors and gradient order as the CPU twin, in floor and ceil mode, counting the
  // padding or not, the GPU's output and gradient buffers starting dirty.
  for (bool ceil : {false, true})
    for (bool include_pad : {true, false}) {
      SCOPED_TRACE(std::string(ceil ? "ceil" : "floor") + (include_pad ? ", padding counted" : ""));
      const kernels::PoolGeometry a{s.h, s.w, kernels::pool_out_size(s.h, 3, 2, 1, ceil),
                                    kernels::pool_out_size(s.w, 3, 2, 1, ceil), 3, 2, 1};
      const ActShape ao{s.n, s.c, a.oh, a.ow, 1};
      const std::vector<float> ady = random_values(ao.numel(), 10);
      std::vector<float> ay(ao.numel()), adx(s.numel());
      kc::avg_pool(s, a, include_pad, x.data(), ay.data());
      kc::avg_pool_backward(s, a, include_pad, ady.data(), adx.data());
      Tensor gay = device(std::vector<float>(ao.numel(), 7.f));
      Tensor gadx = device(std::vector<float>(s.numel(), 7.f));
      const Tensor gady = device(ady);
      kg::avg_pool(s, a, include_pad, gx.data(), gay.data(), stream());
      kg::avg_pool_backward(s, a, include_pad, gady.data(), gadx.data(), stream());
      EXPECT_EQ(host(gay), ay);
      EXPECT_EQ(host(gadx), adx);
    }

  // Channel-blocked maps are the CPU's alone.
  const ActShape blocked{1, 16, 4, 4, 16};
  EXPECT_THROW(kg::global_avg_pool(blocked, gx.data(), gmean.data(), stream()),
               std::invalid_argument);
#endif
}

}  // namespace
}  // namespace ipg
