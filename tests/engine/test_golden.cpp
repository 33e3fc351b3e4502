// Our ops against PyTorch: forward values and gradients read from
// tests/data/golden_ops.h5 (tests/golden/make_golden.py). The reference is PyTorch in
// float64 on the same float32 inputs, so the tolerances bound our own float32 error. Each
// test runs every case of its op family found in the file: a case added to the script is
// tested without touching this file.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "engine/ops/batchnorm.h"
#include "engine/ops/conv.h"
#include "engine/ops/loss.h"
#include "engine/ops/pool.h"
#include "engine/tensor.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

// Inputs are O(1) and every output sums at most a few hundred O(1) products, so float32
// accumulation error stays below 1e-5 (measured: 6e-6 at most, in the 7x7 conv's weight
// gradient). 1e-4 leaves room for other summation orders: oneDNN picks its algorithm by CPU.
constexpr double kAtol = 1e-4;
constexpr double kRtol = 1e-4;

h5::File golden_file() { return h5::File(std::string(IPG_TEST_DATA_DIR) + "/golden_ops.h5"); }

// The case groups whose `op` attribute is `op`, in name order.
std::vector<h5::Group> cases(const h5::File& f, const std::string& op) {
  std::vector<h5::Group> out;
  for (const std::string& name : f.children()) {
    h5::Group g = f.group(name);
    if (g.attr_string("op") == op) out.push_back(g);
  }
  return out;
}

Tensor load(const h5::Group& c, const std::string& name) {
  return c.dataset(name).read(DType::F32);
}

Tensor load_leaf(const h5::Group& c, const std::string& name) {
  Tensor t = load(c, name);
  t.set_requires_grad(true);
  return t;
}

int attr(const h5::Group& c, const std::string& name) { return static_cast<int>(c.attr_int(name)); }

void expect_close(const h5::Group& c, const std::string& name, const Tensor& got,
                  double atol = kAtol, double rtol = kRtol) {
  SCOPED_TRACE(c.path() + "/" + name);
  ASSERT_TRUE(got.defined()) << "no tensor (gradient never computed?)";
  EXPECT_PARITY(load(c, name), got, atol, rtol);
}

TEST(Golden, Conv2dForwardAndGradients) {
  const h5::File f = golden_file();
  const std::vector<h5::Group> all = cases(f, "conv2d");
  ASSERT_GE(all.size(), 5u);
  for (const h5::Group& c : all) {
    SCOPED_TRACE(c.path());
    const int stride = attr(c, "stride"), padding = attr(c, "padding");
    Tensor x = load_leaf(c, "x"), w = load_leaf(c, "weight");
    Tensor b = attr(c, "has_bias") ? load_leaf(c, "bias") : Tensor();
    const Tensor out = ops::conv2d(x, w, b, stride, padding);
    expect_close(c, "out", out);
    out.backward(load(c, "grad_out"));
    expect_close(c, "grad_x", x.grad());
    expect_close(c, "grad_weight", w.grad());
    if (b.defined()) expect_close(c, "grad_bias", b.grad());

    // Frozen weights, as in fingerprint extraction: the input gradient alone.
    Tensor x2 = load_leaf(c, "x");
    ops::conv2d(x2, load(c, "weight"), b.defined() ? load(c, "bias") : Tensor(), stride, padding)
        .backward(load(c, "grad_out"));
    expect_close(c, "grad_x", x2.grad());
  }
}

TEST(Golden, BatchNormTrainingUpdatesRunningStatsAndGradients) {
  const h5::File f = golden_file();
  int trained = 0;
  for (const h5::Group& c : cases(f, "batch_norm")) {
    if (!attr(c, "training")) continue;
    SCOPED_TRACE(c.path());
    ++trained;
    Tensor x = load_leaf(c, "x"), gamma = load_leaf(c, "gamma"), beta = load_leaf(c, "beta");
    Tensor running_mean = load(c, "running_mean"), running_var = load(c, "running_var");
    const Tensor out = ops::batch_norm(x, gamma, beta, running_mean, running_var, true,
                                       static_cast<float>(c.attr_double("momentum")),
                                       static_cast<float>(c.attr_double("eps")));
    expect_close(c, "out", out);
    expect_close(c, "running_mean_out", running_mean);
    expect_close(c, "running_var_out", running_var);
    out.backward(load(c, "grad_out"));
    expect_close(c, "grad_x", x.grad());
    expect_close(c, "grad_gamma", gamma.grad());
    expect_close(c, "grad_beta", beta.grad());
  }
  EXPECT_GE(trained, 2);
}

TEST(Golden, BatchNormEvalUsesRunningStatsAndLeavesThem) {
  const h5::File f = golden_file();
  int evaluated = 0;
  for (const h5::Group& c : cases(f, "batch_norm")) {
    if (attr(c, "training")) continue;
    SCOPED_TRACE(c.path());
    ++evaluated;
    Tensor x = load_leaf(c, "x"), gamma = load_leaf(c, "gamma"), beta = load_leaf(c, "beta");
    Tensor running_mean = load(c, "running_mean"), running_var = load(c, "running_var");
    const Tensor out = ops::batch_norm(x, gamma, beta, running_mean, running_var, false,
                                       static_cast<float>(c.attr_double("momentum")),
                                       static_cast<float>(c.attr_double("eps")));
    expect_close(c, "out", out);
    EXPECT_EQ(running_mean.to_vector(), load(c, "running_mean").to_vector());
    EXPECT_EQ(running_var.to_vector(), load(c, "running_var").to_vector());
    out.backward(load(c, "grad_out"));
    expect_close(c, "grad_x", x.grad());
    expect_close(c, "grad_gamma", gamma.grad());
    expect_close(c, "grad_beta", beta.grad());
  }
  EXPECT_GE(evaluated, 1);
}

// Runs `op` on each case of `name` and checks the output and the input gradient.
template <typename Op>
int check_pool_cases(const h5::File& f, const std::string& name, Op op) {
  int n = 0;
  for (const h5::Group& c : cases(f, name)) {
    SCOPED_TRACE(c.path());
    ++n;
    Tensor x = load_leaf(c, "x");
    const Tensor out = op(c, x);
    expect_close(c, "out", out);
    out.backward(load(c, "grad_out"));
    expect_close(c, "grad_x", x.grad());
  }
  return n;
}

TEST(Golden, MaxPool) {
  const int n =
      check_pool_cases(golden_file(), "max_pool2d", [](const h5::Group& c, const Tensor& x) {
        return ops::max_pool2d(x, attr(c, "kernel"), attr(c, "stride"), attr(c, "padding"));
      });
  EXPECT_GE(n, 2);
}

TEST(Golden, AvgPool) {
  const int n =
      check_pool_cases(golden_file(), "avg_pool2d", [](const h5::Group& c, const Tensor& x) {
        return ops::avg_pool2d(x, attr(c, "kernel"), attr(c, "stride"), attr(c, "padding"),
                               attr(c, "count_include_pad") != 0);
      });
  EXPECT_GE(n, 3);
}

TEST(Golden, GlobalAvgPool) {
  const int n =
      check_pool_cases(golden_file(), "global_avg_pool2d",
                       [](const h5::Group&, const Tensor& x) { return ops::global_avg_pool2d(x); });
  EXPECT_GE(n, 1);
}

TEST(Golden, CrossEntropyIncludingLargeLogits) {
  const h5::File f = golden_file();
  const std::vector<h5::Group> all = cases(f, "cross_entropy");
  ASSERT_GE(all.size(), 1u);
  for (const h5::Group& c : all) {
    SCOPED_TRACE(c.path());
    Tensor logits = load_leaf(c, "logits");
    const Tensor labels = c.dataset("labels").read(DType::I32);
    const Tensor loss = ops::cross_entropy(logits, labels);
    expect_close(c, "loss", loss);
    loss.backward();
    expect_close(c, "grad_logits", logits.grad());
  }
}

}  // namespace
}  // namespace ipg
