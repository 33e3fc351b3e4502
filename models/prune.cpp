// Pruning masks (WP, FP) and last-layer re-initialization.
#include "models/prune.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/random.h"

namespace ipg {

namespace {

bool name_ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Convs whose output channels are added to a residual stream (module names from
// models/resnet.cpp): pruning one of their filters would cut a channel the identity
// paths still carry.
bool feeds_residual_sum(const std::string& arch, const std::string& weight) {
  if (arch == "resnet20" || arch == "wrn-22-4")
    return weight == "conv1/weight" || name_ends_with(weight, "/conv2/weight") ||
           contains(weight, "/shortcut/");
  if (arch == "resnet50")
    return weight == "conv1/conv/weight" || name_ends_with(weight, "/3_conv/weight") ||
           name_ends_with(weight, "/0_conv/weight");
  return false;
}

}  // namespace

std::vector<ParamMask> prune_weights(Network& net, double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0))
    throw std::invalid_argument("prune_weights: fraction must be in [0, 1), got " +
                                std::to_string(fraction));
  std::vector<ParamMask> masks;
  std::vector<std::vector<float>> values;
  for (auto& [name, p] : net.named_parameters()) {
    if (p->ndim() < 2) continue;
    masks.push_back({name, Tensor::full(p->shape(), 1.f)});
    values.push_back(p->to_vector());
  }
  // Order every weight by (|w|, tensor, position): a total order, so the count is exact.
  struct Ref {
    float mag;
    uint32_t tensor;
    uint64_t pos;
  };
  std::vector<Ref> all;
  for (size_t t = 0; t < values.size(); ++t)
    for (size_t i = 0; i < values[t].size(); ++i)
      all.push_back({std::fabs(values[t][i]), uint32_t(t), uint64_t(i)});
  const size_t k = static_cast<size_t>(std::floor(fraction * double(all.size())));
  if (k == 0) return masks;
  auto less = [](const Ref& a, const Ref& b) {
    if (a.mag != b.mag) return a.mag < b.mag;
    if (a.tensor != b.tensor) return a.tensor < b.tensor;
    return a.pos < b.pos;
  };
  std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k - 1), all.end(), less);
  const Ref cut = all[k - 1];
  for (const Ref& r : all)
    if (!less(cut, r)) masks[r.tensor].mask.data()[r.pos] = 0.f;
  return masks;
}

std::vector<ParamMask> prune_filters(Network& net, double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0))
    throw std::invalid_argument("prune_filters: fraction must be in [0, 1), got " +
                                std::to_string(fraction));
  auto params = net.named_parameters();
  std::vector<ParamMask> masks;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].first;
    const Tensor& w = *params[i].second;
    if (w.ndim() != 4 || feeds_residual_sum(net.arch(), name)) continue;
    const int64_t filters = w.dim(0), per = w.numel() / filters;
    const int64_t k = std::min<int64_t>(static_cast<int64_t>(std::floor(fraction * filters)),
                                        filters - 1);
    if (k <= 0) continue;
    const std::vector<float> v = w.to_vector();
    std::vector<double> l1(static_cast<size_t>(filters), 0.0);
    for (int64_t f = 0; f < filters; ++f)
      for (int64_t j = 0; j < per; ++j) l1[f] += std::fabs(v[f * per + j]);
    std::vector<int64_t> order(static_cast<size_t>(filters));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return l1[a] < l1[b]; });
    std::vector<float> keep(static_cast<size_t>(filters), 1.f);
    for (int64_t j = 0; j < k; ++j) keep[order[j]] = 0.f;
    Tensor wm = Tensor::empty(w.shape());
    for (int64_t f = 0; f < filters; ++f) std::fill_n(wm.data() + f * per, per, keep[f]);
    masks.push_back({name, wm});
    // The per-channel tensors that follow the conv in parameter order (its bias, then the
    // batch norm over its output: module order is construction order) share the mask.
    for (size_t j = i + 1; j < params.size() && params[j].second->ndim() == 1 &&
                           params[j].second->numel() == filters;
         ++j)
      masks.push_back({params[j].first, Tensor::from_vector(keep, {filters})});
  }
  return masks;
}

void apply_masks(Network& net, std::vector<ParamMask>& masks) {
  if (masks.empty()) return;
  std::map<std::string, Tensor*> by_name;
  for (auto& [name, p] : net.named_parameters()) by_name[name] = p;
  NoGradGuard no_grad;
  for (ParamMask& m : masks) {
    const auto it = by_name.find(m.name);
    if (it == by_name.end()) throw std::invalid_argument("mask for unknown parameter " + m.name);
    Tensor& p = *it->second;
    if (m.mask.shape() != p.shape())
      throw std::invalid_argument("mask for " + m.name + " has shape " + shape_str(m.mask.shape()) +
                                  ", the parameter " + shape_str(p.shape()));
    if (m.mask.device() != p.device()) m.mask = m.mask.to(p.device());
    p.copy_from(ops::mul(p.detach(), m.mask));
  }
}

double masked_fraction(const std::vector<ParamMask>& masks) {
  double zeros = 0, total = 0;
  for (const ParamMask& m : masks) {
    for (float v : m.mask.to_vector()) zeros += v == 0.f;
    total += double(m.mask.numel());
  }
  return total > 0 ? zeros / total : 0.0;
}

void reinit_last_layer(Network& net, uint64_t seed) {
  auto last = net.last_layer_parameters();
  int64_t fan_in = 0;
  for (auto& [name, p] : last)
    if (p->ndim() == 2) fan_in = p->dim(1);
  if (fan_in <= 0) throw std::logic_error(net.arch() + ": last layer has no weight matrix");
  const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, p] : last) p->copy_from(Tensor::uniform(p->shape(), -bound, bound, gen));
}

}  // namespace ipg
