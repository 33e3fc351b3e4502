// Our side of the Keras import (models/keras_import.h): our modules as slots of Keras
// roles, and copying a Keras layer's weights into them (shapes checked, kernels
// transposed, a flattened map's rows reordered).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/hdf5.h"
#include "models/keras_internal.h"

namespace ipg::keras_detail {

std::string kind_name(Slot::Kind k) {
  return k == Slot::Conv ? "Conv2D" : k == Slot::Dense ? "Dense" : "BatchNormalization";
}

namespace {

// "conv1_conv/kernel:0" -> "kernel"; Keras 1 names such as "dense_1_W" give no known role
// and are then taken by position.
std::string role_of(const std::string& weight_name) {
  std::string s = weight_name.substr(weight_name.rfind('/') + 1);
  return s.substr(0, s.find(':'));
}

}  // namespace

// Groups our parameters and buffers by module path, in registration order, and names the
// Keras weights each module corresponds to.
std::vector<Slot> slots_of(Network& net) {
  std::vector<Slot> slots;
  std::map<std::string, size_t> index;
  std::map<std::string, std::map<std::string, Tensor*>> leaves;
  auto add = [&](const std::vector<nn::NamedTensor>& named) {
    for (const auto& [name, t] : named) {
      const auto slash = name.rfind('/');
      const std::string module = slash == std::string::npos ? "" : name.substr(0, slash);
      if (!index.count(module)) {
        index[module] = slots.size();
        slots.emplace_back();
        slots.back().path = module;
      }
      leaves[module][name.substr(slash + 1)] = t;
    }
  };
  add(net.named_parameters());
  add(net.named_buffers());
  for (Slot& s : slots) {
    auto& l = leaves[s.path];
    s.keras_name = s.path;
    std::replace(s.keras_name.begin(), s.keras_name.end(), '/', '_');
    if (l.count("running_mean")) {
      s.kind = Slot::BatchNorm;
      s.roles = {"gamma", "beta", "moving_mean", "moving_variance"};
      s.tensors = {l["weight"], l["bias"], l["running_mean"], l["running_var"]};
    } else {
      s.kind = l.at("weight")->ndim() == 4 ? Slot::Conv : Slot::Dense;
      s.roles = {"kernel"};
      s.tensors = {l.at("weight")};
      if (l.count("bias")) {
        s.roles.push_back("bias");
        s.tensors.push_back(l["bias"]);
      }
    }
    if (s.tensors.size() != l.size())
      throw std::logic_error("keras import: module '" + s.path + "' has tensors it cannot map");
  }
  return slots;
}

namespace {

// The shape Keras stores for our tensor: HWIO kernels, [in, out] dense kernels.
Shape keras_shape(const Slot& s, size_t i) {
  const Shape& o = s.tensors[i]->shape();
  if (i != 0 || s.kind == Slot::BatchNorm) return o;
  if (s.kind == Slot::Conv) return {o[2], o[3], o[1], o[0]};
  return {o[1], o[0]};
}

// Which of the layer's datasets holds each of the slot's roles: by role name when every
// weight name carries a distinct expected role, else in Keras's fixed order.
std::vector<size_t> assign_roles(const Slot& s, const Layer& l, const std::string& file) {
  if (l.weight_names.size() != s.roles.size()) {
    std::string listed, expected;
    for (const auto& w : l.weight_names) listed += (listed.empty() ? "" : ", ") + w;
    for (const auto& r : s.roles) expected += (expected.empty() ? "" : ", ") + r;
    throw FileError(file + ": " + l.path + ": has " + std::to_string(l.weight_names.size()) +
                    " weights (" + listed + "), our " + kind_name(s.kind) + " '" + s.path +
                    "' takes " + std::to_string(s.roles.size()) + " (" + expected + ")");
  }
  std::vector<size_t> order(s.roles.size());
  std::set<size_t> used;
  for (size_t i = 0; i < s.roles.size(); ++i) {
    const auto it = std::find_if(l.weight_names.begin(), l.weight_names.end(),
                                 [&](const std::string& w) { return role_of(w) == s.roles[i]; });
    if (it == l.weight_names.end()) break;
    order[i] = static_cast<size_t>(it - l.weight_names.begin());
    used.insert(order[i]);
  }
  if (used.size() == s.roles.size()) return order;
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  return order;
}

}  // namespace

// Copies one Keras layer into our slot, checking shapes and values.
// `flatten` = {C, H, W} of the map a Dense layer's input was flattened from (NHWC in Keras),
// or empty; `reverse_input` reverses a Conv2D's input channels (the 'caffe' fold).
void load_layer(const Slot& s, const Layer& l, const std::vector<int64_t>& flatten,
                bool reverse_input, const std::string& file) {
  const std::vector<size_t> order = assign_roles(s, l, file);
  for (size_t i = 0; i < s.roles.size(); ++i) {
    const h5::Dataset& d = l.datasets[order[i]];
    const std::string where = file + ": " + d.path() + ": ";
    const Shape want = keras_shape(s, i);
    Shape got;
    const std::vector<float> v = d.read_floats(&got);
    if (got != want)
      throw FileError(where + "shape " + shape_str(got) + ", but " + kind_name(s.kind) + " '" +
                      s.path + "' needs " + shape_str(want) + " (Keras layout)");
    for (float x : v)
      if (!std::isfinite(x)) throw FileError(where + "holds NaN or Inf");
    Tensor& t = *s.tensors[i];
    float* dst = t.data();
    if (i != 0 || s.kind == Slot::BatchNorm) {
      std::copy(v.begin(), v.end(), dst);
    } else if (s.kind == Slot::Conv) {
      // HWIO [kh, kw, ci, co] -> OIHW [co, ci, kh, kw].
      const int64_t kh = got[0], kw = got[1], ci = got[2], co = got[3];
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          for (int64_t c = 0; c < ci; ++c) {
            const int64_t cc = reverse_input ? ci - 1 - c : c;
            for (int64_t o = 0; o < co; ++o)
              dst[((o * ci + cc) * kh + y) * kw + x] = v[((y * kw + x) * ci + c) * co + o];
          }
    } else {
      // [in, out] -> [out, in]; Keras's row (h * W + w) * C + c is our column
      // (c * H + h) * W + w when the input is a flattened map.
      const int64_t in = got[0], out = got[1];
      const int64_t C = flatten.empty() ? in : flatten[0];
      const int64_t H = flatten.empty() ? 1 : flatten[1], W = flatten.empty() ? 1 : flatten[2];
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t row = (h * W + w) * C + c, col = (c * H + h) * W + w;
            for (int64_t o = 0; o < out; ++o) dst[o * in + col] = v[row * out + o];
          }
    }
  }
}

}  // namespace ipg::keras_detail
