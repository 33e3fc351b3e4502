// Module bookkeeping.
#include "engine/nn/module.h"

namespace ipg::nn {

Tensor& Module::add_parameter(const std::string& name, Tensor value) {
  value.set_requires_grad(true);
  params_.emplace_back(name, std::move(value));
  return params_.back().second;
}

Tensor& Module::add_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::move(value));
  return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool params, std::vector<NamedTensor>& out) {
  for (auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, &t);
  for (auto& [name, child] : children_) child->collect(prefix + name + "/", params, out);
}

std::vector<NamedTensor> Module::named_parameters() {
  std::vector<NamedTensor> out;
  collect("", true, out);
  return out;
}

std::vector<NamedTensor> Module::named_buffers() {
  std::vector<NamedTensor> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(*t);
  return out;
}

int64_t Module::num_parameters() {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t->numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  for (auto& [name, t] : named_parameters()) {
    if (t->device() == device) continue;
    const bool rg = t->requires_grad();
    *t = t->detach().to(device);  // a new leaf on the target device
    t->set_requires_grad(rg);
  }
  for (auto& [name, t] : named_buffers()) *t = t->to(device);
}

Device Module::device() {
  auto p = named_parameters();
  if (!p.empty()) return p.front().second->device();
  auto b = named_buffers();
  return b.empty() ? Device::cpu() : b.front().second->device();
}

void Module::set_requires_grad(bool on) {
  for (auto& [name, t] : named_parameters()) {
    t->set_requires_grad(on);
    if (!on) t->zero_grad();
  }
}

void Module::zero_grad() {
  for (auto& [name, t] : named_parameters()) t->zero_grad();
}

}  // namespace ipg::nn
