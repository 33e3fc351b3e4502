// Test support: the PyTorch goldens of the ONNX test models (tests/data/onnx/<name>.golden.h5,
// written by tests/golden/make_onnx_*.py: x [4, 3, 16, 16], r [4, 10], PyTorch's logits and
// d sum(logits * r) / dx) and the check of a network against one.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "models/network.h"
#include "tests/support/network_checks.h"

namespace ipg::testing {

struct OnnxGolden {
  Tensor x, r, logits, grad_x;
};

inline OnnxGolden read_onnx_golden(const std::string& name = "mobilenet") {
  const h5::File f(kOnnx + name + ".golden.h5");
  OnnxGolden g;
  g.x = f.dataset("x").read(DType::F32, {4, 3, 16, 16});
  g.r = f.dataset("r").read(DType::F32, {4, 10});
  g.logits = f.dataset("logits").read(DType::F32, {4, 10});
  g.grad_x = f.dataset("grad_x").read(DType::F32, {4, 3, 16, 16});
  return g;
}

// Argmax of float rows.
inline std::vector<int32_t> argmax_rows(const Tensor& t) {
  const auto v = t.to_vector();
  const int64_t k = t.dim(1);
  std::vector<int32_t> out;
  for (int64_t r = 0; r < t.dim(0); ++r)
    out.push_back(int32_t(std::max_element(v.begin() + r * k, v.begin() + (r + 1) * k) -
                          (v.begin() + r * k)));
  return out;
}

// net against its PyTorch golden: logits, labels and input gradients.
inline void expect_matches_golden(Network& net, const OnnxGolden& g) {
  Tensor logits;
  {
    NoGradGuard ng;
    logits = net.logits(g.x);
  }
  EXPECT_LT(rel_gap(logits, g.logits), 1e-4);
  const auto labels = net.labels(g.x).to_vector_i32();
  EXPECT_EQ(labels, argmax_rows(g.logits));
  // The goldens were drawn to have several labels: a network answering one class fails.
  EXPECT_GE(std::set<int32_t>(labels.begin(), labels.end()).size(), 3u);
  EXPECT_LT(rel_gap(input_grad(net, g.x, g.r), g.grad_x), 1e-4);
}

}  // namespace ipg::testing
