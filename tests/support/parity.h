// CUDA-vs-CPU parity: the CPU twin is the reference. Values match when
// |got - ref| <= atol + rtol * |ref|; a failure lists the first mismatching pairs and
// the largest difference. Tests that need a GPU start with IPG_REQUIRE_CUDA(), which
// reports them as skipped (never passed) where no GPU is present.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"

namespace ipg::testing {

struct ParityResult {
  bool ok = true;
  double max_abs_diff = 0.0;
  std::string message;
};

ParityResult compare_values(const std::vector<float>& ref, const std::vector<float>& got,
                            double atol, double rtol);
// Shapes must agree too; tensors may be on any devices.
ParityResult compare_tensors(const Tensor& ref, const Tensor& got, double atol, double rtol);

// Runs f on CPU copies and on cuda:0 copies of the inputs, compares the outputs, then
// back-propagates the same random output gradient on both and compares the gradients of
// every input that requires one (gtest expectations).
void expect_forward_backward_parity(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                    const std::vector<Tensor>& cpu_inputs, double atol,
                                    double rtol);

// gtest expectation that ref and got match within atol + rtol * |ref|.
inline void expect_close(const std::vector<float>& ref, const std::vector<float>& got,
                         double atol, double rtol) {
  const auto r = compare_values(ref, got, atol, rtol);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace ipg::testing

#define IPG_REQUIRE_CUDA()                                                              \
  do {                                                                                  \
    if (!::ipg::cuda_available())                                                       \
      GTEST_SKIP() << "CUDA parity test not run: " << ::ipg::cuda_unavailable_reason(); \
  } while (0)

#define EXPECT_PARITY(ref, got, atol, rtol)                                         \
  do {                                                                              \
    const auto ipg_pr_ = ::ipg::testing::compare_tensors((ref), (got), atol, rtol); \
    EXPECT_TRUE(ipg_pr_.ok) << ipg_pr_.message;                                     \
  } while (0)
