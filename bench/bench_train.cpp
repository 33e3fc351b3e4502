// bench_train: one training step per architecture at batch 128, on the CPU and on CUDA.
//   model_train_step  training mode (batch statistics), forward, softmax cross-entropy to
//                     the targets i % 10, backward to every parameter, SGD step with
//                     momentum 0.9 and weight decay 5e-4 (lr 0.05: models/train.h's
//                     defaults), gradients dropped
// Architectures and FLOP counting as bench_models (bench/model_work.h): forward, dW of
// every layer and dX of every layer but the first (the images need no gradient), i.e.
// 3 x forward - first layer. The CPU skips a step above kCpuMaxFlopsPerTrainStep.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/common.h"
#include "bench/model_work.h"
#include "engine/ops/loss.h"
#include "engine/optim.h"

namespace ipg::bench {
namespace {

constexpr int64_t kClasses = 10;

void train_cases() {
  const int64_t b = quick() ? 8 : 128;
  for (const ArchSpec& a : bench_archs()) {
    const ModelWork w = model_work(a.arch, a.channels, a.side, kClasses);
    const double flops = (3 * w.forward_flops - w.first_layer_flops) * b;
    const std::string params = std::string("arch=") + a.arch + ",b=" + std::to_string(b) +
                               ",c=" + std::to_string(a.channels) + ",hw=" + std::to_string(a.side);
    unsigned devices = kAllDevices;
    if (flops > kCpuMaxFlopsPerTrainStep) {
      std::fprintf(stderr, "bench_train: model_train_step/cpu/%s skipped (%.0f GFLOP per step)\n",
                   params.c_str(), flops * 1e-9);
      devices = kCuda;
    }
    add_case(
        "model_train_step", params,
        [a, b, w, flops](Device d) {
          std::shared_ptr<Network> net = bench_network(a, kClasses);
          check_work(*net, w);
          net->to(d);
          net->train();
          net->set_requires_grad(true);
          const Tensor x = hashed_uniform({b, a.channels, a.side, a.side}, 1, 0.f, 1.f, d);
          std::vector<int32_t> labels(static_cast<size_t>(b));
          for (int64_t i = 0; i < b; ++i) labels[i] = static_cast<int32_t>(i % kClasses);
          const Tensor y = Tensor::from_vector_i32(labels, {b}, d);
          auto opt = std::make_shared<SGD>(net->parameters(), 0.05f, 0.9f, 5e-4f);
          Prepared p;
          p.work.flops = flops;
          // Weights read (forward, backward), gradients written and read, weights and
          // momentum read and written by the step; the images read once.
          p.work.bytes = 4.0 * 7 * w.weights + 4.0 * b * a.channels * a.side * a.side;
          p.work.images = double(b);
          p.run = [net, x, y, opt]() {
            ops::cross_entropy(net->logits(x), y).backward();
            opt->step();
            opt->zero_grad();
          };
          return p;
        },
        devices);
  }
}

IPG_BENCH_CASES(train_cases);

}  // namespace
}  // namespace ipg::bench

IPG_BENCH_MAIN()
