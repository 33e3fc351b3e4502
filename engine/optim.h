// Optimizers with PyTorch's semantics (torch.optim.SGD with dampening 0, torch.optim.Adam
// without amsgrad, weight decay as L2 added to the gradient). step() reads each
// parameter's .grad(), skipping parameters without one (their state and step count stay
// as they were), and updates parameters and state in place, outside the graph, with one
// fused kernel per tensor on the parameter's device.
#pragma once

#include <stdint.h>

#include <vector>

#include "engine/tensor.h"

namespace ipg {

// What every optimizer shares: its parameters, the learning rate, dropping gradients.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  // Drops every parameter's gradient (PyTorch's default set_to_none).
  void zero_grad();
  void set_lr(float lr);  // lr >= 0
  float lr() const { return lr_; }

 protected:
  // Checks the parameters (float32 leaves) and lr; `name` prefixes error messages.
  Optimizer(const char* name, std::vector<Tensor> params, float lr);
  const char* name_;
  std::vector<Tensor> params_;
  float lr_;
};

class SGD : public Optimizer {
 public:
  // params: float32 leaf tensors. lr, momentum, weight_decay >= 0; nesterov needs
  // momentum > 0 (std::invalid_argument otherwise).
  SGD(std::vector<Tensor> params, float lr, float momentum = 0.f, float weight_decay = 0.f,
      bool nesterov = false);
  void step() override;

 private:
  std::vector<Tensor> momentum_buffers_;  // undefined until the parameter's first step
  float momentum_;
  float weight_decay_;
  bool nesterov_;
};

class Adam : public Optimizer {
 public:
  // params: float32 leaf tensors. lr, eps, weight_decay >= 0; betas in [0, 1)
  // (std::invalid_argument otherwise).
  Adam(std::vector<Tensor> params, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
       float eps = 1e-8f, float weight_decay = 0.f);
  void step() override;

 private:
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // undefined until the parameter's first step
  std::vector<int64_t> steps_;                // per parameter, as PyTorch counts them
  float beta1_, beta2_, eps_;
  float weight_decay_;
};

}  // namespace ipg
