// SGD and Adam: per-parameter state on the parameter's device, one fused kernel per
// tensor per step (kernels/{cpu,cuda}/optimizer).
#include "engine/optim.h"

#include <stdexcept>
#include <string>

#include "engine/dispatch.h"
#include "kernels/common/optimizer_math.h"
#include "kernels/cpu/optimizer.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/optimizer.h"
#endif

namespace ipg {

namespace {

void check_params(const char* opt, const std::vector<Tensor>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    const std::string where = std::string(opt) + ": parameter " + std::to_string(i);
    if (!p.defined()) throw std::invalid_argument(where + " is an undefined tensor");
    if (p.dtype() != DType::F32) throw std::invalid_argument(where + " is not float32");
    // An op output would be overwritten under a graph that still refers to its value.
    if (!p.is_leaf()) throw std::invalid_argument(where + " is not a leaf tensor");
  }
}

void check_non_negative(const char* opt, const char* name, float value) {
  if (!(value >= 0.f))
    throw std::invalid_argument(std::string(opt) + ": invalid " + name + " " +
                                std::to_string(value) + " (must be >= 0)");
}

void check_beta(const char* name, float value) {
  if (!(value >= 0.f && value < 1.f))
    throw std::invalid_argument(std::string("Adam: invalid ") + name + " " + std::to_string(value) +
                                " (must be in [0, 1))");
}

}  // namespace

Optimizer::Optimizer(const char* name, std::vector<Tensor> params, float lr)
    : name_(name), params_(std::move(params)), lr_(lr) {
  check_params(name_, params_);
  check_non_negative(name_, "learning rate", lr);
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::set_lr(float lr) {
  check_non_negative(name_, "learning rate", lr);
  lr_ = lr;
}

SGD::SGD(std::vector<Tensor> params, float lr, float momentum, float weight_decay, bool nesterov)
    : Optimizer("SGD", std::move(params), lr),
      momentum_buffers_(params_.size()),
      momentum_(momentum),
      weight_decay_(weight_decay),
      nesterov_(nesterov) {
  check_non_negative("SGD", "momentum", momentum);
  check_non_negative("SGD", "weight decay", weight_decay);
  if (nesterov && momentum <= 0.f)
    throw std::invalid_argument("SGD: Nesterov momentum requires a momentum > 0");
}

void SGD::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor& buffer = momentum_buffers_[i];
    const bool first = !buffer.defined();
    // The first step copies the gradient into the buffer, so it needs no zeroing.
    if (momentum_ != 0.f && first) buffer = Tensor::empty(p.shape(), p.device());
    const kernels::SgdCoeffs c{lr_, momentum_, weight_decay_, nesterov_, first};
    float* buf = momentum_ != 0.f ? buffer.data() : nullptr;
    const int64_t n = p.numel();
    IPG_ON_DEVICE("SGD.step", p.device(), kernels::cpu::sgd_update(p.data(), g.data(), buf, n, c),
                  kernels::cuda::sgd_update(p.data(), g.data(), buf, n, c, stream));
  }
}

Adam::Adam(std::vector<Tensor> params, float lr, float beta1, float beta2, float eps,
           float weight_decay)
    : Optimizer("Adam", std::move(params), lr),
      exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()),
      steps_(params_.size(), 0),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay) {
  check_non_negative("Adam", "epsilon", eps);
  check_non_negative("Adam", "weight decay", weight_decay);
  check_beta("beta1", beta1);
  check_beta("beta2", beta2);
}

void Adam::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = Tensor::zeros(p.shape(), p.device());
      exp_avg_sq_[i] = Tensor::zeros(p.shape(), p.device());
    }
    const kernels::AdamCoeffs c =
        kernels::adam_coeffs(lr_, beta1_, beta2_, eps_, weight_decay_, ++steps_[i]);
    float* m = exp_avg_[i].data();
    float* v = exp_avg_sq_[i].data();
    const int64_t n = p.numel();
    IPG_ON_DEVICE("Adam.step", p.device(),
                  kernels::cpu::adam_update(p.data(), g.data(), m, v, n, c),
                  kernels::cuda::adam_update(p.data(), g.data(), m, v, n, c, stream));
  }
}

}  // namespace ipg
