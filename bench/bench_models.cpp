// bench_models: whole architectures at batch 1, 100 and 256, on the CPU and on CUDA.
//   model_forward     evaluation mode, no graph: inference as `ipguard eval` runs it
//   model_forward_fused  the same forward through the fused frozen graph
//   model_input_grad  the boundary-search iteration without the update, as the
//                     fingerprint loop runs it (models/frozen_network.h: the fused frozen
//                     graph, FrozenGraph on the CPU and FrozenGraphCuda on CUDA; the
//                     label says "fused", or why not): forward in evaluation mode, softmax
//                     cross-entropy to the targets i % classes, gradient back to the input
//   model_input_grad_autodiff  the same on the autodiff graph: weights frozen
//                     (requires_grad false), the input requires a gradient
//   model_boundary_step  one whole iteration of IPGuard's search: model_input_grad with
//                     the fused IPGuard loss, then the fused Adam step of the images
//   model_boundary_step_graph  the same iteration recorded once and replayed (a CUDA
//                     graph on CUDA), as the fingerprint loop runs it between checks
// Architectures (bench/model_work.h): lenet5, resnet20, wrn-22-4, vgg16 on 1x28x28 and
// resnet50 on 3x64x64, 10 classes. FLOP/s counts the convolution and linear
// multiply-adds walked from the layer shapes (checked against each network's weights);
// the input gradient is counted as twice the forward (one dX product per layer).
// On the CPU a configuration whose iteration exceeds kCpuMaxFlopsPerIteration is not
// registered (one line on stderr names it). Inputs are hashed_uniform(seed 1) in [0, 1];
// weights are seeded (or $IPG_BENCH_WEIGHTS) and can be written out for
// bench/compare_torch.py ($IPG_BENCH_MODELS_DIR).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/common.h"
#include "bench/model_work.h"
#include "engine/autograd.h"
#include "engine/ops/boundary.h"
#include "engine/ops/loss.h"
#include "engine/replay.h"
#include "models/frozen_network.h"

namespace ipg::bench {
namespace {

constexpr int64_t kClasses = 10;

std::string num(int64_t v) { return std::to_string(v); }

Tensor targets(int64_t b, Device d) {
  std::vector<int32_t> y(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) y[i] = static_cast<int32_t>(i % kClasses);
  return Tensor::from_vector_i32(y, {b}, d);
}

// d(mean cross-entropy)/d(logits): the loss kernel's part of the iteration.
Tensor cross_entropy_grad(const Tensor& logits, const Tensor& y) {
  Tensor z = logits.detach();
  z.set_requires_grad(true);
  ops::cross_entropy(z, y).backward();
  return z.grad();
}

// Which graph a frozen-network case timed: "fused", or the reason it runs autodiff.
std::string fused_label(const FrozenNetwork& f) {
  return f.fused() ? "fused" : "autodiff: " + f.why_unfused();
}

Work input_grad_work(const ModelWork& w, double fwd, double in_bytes, int64_t b) {
  Work work;
  work.flops = 2 * fwd;  // forward + dX of every layer
  work.bytes = 4.0 * w.weights + 2 * in_bytes + 4.0 * b * kClasses;
  work.images = double(b);
  return work;
}

std::vector<int64_t> batches() {
  return quick() ? std::vector<int64_t>{1, 10} : std::vector<int64_t>{1, 100, 256};
}

// CPU and CUDA, or CUDA alone when the CPU iteration would take too long.
unsigned devices_for(const std::string& name, double flops) {
  if (flops <= kCpuMaxFlopsPerIteration) return kAllDevices;
  std::fprintf(stderr, "bench_models: %s skipped on the CPU (%.0f GFLOP per iteration)\n",
               name.c_str(), flops * 1e-9);
  return kCuda;
}

// One batch of boundary search on device d, as bench_models' boundary cases run it: the
// frozen network, the images (hashed_uniform) with their Adam moments, sources i % classes
// and targets (i + 1) % classes, the loss buffers, and Adam's coefficients of step 1 as a
// one-row device table (the replayed case reads them there, as the loop's stretches do).
struct BoundarySearch {
  std::shared_ptr<Network> net;
  std::unique_ptr<FrozenNetwork> frozen;
  Tensor x, m, v, src, dst, loss, dz, table, step;
  int64_t t = 0;
  std::unique_ptr<Replay> replay;
};

std::shared_ptr<BoundarySearch> boundary_search(const ArchSpec& a, const ModelWork& w, int64_t b,
                                                Device d) {
  auto s = std::make_shared<BoundarySearch>();
  s->net = bench_network(a, kClasses);
  check_work(*s->net, w);
  s->net->to(d);
  const Shape in{b, a.channels, a.side, a.side};
  s->frozen = std::make_unique<FrozenNetwork>(*s->net, in);
  s->x = hashed_uniform(in, 1, 0.f, 1.f, d);
  s->m = Tensor::zeros(in, d);
  s->v = Tensor::zeros(in, d);
  std::vector<int32_t> src(static_cast<size_t>(b)), dst(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    src[i] = static_cast<int32_t>(i % kClasses);
    dst[i] = static_cast<int32_t>((i + 1) % kClasses);
  }
  s->src = Tensor::from_vector_i32(src, {b}, d);
  s->dst = Tensor::from_vector_i32(dst, {b}, d);
  s->loss = Tensor::empty({b}, d);
  s->dz = Tensor::empty({b, kClasses}, d);
  s->table = ops::adam_table(0.01f, 0.9f, 0.999f, 1e-8f, 0.f, 1, 1, d);
  s->step = Tensor::from_vector_i32({0}, {1}, d);
  return s;
}

// The fused IPGuard loss (k = 0.01) at the images, its gradient back to them.
Tensor boundary_gradient(BoundarySearch& s) {
  ops::boundary_loss(ops::BoundaryLoss::IPGuard, s.frozen->logits(s.x), s.src, s.dst, 0.01f,
                     Tensor(), s.loss, s.dz, nullptr);
  return s.frozen->input_grad(s.dz);
}

// model_boundary_step and model_boundary_step_graph of one architecture at batch b.
void add_boundary_step_cases(const ArchSpec& a, const ModelWork& w, int64_t b, unsigned devices) {
  const std::string params = std::string("arch=") + a.arch + ",b=" + num(b) +
                             ",c=" + num(a.channels) + ",hw=" + num(a.side);
  const double in_bytes = 4.0 * b * a.channels * a.side * a.side;
  const Work work = input_grad_work(w, w.forward_flops * b, in_bytes, b);
  // One whole iteration of boundary search at batch b: forward, the fused IPGuard loss,
  // backward to the input, the fused Adam step in [0,1] (lr 0.01). No row is frozen (no
  // `active` mask), so every iteration does the same work as PyTorch's twin.
  add_case(
      "model_boundary_step", params,
      [a, b, w, work](Device d) {
        std::shared_ptr<BoundarySearch> s = boundary_search(a, w, b, d);
        Prepared p;
        p.work = work;
        p.label = fused_label(*s->frozen);
        p.run = [s]() {
          const Tensor g = boundary_gradient(*s);
          ops::boundary_adam_step(
              s->x, g, s->m, s->v, Tensor(),
              kernels::adam_coeffs(0.01f, 0.9f, 0.999f, 1e-8f, 0.f, ++s->t), 0.f, 1.f);
          keep(s->x);
        };
        return p;
      },
      devices);
  // The same iteration recorded once and replayed (engine/replay.h: a CUDA graph on
  // CUDA; on the CPU the twin runs the recorded function again, so the case matches
  // model_boundary_step there): the fingerprint loop's stretches between two reads of
  // the flags, and the peer of PyTorch's CUDA-graph column, which captures one step.
  // One iteration per replay, so times compare per step. Adam's coefficients come from
  // the device table (boundary_adam_step_at), as in the loop; its step index is not
  // advanced, so every replay reads the table's one row (the loop's advance is one
  // single-thread kernel).
  add_case(
      "model_boundary_step_graph", params,
      [a, b, w, work](Device d) {
        std::shared_ptr<BoundarySearch> s = boundary_search(a, w, b, d);
        BoundarySearch* raw = s.get();
        auto iteration = [raw]() {
          const Tensor g = boundary_gradient(*raw);
          ops::boundary_adam_step_at(raw->x, g, raw->m, raw->v, Tensor(), raw->table, raw->step,
                                     0.f, 1.f);
        };
        iteration();  // first use: cuDNN and cuBLAS set up outside the recording
        synchronize(d);
        Prepared p;
        p.work = work;
        std::string why;
        if (!s->frozen->fused()) {
          p.label = fused_label(*s->frozen);
        } else {
          s->replay = std::make_unique<Replay>(d);
          if (s->replay->record(iteration, &why)) {
            p.label = "replayed";
          } else {
            p.label = "not recorded: " + why;
            s->replay.reset();
          }
        }
        p.run = [s, iteration]() {
          if (s->replay)
            s->replay->replay();
          else
            iteration();
          keep(s->x);
        };
        return p;
      },
      devices);
}

void model_cases() {
  benchmark::AddCustomContext("model_loss", "cross_entropy");
  for (const ArchSpec& a : bench_archs()) {
    const ModelWork w = model_work(a.arch, a.channels, a.side, kClasses);
    for (int64_t b : batches()) {
      const std::string params = std::string("arch=") + a.arch + ",b=" + num(b) +
                                 ",c=" + num(a.channels) + ",hw=" + num(a.side);
      const double in_bytes = 4.0 * b * a.channels * a.side * a.side;
      const double fwd = w.forward_flops * b;
      add_case(
          "model_forward", params,
          [a, b, w, fwd, in_bytes](Device d) {
            std::shared_ptr<Network> net = bench_network(a, kClasses);
            check_work(*net, w);
            net->to(d);
            net->eval();
            net->set_requires_grad(false);
            const Tensor x = hashed_uniform({b, a.channels, a.side, a.side}, 1, 0.f, 1.f, d);
            Prepared p;
            p.work.flops = fwd;
            p.work.bytes = 4.0 * w.weights + in_bytes + 4.0 * b * kClasses;
            p.work.images = double(b);
            p.run = [net, x]() {
              NoGradGuard no_grad;
              keep(net->logits(x));
            };
            if (emit_labels()) {
              NoGradGuard no_grad;
              p.label = labels_of(net->logits(x));
            }
            return p;
          },
          devices_for("model_forward/cpu/" + params, fwd));
      // The same forward through the fused frozen graph (FrozenNetwork::logits): what
      // inference could gain by running the fingerprint loop's plan.
      add_case(
          "model_forward_fused", params,
          [a, b, w, fwd, in_bytes](Device d) {
            std::shared_ptr<Network> net = bench_network(a, kClasses);
            check_work(*net, w);
            net->to(d);
            const Shape in{b, a.channels, a.side, a.side};
            auto frozen = std::make_shared<FrozenNetwork>(*net, in);
            const Tensor x = hashed_uniform(in, 1, 0.f, 1.f, d);
            Prepared p;
            p.work.flops = fwd;
            p.work.bytes = 4.0 * w.weights + in_bytes + 4.0 * b * kClasses;
            p.work.images = double(b);
            p.label = fused_label(*frozen);
            p.run = [net, frozen, x]() { keep(frozen->logits(x)); };
            return p;
          },
          devices_for("model_forward/cpu/" + params, fwd));
      add_case(
          "model_input_grad", params,
          [a, b, w, fwd, in_bytes](Device d) {
            std::shared_ptr<Network> net = bench_network(a, kClasses);
            check_work(*net, w);
            net->to(d);
            const Shape in{b, a.channels, a.side, a.side};
            auto frozen = std::make_shared<FrozenNetwork>(*net, in);  // evaluation, frozen
            const Tensor x = hashed_uniform(in, 1, 0.f, 1.f, d);
            const Tensor y = targets(b, d);
            Prepared p;
            p.work = input_grad_work(w, fwd, in_bytes, b);
            p.label = fused_label(*frozen);
            p.run = [net, frozen, x, y]() {
              keep(frozen->input_grad(cross_entropy_grad(frozen->logits(x), y)));
            };
            return p;
          },
          devices_for("model_input_grad/cpu/" + params, 2 * fwd));
      add_boundary_step_cases(a, w, b, devices_for("model_boundary_step/cpu/" + params, 2 * fwd));
      // The same iteration on the autodiff graph (what model_input_grad runs where no
      // fused graph exists): the fused graph's gain, on each device.
      add_case(
          "model_input_grad_autodiff", params,
          [a, b, w, fwd, in_bytes](Device d) {
            std::shared_ptr<Network> net = bench_network(a, kClasses);
            check_work(*net, w);
            net->to(d);
            net->eval();
            net->set_requires_grad(false);  // frozen: no weight gradient is computed
            Tensor x = hashed_uniform({b, a.channels, a.side, a.side}, 1, 0.f, 1.f, d);
            x.set_requires_grad(true);
            const Tensor y = targets(b, d);
            Prepared p;
            p.work = input_grad_work(w, fwd, in_bytes, b);
            p.run = [net, x, y]() mutable {
              x.zero_grad();
              ops::cross_entropy(net->logits(x), y).backward();
              keep(x.grad());
            };
            return p;
          },
          devices_for("model_input_grad_autodiff/cpu/" + params, 2 * fwd));
    }
  }
  // The curve: candidate-iterations per second (the images/s counter) of the
  // boundary step against batch size, 1 to 10,000, for LeNet-5 and ResNet20; the sizes
  // not above (10, 1,000, 10,000) here, on CUDA (the CPU's are a straight line: its
  // kernels are full at batch 100).
  if (quick()) return;
  for (const ArchSpec& a : bench_archs()) {
    if (std::string(a.arch) != "lenet5" && std::string(a.arch) != "resnet20") continue;
    const ModelWork w = model_work(a.arch, a.channels, a.side, kClasses);
    for (int64_t b : {10, 1000, 10000}) add_boundary_step_cases(a, w, b, kCuda);
  }
}

IPG_BENCH_CASES(model_cases);

}  // namespace
}  // namespace ipg::bench

IPG_BENCH_MAIN()
