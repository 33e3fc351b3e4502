// The training loop. Work per batch: gather rows (CPU), copy to the device, forward in
// training mode, fused softmax cross-entropy, backward, one fused optimizer kernel per
// parameter tensor (then pruning masks, if any). Optional augmentation runs on the device.
// The loss and predictions are read back every batch (a sync per batch: fine for training,
// not the pattern of the extraction loop).
#include "models/train.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include "engine/autograd.h"
#include "engine/ops/augment.h"
#include "engine/ops/index.h"
#include "engine/ops/loss.h"
#include "engine/optim.h"
#include "kernels/common/philox.h"
#include "models/extraction.h"

namespace ipg {

namespace {

constexpr int64_t kReportEvery = 50;

// Fisher-Yates driven by Philox: the permutation depends on (seed, epoch) only.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, int epoch) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const uint64_t stream = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch);
  for (int64_t i = n - 1; i > 0; --i) {
    const kernels::Philox4 r = kernels::philox4x32_10(stream, static_cast<uint64_t>(i));
    const uint64_t wide = (uint64_t(r.v[0]) << 32) | r.v[1];
    std::swap(idx[i], idx[wide % static_cast<uint64_t>(i + 1)]);
  }
  return idx;
}

double schedule_lr(const TrainOptions& o, int epoch0, int64_t step, int64_t steps_per_epoch) {
  const double t = (epoch0 + double(step) / double(steps_per_epoch)) / std::max(1, o.epochs);
  if (o.schedule == "constant") return o.lr;
  if (o.schedule == "step") return o.lr * (t >= 0.75 ? 0.01 : t >= 0.5 ? 0.1 : 1.0);
  if (o.schedule == "cosine") return o.lr * 0.5 * (1.0 + std::cos(M_PI * t));
  throw std::invalid_argument("unknown schedule '" + o.schedule + "' (cosine, step, constant)");
}

// Rows index[begin..end) of a CPU float32 [n, k] tensor, as a new [end - begin, k] tensor.
Tensor gather_rows_of(const Tensor& t, const std::vector<int64_t>& index, int64_t begin,
                      int64_t end) {
  const int64_t k = t.dim(1);
  Tensor out = Tensor::empty({end - begin, k});
  for (int64_t i = begin; i < end; ++i)
    std::memcpy(out.data() + (i - begin) * k, t.data() + index[i] * k, sizeof(float) * k);
  return out;
}

}  // namespace

void gather_batch(const Dataset& data, const std::vector<int64_t>& index, int64_t begin,
                  int64_t end, Tensor* images, Tensor* labels) {
  Shape s = data.images.shape();
  const int64_t row = data.images.numel() / s[0];
  s[0] = end - begin;
  *images = Tensor::empty(s);
  *labels = Tensor::empty({end - begin}, Device::cpu(), DType::I32);
  const float* src = data.images.data();
  const int32_t* lsrc = data.labels.data_i32();
  float* dst = images->data();
  int32_t* ldst = labels->data_i32();
  for (int64_t i = begin; i < end; ++i) {
    std::memcpy(dst + (i - begin) * row, src + index[i] * row, sizeof(float) * row);
    ldst[i - begin] = lsrc[index[i]];
  }
}

std::vector<int32_t> predict(Classifier& model, const Tensor& images, Device device, int batch) {
  if (batch < 1) throw std::invalid_argument("predict: batch must be >= 1");
  // Networks predict in evaluation mode (batch-norm running statistics) and go back to
  // the mode they were in; label-only models have no mode.
  Network* net = dynamic_cast<Network*>(&model);
  const bool was_training = net && net->is_training();
  if (net) {
    net->to(device);
    net->eval();
  }
  std::vector<int32_t> out;
  const int64_t n = images.dim(0);
  out.reserve(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t e = std::min(n, b + batch);
    const std::vector<int32_t> pred =
        model.labels(images.narrow0(b, e - b).to(device)).to_vector_i32();
    out.insert(out.end(), pred.begin(), pred.end());
  }
  if (net) net->train(was_training);
  return out;
}

double evaluate(Classifier& model, const Dataset& data, Device device, int batch) {
  const int64_t n = data.size();
  if (n == 0) return 0.0;
  // Labels the model can never give would only lower the accuracy: a wrong dataset.
  if (data.num_classes > model.num_classes())
    throw std::invalid_argument("evaluate: dataset " + data.name + " has " +
                                std::to_string(data.num_classes) + " classes, the model " +
                                std::to_string(model.num_classes()));
  const std::vector<int32_t> pred = predict(model, data.images, device, batch);
  const int32_t* y = data.labels.data_i32();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += pred[i] == y[i];
  return double(correct) / double(n);
}

std::vector<EpochReport> train(Network& net, const Dataset& train_set, const Dataset* test_set,
                               const TrainOptions& opt, const EpochCallback& on_epoch,
                               const BatchCallback& on_batch) {
  if (opt.epochs < 1 || opt.batch < 1)
    throw std::invalid_argument("train: epochs and batch must be >= 1");
  if (train_set.size() == 0) throw std::invalid_argument("train: empty training set");
  if (opt.soft_targets.defined() &&
      opt.soft_targets.shape() != Shape{train_set.size(), int64_t{net.num_classes()}})
    throw std::invalid_argument("train: soft targets " + shape_str(opt.soft_targets.shape()) +
                                " do not match " + std::to_string(train_set.size()) +
                                " images of " + std::to_string(net.num_classes()) + " classes");
  if (train_set.num_classes > net.num_classes())
    throw std::invalid_argument("train: dataset has " + std::to_string(train_set.num_classes) +
                                " classes, the network " + std::to_string(net.num_classes()));
  net.to(opt.device);
  net.set_requires_grad(!opt.last_layer_only);
  std::vector<Tensor> params;
  if (opt.last_layer_only) {
    for (auto& [name, t] : net.last_layer_parameters()) {
      t->set_requires_grad(true);
      params.push_back(*t);
    }
  } else {
    params = net.parameters();
  }
  std::unique_ptr<Optimizer> optimizer;
  if (opt.optimizer == "sgd")
    optimizer = std::make_unique<SGD>(params, opt.lr, opt.momentum, opt.weight_decay);
  else if (opt.optimizer == "adam")
    optimizer = std::make_unique<Adam>(params, opt.lr, 0.9f, 0.999f, 1e-8f, opt.weight_decay);
  else
    throw std::invalid_argument("unknown optimizer '" + opt.optimizer + "' (sgd, adam)");

  std::vector<ParamMask> masks = opt.masks;
  apply_masks(net, masks);
  // The augmentation stream: counter = images drawn so far, so every image of every epoch
  // has its own draw and a resumed or re-run training sees the same ones.
  const uint64_t augment_seed = opt.seed * 0x9E3779B97F4A7C15ull ^ 0xA5A5A5A5D1B54A32ull;

  const int64_t n = train_set.size();
  const int64_t steps = (n + opt.batch - 1) / opt.batch;
  std::vector<EpochReport> reports;
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    net.train(true);
    const std::vector<int64_t> order = permutation(n, opt.seed, epoch);
    double loss_sum = 0;
    int64_t correct = 0;
    EpochReport rep;
    rep.epoch = epoch + 1;
    for (int64_t s = 0; s < steps; ++s) {
      const double lr = schedule_lr(opt, epoch, s, steps);
      optimizer->set_lr(static_cast<float>(lr));
      if (s == 0) rep.lr = lr;
      Tensor xb, yb;
      gather_batch(train_set, order, s * opt.batch, std::min(n, (s + 1) * opt.batch), &xb, &yb);
      Tensor x = xb.to(opt.device);
      const Tensor y = yb.to(opt.device);
      if (opt.augment)
        x = ops::random_crop_flip(
            x, opt.crop_pad, opt.flip, augment_seed,
            static_cast<uint64_t>(epoch) * uint64_t(n) + uint64_t(s * opt.batch));
      const Tensor logits = net.logits(x);
      const Tensor loss =
          opt.soft_targets.defined()
              ? distillation_loss(logits,
                                  gather_rows_of(opt.soft_targets, order, s * opt.batch,
                                                 std::min(n, (s + 1) * opt.batch))
                                      .to(opt.device),
                                  opt.temperature)
              : ops::cross_entropy(logits, y);
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      apply_masks(net, masks);
      // Host reads: the loss and the predictions, which also bound the queued work.
      const double l = loss.item();
      if (!std::isfinite(l))
        throw std::runtime_error(std::string("train: loss became ") +
                                 (std::isnan(l) ? "NaN" : l > 0 ? "infinite" : "-infinite") +
                                 " at epoch " + std::to_string(epoch + 1) + ", step " +
                                 std::to_string(s + 1) + " (learning rate too high?)");
      loss_sum += l * double(yb.numel());
      const std::vector<int32_t> pred = ops::argmax(logits.detach()).to_vector_i32();
      for (int64_t i = 0; i < yb.numel(); ++i) correct += pred[i] == yb.data_i32()[i];
      if (on_batch && ((s + 1) % kReportEvery == 0 || s + 1 == steps))
        on_batch(epoch + 1, s + 1, steps, loss_sum / double(std::min(n, (s + 1) * opt.batch)));
    }
    rep.train_loss = loss_sum / double(n);
    rep.train_accuracy = double(correct) / double(n);
    if (test_set) rep.test_accuracy = evaluate(net, *test_set, opt.device);
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep.images_per_second = double(n) / rep.seconds;
    reports.push_back(rep);
    if (on_epoch) on_epoch(rep);
  }
  net.eval();
  net.set_requires_grad(true);
  return reports;
}

}  // namespace ipg
