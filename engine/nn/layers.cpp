// Layer construction and forward passes over engine/ops.
#include "engine/nn/layers.h"

#include <cmath>

#include "engine/ops/batchnorm.h"
#include "engine/ops/conv.h"
#include "engine/ops/linalg.h"

namespace ipg::nn {

namespace {
Tensor uniform_init(const Shape& shape, int64_t fan_in, Generator& gen) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
  return Tensor::uniform(shape, -bound, bound, gen);
}
}  // namespace

Linear::Linear(int64_t in, int64_t out, bool has_bias, Generator& gen)
    : weight(add_parameter("weight", uniform_init({out, in}, in, gen))) {
  if (has_bias) bias = &add_parameter("bias", uniform_init({out}, in, gen));
}

Tensor Linear::forward(const Tensor& x) { return ops::linear(x, weight, bias ? *bias : Tensor()); }

Conv2d::Conv2d(int64_t in, int64_t out, int kernel, int stride_, int padding_, bool has_bias,
               Generator& gen)
    : weight(add_parameter("weight",
                           uniform_init({out, in, kernel, kernel}, in * kernel * kernel, gen))),
      stride(stride_),
      padding(padding_) {
  if (has_bias) bias = &add_parameter("bias", uniform_init({out}, in * kernel * kernel, gen));
}

Tensor Conv2d::forward(const Tensor& x) {
  return ops::conv2d(x, weight, bias ? *bias : Tensor(), stride, padding);
}

BatchNorm2d::BatchNorm2d(int64_t channels, float eps_, float momentum_)
    : weight(add_parameter("weight", Tensor::ones({channels}))),
      bias(add_parameter("bias", Tensor::zeros({channels}))),
      running_mean(add_buffer("running_mean", Tensor::zeros({channels}))),
      running_var(add_buffer("running_var", Tensor::ones({channels}))),
      eps(eps_),
      momentum(momentum_) {}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return ops::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

}  // namespace ipg::nn
