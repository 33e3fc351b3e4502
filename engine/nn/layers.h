// The layers the networks are built from. Initialization follows PyTorch's defaults
// (uniform in +-1/sqrt(fan_in) for weights and biases; BN gamma 1, beta 0), drawn from an
// explicit Generator so that a seed fixes every weight.
#pragma once

#include "engine/nn/module.h"
#include "engine/random.h"

namespace ipg::nn {

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen);
  Tensor forward(const Tensor& x);  // [n, in] -> [n, out]
  Tensor& weight;                   // [out, in]
  Tensor* bias = nullptr;           // [out] when present
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int kernel, int stride, int padding, bool bias, Generator& gen);
  Tensor forward(const Tensor& x);
  Tensor& weight;  // OIHW
  Tensor* bias = nullptr;
  int stride, padding;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  // Batch statistics (and running-stat update) in training mode, running stats in eval.
  Tensor forward(const Tensor& x);
  Tensor& weight;  // gamma
  Tensor& bias;    // beta
  Tensor& running_mean;
  Tensor& running_var;
  float eps, momentum;
};

}  // namespace ipg::nn
