// bench_kernels: the machine's ceilings and the engine's ops, on the CPU and on CUDA.
//   roofline_*      oneDNN/cuBLAS SGEMM, STREAM copy/triad, device copy (the peaks)
//   add, relu, sum  memory-bound elementwise ops and reduction (bytes/s)
//   matmul, linear  GEMM through the engine, at square and MLP shapes (FLOP/s)
//   layer_norm      a ViT's LayerNorm (100 images of 65 tokens, width 192), forward and
//                   backward to the input: the one op (ops::layer_norm) against the seven
//                   engine ops of its written-out form (layer_norm_written)
//   mlp_*           an MLP 784-512-256-10 at batch 1, 100, 256: forward, forward +
//                   backward to the input with frozen weights (the boundary-search
//                   iteration), and a training step; bench/compare_torch.py runs the same
//                   in PyTorch, with the same weights (hashed_uniform)
//   conv2d_*        ResNet20's convolutions at batch 100, when engine/ops/conv.h exists
//   fused_conv_forward  (CUDA) the same convolutions as a frozen network runs them, with
//                   bias, ReLU and (where shapes allow) the residual fused: engine=legacy
//                   (cudnnConvolutionBiasActivationForward) against engine=graph (cuDNN's
//                   graph API, kernels/cuda/cudnn_graph_conv.h); the label names the
//                   algorithm or engine, or why the graph API has none
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bench/common.h"
#include "bench/roofline.h"
#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#if __has_include("engine/ops/loss.h")
#include "engine/ops/loss.h"
#define IPG_BENCH_HAS_LOSS 1
#endif
#if __has_include("engine/optim.h")
#include "engine/optim.h"
#define IPG_BENCH_HAS_OPTIM 1
#endif
#if __has_include("engine/ops/conv.h")
#include "engine/ops/conv.h"
#define IPG_BENCH_HAS_CONV 1
#endif
#if IPG_HAS_CUDA
#include "kernels/cuda/check.h"
#include "kernels/cuda/fused_conv.h"
#include "kernels/cuda/runtime.h"
#endif

namespace ipg::bench {
namespace {

std::string num(int64_t v) { return std::to_string(v); }

// ---------------------------------------------------------------- roofline

void roofline_cases() {
  for (Device d : {Device::cpu(), Device::cuda(0)}) {
    const unsigned mask = d.is_cpu() ? kCpu : kCuda;
    const int64_t n = roofline_sgemm_size(d, quick());
    const int64_t m = roofline_stream_size(d, quick());
    add_case(
        "roofline_sgemm", "n=" + num(n), [n](Device dev) { return roofline_sgemm(dev, n); }, mask);
    add_case(
        "roofline_copy", "n=" + num(m), [m](Device dev) { return roofline_copy(dev, m); }, mask);
  }
  const int64_t m = roofline_stream_size(Device::cpu(), quick());
  add_case(
      "roofline_triad", "n=" + num(m), [m](Device d) { return roofline_triad(d, m); }, kCpu);
}

// ---------------------------------------------------------------- elementwise, reduce

std::vector<int64_t> vector_sizes() {
  // 1M floats (4 MiB) stays in a large cache; 16M (64 MiB) streams from memory.
  if (quick()) return {int64_t{1} << 16};
  return {int64_t{1} << 20, int64_t{1} << 24};
}

void elementwise_cases() {
  for (int64_t n : vector_sizes()) {
    add_case("add", "n=" + num(n), [n](Device d) {
      const Tensor a = hashed_uniform({n}, 1, -1.f, 1.f, d);
      const Tensor b = hashed_uniform({n}, 2, -1.f, 1.f, d);
      Prepared p;
      p.work.flops = double(n);
      p.work.bytes = 12.0 * n;
      p.run = [a, b]() { keep(ops::add(a, b)); };
      return p;
    });
    add_case("relu", "n=" + num(n), [n](Device d) {
      const Tensor x = hashed_uniform({n}, 3, -1.f, 1.f, d);
      Prepared p;
      p.work.bytes = 8.0 * n;
      p.run = [x]() { keep(ops::relu(x)); };
      return p;
    });
    add_case("sum", "n=" + num(n), [n](Device d) {
      const Tensor x = hashed_uniform({n}, 4, -1.f, 1.f, d);
      Prepared p;
      p.work.flops = double(n);
      p.work.bytes = 4.0 * n;
      p.run = [x]() { keep(ops::sum(x)); };
      return p;
    });
  }
}

// ---------------------------------------------------------------- matmul, linear

void linalg_cases() {
  const std::vector<int64_t> squares =
      quick() ? std::vector<int64_t>{128} : std::vector<int64_t>{256, 1024};
  for (int64_t n : squares) {
    add_case("matmul", "m=" + num(n) + ",k=" + num(n) + ",n=" + num(n), [n](Device d) {
      const Tensor a = hashed_uniform({n, n}, 5, -1.f, 1.f, d);
      const Tensor b = hashed_uniform({n, n}, 6, -1.f, 1.f, d);
      Prepared p;
      p.work.flops = 2.0 * n * n * n;
      p.work.bytes = 12.0 * n * n;
      p.run = [a, b]() { keep(ops::matmul(a, b)); };
      return p;
    });
  }
  // The MLP's first layer, the widest (784 -> 512).
  const std::vector<int64_t> batches =
      quick() ? std::vector<int64_t>{1, 100} : std::vector<int64_t>{1, 100, 256};
  for (int64_t b : batches) {
    add_case("linear", "b=" + num(b) + ",in=784,out=512", [b](Device d) {
      const Tensor x = hashed_uniform({b, 784}, 1, 0.f, 1.f, d);
      const Tensor w = hashed_uniform({512, 784}, 100, -0.0357f, 0.0357f, d);
      const Tensor bias = hashed_uniform({512}, 200, -0.0357f, 0.0357f, d);
      Prepared p;
      p.work.flops = 2.0 * b * 784 * 512 + double(b) * 512;
      p.work.bytes = 4.0 * (b * 784 + 512 * 784 + 512 + b * 512);
      p.run = [x, w, bias]() { keep(ops::linear(x, w, bias)); };
      return p;
    });
  }
}

// ---------------------------------------------------------------- layer norm

// The written-out form torch.onnx exports below opset 17, as the engine ran it before the
// reader fused it (models/onnx_fuse.cpp).
Tensor layer_norm_written(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  const int last = int(x.ndim()) - 1;
  const Tensor d = ops::sub(x, ops::mean(x, last, true));
  const Tensor sd = ops::sqrt(ops::add_scalar(ops::mean(ops::square(d), last, true), eps));
  return ops::add(ops::mul(ops::div(d, sd), gamma), beta);
}

void layer_norm_cases() {
  const int64_t rows = quick() ? 650 : 6500, cols = 192;
  for (bool fused : {true, false})
    add_case(fused ? "layer_norm" : "layer_norm_written", "rows=" + num(rows) + ",cols=" + num(cols),
             [=](Device d) {
               Tensor x = hashed_uniform({rows, cols}, 7, -1.f, 3.f, d);
               x.set_requires_grad(true);
               const Tensor gamma = hashed_uniform({cols}, 8, 0.5f, 1.5f, d);
               const Tensor beta = hashed_uniform({cols}, 9, -1.f, 1.f, d);
               const Tensor r = hashed_uniform({rows, cols}, 10, -1.f, 1.f, d);
               Prepared p;
               // The fused op's traffic: x read twice and y written, then x, dy read and
               // dx written.
               p.work.bytes = 4.0 * rows * cols * 6;
               p.run = [=]() mutable {
                 x.zero_grad();
                 const Tensor y = fused ? ops::layer_norm(x, gamma, beta, 1e-6f)
                                        : layer_norm_written(x, gamma, beta, 1e-6f);
                 y.backward(r);
                 keep(x.grad());
               };
               return p;
             });
}

// ---------------------------------------------------------------- MLP

// 784-512-256-10 with ReLU, weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from
// hashed_uniform with seeds 100+l and 200+l; inputs U(0,1) with seed 1; labels i % 10.
// bench/compare_torch.py builds the identical network.
constexpr int64_t kMlpDims[] = {784, 512, 256, 10};
constexpr int kMlpLayers = 3;

struct Mlp {
  std::vector<Tensor> weights, biases;
  int64_t parameters = 0;
  double flops_per_image = 0;  // forward GEMMs: 2 * in * out per layer
};

Mlp make_mlp(Device d, bool trainable) {
  Mlp m;
  for (int l = 0; l < kMlpLayers; ++l) {
    const int64_t in = kMlpDims[l], out = kMlpDims[l + 1];
    const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in)));
    m.weights.push_back(hashed_uniform({out, in}, 100 + l, -s, s, d));
    m.biases.push_back(hashed_uniform({out}, 200 + l, -s, s, d));
    m.weights.back().set_requires_grad(trainable);
    m.biases.back().set_requires_grad(trainable);
    m.parameters += out * in + out;
    m.flops_per_image += 2.0 * in * out;
  }
  return m;
}

Tensor mlp_logits(const Mlp& m, const Tensor& x) {
  Tensor h = x;
  for (int l = 0; l < kMlpLayers; ++l) {
    h = ops::linear(h, m.weights[l], m.biases[l]);
    if (l + 1 < kMlpLayers) h = ops::relu(h);
  }
  return h;
}

Tensor mlp_labels(int64_t b, Device d) {
  std::vector<int32_t> y(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) y[i] = static_cast<int32_t>(i % 10);
  return Tensor::from_vector_i32(y, {b}, d);
}

// The scalar the backward passes start from: softmax cross-entropy against labels i % 10
// once engine/ops/loss.h exists, the mean of the logits before (compare_torch.py reads
// which one from the JSON context).
Tensor mlp_loss(const Tensor& logits, const Tensor& labels) {
#if IPG_BENCH_HAS_LOSS
  return ops::cross_entropy(logits, labels);
#else
  (void)labels;
  return ops::mean(logits);
#endif
}

void mlp_cases() {
#if IPG_BENCH_HAS_LOSS
  benchmark::AddCustomContext("mlp_loss", "cross_entropy");
#else
  benchmark::AddCustomContext("mlp_loss", "mean");
#endif
  const std::vector<int64_t> batches =
      quick() ? std::vector<int64_t>{1, 100} : std::vector<int64_t>{1, 100, 256};
  for (int64_t b : batches) {
    const std::string params = "b=" + num(b);
    add_case("mlp_forward", params, [b](Device d) {
      const Mlp m = make_mlp(d, false);
      const Tensor x = hashed_uniform({b, 784}, 1, 0.f, 1.f, d);
      Prepared p;
      p.work.flops = m.flops_per_image * b;
      p.work.bytes = 4.0 * (m.parameters + b * (784 + 10));
      p.work.images = double(b);
      p.run = [m, x]() {
        NoGradGuard no_grad;
        keep(mlp_logits(m, x));
      };
      if (emit_labels()) {
        NoGradGuard no_grad;
        p.label = labels_of(mlp_logits(m, x));
      }
      return p;
    });
    add_case("mlp_input_grad", params, [b](Device d) {
      const Mlp m = make_mlp(d, false);  // frozen: no weight gradient is computed
      Tensor x = hashed_uniform({b, 784}, 1, 0.f, 1.f, d);
      x.set_requires_grad(true);
      const Tensor y = mlp_labels(b, d);
      Prepared p;
      p.work.flops = 2.0 * m.flops_per_image * b;  // forward + one GEMM per layer for dX
      p.work.bytes = 4.0 * (m.parameters + b * (2 * 784 + 10));
      p.work.images = double(b);
      p.run = [m, x, y]() mutable {
        x.zero_grad();
        mlp_loss(mlp_logits(m, x), y).backward();
        keep(x.grad());
      };
      return p;
    });
    add_case("mlp_train_step", params, [b](Device d) {
      const Mlp m = make_mlp(d, true);
      const Tensor x = hashed_uniform({b, 784}, 1, 0.f, 1.f, d);
      const Tensor y = mlp_labels(b, d);
      Prepared p;
      // Forward, dW for every layer, dX for all but the first (the input needs none).
      p.work.flops = 3.0 * m.flops_per_image * b - 2.0 * b * 784 * 512;
      // Parameters read by forward and backward, gradients written, then read and updated.
      p.work.bytes = 4.0 * (4 * m.parameters + b * (784 + 10));
      p.work.images = double(b);
      std::vector<Tensor> params = m.weights;
      params.insert(params.end(), m.biases.begin(), m.biases.end());
#if IPG_BENCH_HAS_OPTIM
      auto opt = std::make_shared<SGD>(params, 1e-3f);  // plain SGD, learning rate 1e-3
      p.run = [m, x, y, opt]() {
        mlp_loss(mlp_logits(m, x), y).backward();
        opt->step();
        opt->zero_grad();
      };
#else
      p.run = [m, x, y, params]() {
        mlp_loss(mlp_logits(m, x), y).backward();
        NoGradGuard no_grad;
        for (Tensor t : params) {
          ops::axpy_(t, t.grad(), -1e-3f);  // the SGD step, until engine/optim.h exists
          t.zero_grad();
        }
      };
#endif
      return p;
    });
  }
}

// ---------------------------------------------------------------- conv2d

#if IPG_BENCH_HAS_CONV
struct ConvShape {
  const char* name;
  int64_t in, out, hw, kernel;
  int stride, padding;
};

// ResNet20 on 32x32 CIFAR images: the stem, the 3x3 convolutions of each stage (the first
// of stages 2 and 3 strides by 2) and the 1x1 projection shortcuts.
constexpr ConvShape kResNet20Convs[] = {
    {"stem", 3, 16, 32, 3, 1, 1},     {"s1", 16, 16, 32, 3, 1, 1},
    {"s2_down", 16, 32, 32, 3, 2, 1}, {"s2", 32, 32, 16, 3, 1, 1},
    {"s2_proj", 16, 32, 32, 1, 2, 0}, {"s3_down", 32, 64, 16, 3, 2, 1},
    {"s3", 64, 64, 8, 3, 1, 1},       {"s3_proj", 32, 64, 16, 1, 2, 0},
};

void conv_cases() {
  const int64_t b = quick() ? 8 : 100;
  for (const ConvShape& c : kResNet20Convs) {
    const int64_t ohw = (c.hw + 2 * c.padding - c.kernel) / c.stride + 1;
    const double flops = 2.0 * b * c.out * ohw * ohw * c.in * c.kernel * c.kernel;
    const double bytes =
        4.0 * (b * c.in * c.hw * c.hw + c.out * c.in * c.kernel * c.kernel + b * c.out * ohw * ohw);
    const std::string params = std::string(c.name) + ",b=" + num(b) + ",c=" + num(c.in) + "x" +
                               num(c.out) + ",hw=" + num(c.hw) + ",k=" + num(c.kernel) +
                               ",s=" + num(c.stride);
    auto make = [b, c](Device d, bool input_grad, double f, double by) {
      const float s = static_cast<float>(1.0 / std::sqrt(double(c.in * c.kernel * c.kernel)));
      Tensor x = hashed_uniform({b, c.in, c.hw, c.hw}, 1, 0.f, 1.f, d);
      const Tensor w = hashed_uniform({c.out, c.in, c.kernel, c.kernel}, 100, -s, s, d);
      const Tensor bias = hashed_uniform({c.out}, 200, -s, s, d);
      Prepared p;
      p.work.flops = input_grad ? 2 * f : f;
      p.work.bytes = input_grad ? 2 * by : by;
      if (input_grad) {
        x.set_requires_grad(true);
        p.run = [x, w, bias, c]() mutable {
          x.zero_grad();
          ops::mean(ops::conv2d(x, w, bias, c.stride, c.padding)).backward();
          keep(x.grad());
        };
      } else {
        p.run = [x, w, bias, c]() {
          NoGradGuard no_grad;
          keep(ops::conv2d(x, w, bias, c.stride, c.padding));
        };
      }
      return p;
    };
    add_case("conv2d_forward", params,
             [make, flops, bytes](Device d) { return make(d, false, flops, bytes); });
    add_case("conv2d_input_grad", params,
             [make, flops, bytes](Device d) { return make(d, true, flops, bytes); });
  }
}
#endif

#if IPG_BENCH_HAS_CONV && IPG_HAS_CUDA
// The fused forward of each ResNet20 convolution, by cuDNN engine. A shape the graph API
// refuses is still registered: its label says why, and it times the legacy call (so the
// JSON has a row for every shape and engine).
void fused_conv_cases() {
  const int64_t b = quick() ? 8 : 100;
  for (const ConvShape& c : kResNet20Convs) {
    const bool residual = c.stride == 1 && c.in == c.out;
    const auto s = kernels::Conv2dShape::square_layer(b, c.in, c.hw, c.out, c.kernel, c.stride,
                                                       c.padding);
    const double flops = s.flops();
    for (const char* engine : {"legacy", "graph"}) {
      const std::string params = std::string(c.name) + ",b=" + num(b) + ",c=" + num(c.in) +
                                 "x" + num(c.out) + ",hw=" + num(c.hw) + ",k=" +
                                 num(c.kernel) + ",s=" + num(c.stride) +
                                 ",res=" + num(residual) + ",engine=" + engine;
      const bool graph = std::string(engine) == "graph";
      add_case(
          "fused_conv_forward", params,
          [s, c, residual, graph, flops](Device d) {
            const float sc = static_cast<float>(1.0 / std::sqrt(double(c.in * c.kernel * c.kernel)));
            const Tensor w = hashed_uniform({c.out, c.in, c.kernel, c.kernel}, 100, -sc, sc,
                                            Device::cpu());
            const Tensor bias = hashed_uniform({c.out}, 200, -sc, sc, Device::cpu());
            const cudaStream_t stream = kernels::cuda::stream(d.index);
            std::string why;
            std::shared_ptr<kernels::cuda::FusedConv> conv;
            if (graph) {
              try {
                conv = std::make_shared<kernels::cuda::FusedConv>(
                    s, w.data(), bias.data(), residual, true, stream,
                    kernels::cuda::ConvEngine::Graph);
              } catch (const CudaError& e) {
                why = std::string("no graph engine, legacy timed: ") + e.what();
              }
            }
            if (!conv)
              conv = std::make_shared<kernels::cuda::FusedConv>(s, w.data(), bias.data(),
                                                                residual, true, stream);
            const Tensor x = hashed_uniform({s.n, s.c_in, s.h, s.w}, 1, 0.f, 1.f, d);
            const Tensor r = hashed_uniform({s.n, s.c_out, s.h_out(), s.w_out()}, 2, -1.f, 1.f, d);
            Tensor y = Tensor::empty({s.n, s.c_out, s.h_out(), s.w_out()}, d);
            Tensor ws =
                Tensor::empty({int64_t(conv->workspace_bytes() / sizeof(float)) + 1}, d);
            Prepared p;
            p.work.flops = flops;
            p.label = why.empty() ? conv->forward_engine() : why;
            p.run = [conv, x, r, y, ws, residual]() mutable {
              conv->forward(x.data(), residual ? r.data() : nullptr, y.data(), ws.raw(),
                            ws.nbytes());
            };
            return p;
          },
          kCuda);
    }
  }
}
#endif

IPG_BENCH_CASES(roofline_cases);
IPG_BENCH_CASES(elementwise_cases);
IPG_BENCH_CASES(linalg_cases);
IPG_BENCH_CASES(layer_norm_cases);
IPG_BENCH_CASES(mlp_cases);
#if IPG_BENCH_HAS_CONV
IPG_BENCH_CASES(conv_cases);
#endif
#if IPG_BENCH_HAS_CONV && IPG_HAS_CUDA
IPG_BENCH_CASES(fused_conv_cases);
#endif

}  // namespace
}  // namespace ipg::bench

IPG_BENCH_MAIN()
