// The fingerprint loop's pieces working together on a real network: FrozenNetwork for
// the forward and the input gradient, the fused IPGuard loss that freezes converged
// candidates, and the fused Adam step in [0,1]. Candidates start uniform in [0,1]^d (the
// paper's init "R") with random other targets; a candidate at loss 0 must sit where the
// loss says: the target label j on top by at least k, the source label i second. (The
// weights are seeded, not trained: their logits span ~0.2, hence the small k.)
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "engine/ops/boundary.h"
#include "engine/random.h"
#include "models/frozen_network.h"

namespace ipg {
namespace {

TEST(BoundarySearch, IPGuardCandidatesConvergeOntoTheirBoundary) {
  ModelConfig cfg;
  cfg.arch = "lenet5";
  cfg.seed = 3;
  auto net = make_network(cfg);
  const int64_t n = 12, classes = 10;
  const float k = 0.01f;
  const Shape in{n, 1, 28, 28};
  FrozenNetwork f(*net, in);
  Generator gen(17);
  Tensor x = Tensor::uniform(in, 0.f, 1.f, gen);
  const Tensor z0 = f.logits(x).clone();
  std::vector<int32_t> src(n), dst(n);
  const Tensor pick = Tensor::uniform({n}, 0.f, 1.f, gen);
  for (int64_t r = 0; r < n; ++r) {
    const float* row = z0.data() + r * classes;
    src[r] = static_cast<int32_t>(std::max_element(row, row + classes) - row);
    dst[r] = (src[r] + 1 + static_cast<int32_t>(pick.data()[r] * (classes - 1))) % classes;
  }
  const Tensor s = Tensor::from_vector_i32(src, {n}), d = Tensor::from_vector_i32(dst, {n});
  Tensor active = Tensor::from_vector_i32(std::vector<int32_t>(n, 1), {n});
  Tensor m = Tensor::zeros(in), v = Tensor::zeros(in), loss, dz;
  int iterations = 0;
  for (int64_t t = 1; t <= 400; ++t, ++iterations) {
    ops::boundary_loss(ops::BoundaryLoss::IPGuard, f.logits(x), s, d, k, Tensor(), loss, dz,
                       &active);
    const std::vector<int32_t> a = active.to_vector_i32();
    if (std::none_of(a.begin(), a.end(), [](int32_t v) { return v != 0; })) break;
    const Tensor g = f.input_grad(dz);
    ops::boundary_adam_step(x, g, m, v, active,
                            kernels::adam_coeffs(0.05f, 0.9f, 0.999f, 1e-8f, 0, t), 0.f, 1.f);
  }
  const std::vector<int32_t> a = active.to_vector_i32();
  const int64_t converged = std::count(a.begin(), a.end(), 0);
  EXPECT_GE(converged, n * 3 / 4) << "after " << iterations << " iterations";
  const Tensor z = f.logits(x).clone();
  for (int64_t r = 0; r < n; ++r) {
    if (a[r]) continue;
    const float* row = z.data() + r * classes;
    std::vector<int> order(classes);
    for (int c = 0; c < classes; ++c) order[c] = c;
    std::sort(order.begin(), order.end(), [&](int p, int q) { return row[p] > row[q]; });
    EXPECT_EQ(order[0], dst[r]) << "row " << r;
    EXPECT_EQ(order[1], src[r]) << "row " << r;
    EXPECT_GE(row[dst[r]] - row[src[r]], k - 1e-4f) << "row " << r;
  }
  for (float p : x.to_vector()) {
    ASSERT_GE(p, 0.f);
    ASSERT_LE(p, 1.f);
  }
}

}  // namespace
}  // namespace ipg
