// Comparisons of two ways of computing a network (ONNX against its HDF5 twin, an export
// read back, a native conv against the reference): a relative gap that a NaN cannot
// hide, and the input gradient through autodiff.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"

namespace ipg::testing {

// The ONNX test files (tests/data/onnx/, written by tests/golden/make_onnx_golden.py).
inline const std::string kOnnx = std::string(IPG_TEST_DATA_DIR) + "/onnx/";

// Largest |a - b| over 1 + max |b|; infinite when a difference is NaN.
inline double rel_gap(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto va = a.cpu().to_vector(), vb = b.cpu().to_vector();
  double gap = 0, scale = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    const double d = std::fabs(double(va[i]) - double(vb[i]));
    gap = std::isnan(d) ? INFINITY : std::max(gap, d);
    scale = std::max(scale, std::fabs(double(vb[i])));
  }
  return gap / (1 + scale);
}

// d sum(logits * r) / dx through autodiff.
template <typename Net>
Tensor input_grad(Net& net, const Tensor& x, const Tensor& r) {
  Tensor xi = x.detach();
  xi.set_requires_grad(true);
  ops::sum(ops::mul(net.logits(xi), r)).backward();
  return xi.grad();
}

}  // namespace ipg::testing
