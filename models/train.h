// Supervised training and evaluation of a Network on a Dataset: SGD with momentum and
// weight decay (or Adam), a cosine, step or constant learning-rate schedule, seeded
// shuffling, evaluation after each epoch. Same seed and thread count on the CPU -> the
// same weights bit for bit.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/data/dataset.h"
#include "models/network.h"
#include "models/prune.h"

namespace ipg {

struct TrainOptions {
  int epochs = 10;
  int batch = 128;
  std::string optimizer = "sgd";  // sgd | adam
  float lr = 0.05f;
  float momentum = 0.9f;
  float weight_decay = 5e-4f;
  std::string schedule = "cosine";  // cosine | step (x0.1 at 50% and 75%) | constant
  uint64_t seed = 0;
  Device device = Device::cpu();
  // Train only the last layer (FTLL / RTLL); everything else frozen.
  bool last_layer_only = false;
  // Random crop from a copy zero-padded by crop_pad, plus a horizontal flip when flip,
  // on the training device, drawn from the seed (ops::random_crop_flip).
  bool augment = false;
  int crop_pad = 4;
  bool flip = true;
  // Pruning masks (models/prune.h), applied before the first step and after every step.
  std::vector<ParamMask> masks;
  // Knowledge distillation (models/extraction.h): when defined, float32 [n, classes] on the
  // CPU, row i the teacher's soft labels of training image i, and the loss is
  // distillation_loss at `temperature` instead of the cross-entropy with the labels (which
  // then only count towards the reported train accuracy).
  Tensor soft_targets;
  float temperature = 1;
};

struct EpochReport {
  int epoch = 0;  // 1-based
  double lr = 0;
  double train_loss = 0;
  double train_accuracy = 0;
  double test_accuracy = -1;  // -1 when no test set was given
  double seconds = 0;
  double images_per_second = 0;
};

// Called after every epoch (progress output, checkpoints).
using EpochCallback = std::function<void(const EpochReport&)>;
// Called every few batches with (epoch, batches done, batches per epoch, running loss).
using BatchCallback = std::function<void(int, int64_t, int64_t, double)>;

std::vector<EpochReport> train(Network& net, const Dataset& train_set, const Dataset* test_set,
                               const TrainOptions& opt, const EpochCallback& on_epoch = {},
                               const BatchCallback& on_batch = {});

// Fraction of the dataset a classifier labels correctly, in batches on `device` (a
// network is moved there and evaluated in evaluation mode, no graph).
double evaluate(Classifier& model, const Dataset& data, Device device, int batch = 500);
// Labels of images [n, C, H, W] (CPU, [0,1]) by any classifier, `batch` at a time on
// `device`; networks in evaluation mode (their mode restored after).
std::vector<int32_t> predict(Classifier& model, const Tensor& images, Device device,
                             int batch = 500);

// Rows `index[0..n)` of a dataset's images/labels gathered into new CPU tensors.
void gather_batch(const Dataset& data, const std::vector<int64_t>& index, int64_t begin,
                  int64_t end, Tensor* images, Tensor* labels);

}  // namespace ipg
