// Modules: named parameters, buffers and submodules, so that a network can be moved to
// a device, switched between training and evaluation, frozen, saved and loaded by path
// ("stage1/block0/conv1/weight"). Parameters are leaf tensors with requires_grad set.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ipg::nn {

using NamedTensor = std::pair<std::string, Tensor*>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter / buffer of this module and its submodules, depth first in
  // registration order, with '/'-joined paths.
  std::vector<NamedTensor> named_parameters();
  std::vector<NamedTensor> named_buffers();
  std::vector<Tensor> parameters();
  int64_t num_parameters();

  // Training mode (batch statistics, dropout) or evaluation mode, recursively.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves parameters and buffers (values kept; gradients dropped).
  void to(Device device);
  Device device();
  // Marks every parameter as needing a gradient or not (frozen: the fingerprint loop and
  // last-layer fine-tuning).
  void set_requires_grad(bool on);
  void zero_grad();

 protected:
  Tensor& add_parameter(const std::string& name, Tensor value);
  Tensor& add_buffer(const std::string& name, Tensor value);
  template <class M>
  M& add_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return *module;
  }

 private:
  void collect(const std::string& prefix, bool params, std::vector<NamedTensor>& out);
  // deques: references handed out by add_parameter stay valid as more are added.
  std::deque<std::pair<std::string, Tensor>> params_;
  std::deque<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace ipg::nn
