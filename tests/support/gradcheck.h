// Finite-difference gradient check used by every op test. The function's output is
// projected on a fixed random direction r (loss = sum(f(x) * r)), so one backward pass
// checks the whole vector-Jacobian product; each input element is then perturbed by
// +-eps and compared with the central difference. Elements where the function is not
// smooth inside [x-eps, x+eps] (ReLU at 0, max-pool ties: a "kink") are skipped, and the
// count of skipped elements is reported so a test can bound it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ipg::testing {

struct GradCheckOptions {
  float eps = 1e-3f;
  double atol = 2e-3;
  double rtol = 2e-2;
  // A point is a kink when the one-sided differences disagree by more than this
  // (relative to their size): the function bends inside the stencil.
  double kink_tol = 0.1;
  uint64_t seed = 1234;
};

struct GradCheckResult {
  bool ok = true;
  int checked = 0;
  int skipped_kinks = 0;
  double max_abs_error = 0.0;
  std::string message;  // the first mismatches, for the test log
};

// f maps the inputs to one tensor; the inputs to check have requires_grad set (others
// are held constant). Inputs must be on the CPU.
GradCheckResult check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                std::vector<Tensor> inputs, GradCheckOptions opt = {});

}  // namespace ipg::testing

// gtest assertion: EXPECT_GRADCHECK(f, {x, w}) or with options.
#define EXPECT_GRADCHECK(...)                                              \
  do {                                                                     \
    const auto ipg_gc_ = ::ipg::testing::check_gradients(__VA_ARGS__);     \
    EXPECT_TRUE(ipg_gc_.ok) << ipg_gc_.message;                            \
    EXPECT_GT(ipg_gc_.checked, 0) << "gradient check compared no element"; \
  } while (0)
