// Several extractions as one batch (extract_fingerprints): each setting's fingerprint is the
// one it gets alone (IPGuard at several k and target rules; IGSM and FGSM under several
// seeds and rules; CW-L2 at several kappa, each with its own early abort), the batch really
// was shared, and settings that cannot share are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "fingerprint/extract.h"
#include "tests/support/arch_cases.h"
#include "tests/support/fingerprint_agree.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

ExtractOptions base(const std::string& method) {
  ExtractOptions o;
  o.method = method;
  o.n = 10;
  o.batch = 5;  // two chunks: the members' chunks go side by side
  o.init = "random";
  o.iters = 100;
  o.eps = 1;  // igsm, fgsm: the whole image (a random network's least likely label)
  o.alpha = 0.02;
  o.seed = 5;
  return o;
}

// Same labels, flags, iteration counts, sources and targets; points equal up to a batch
// size's rounding in the network's kernels. Returns how many point values are bit-equal.
size_t expect_same(const Fingerprint& alone, const Fingerprint& shared) {
  EXPECT_EQ(alone.labels.to_vector_i32(), shared.labels.to_vector_i32());
  EXPECT_EQ(alone.converged, shared.converged);
  EXPECT_EQ(alone.iterations, shared.iterations);
  EXPECT_EQ(alone.source, shared.source);
  EXPECT_EQ(alone.target, shared.target);
  EXPECT_EQ(alone.params.k, shared.params.k);
  EXPECT_EQ(alone.seed, shared.seed);
  const std::vector<float> a = alone.points.to_vector(), b = shared.points.to_vector();
  EXPECT_EQ(a.size(), b.size());
  size_t same = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_NEAR(a[i], b[i], 1e-5f) << "element " << i;
    same += a[i] == b[i];
  }
  return same;
}

// Returns the fewest rows the shared batch ran with (below its chunk rows: it was compacted).
int64_t expect_group_is_each_alone(std::vector<ExtractOptions> group) {
  auto net = testing::seeded_lenet5();
  int64_t widest = 0, narrowest = 1 << 30;
  const std::vector<Fingerprint> shared =
      extract_fingerprints(*net, group, nullptr, [&](const ExtractProgress& p) {
        widest = std::max(widest, p.chunk_rows);
        if (p.batch_rows > 0) narrowest = std::min(narrowest, p.batch_rows);
      });
  if (shared.size() != group.size()) {
    ADD_FAILURE() << shared.size() << " fingerprints for " << group.size() << " settings";
    return 0;
  }
  EXPECT_EQ(widest, group.front().batch * static_cast<int64_t>(group.size()))
      << "the settings' chunks did not run as one batch";
  size_t same = 0, total = 0;
  for (size_t g = 0; g < group.size(); ++g) {
    SCOPED_TRACE("setting " + std::to_string(g));
    const Fingerprint alone = extract_fingerprint(*net, group[g], nullptr);
    same += expect_same(alone, shared[g]);
    total += static_cast<size_t>(alone.points.numel());
  }
  std::printf("bit-equal point values: %zu of %zu\n", same, total);
  return narrowest;
}

TEST(ExtractGroup, IPGuardAtSeveralKIsEachKAlone) {
  std::vector<ExtractOptions> group;
  for (double k : {0.0, 0.01, 0.03}) {
    ExtractOptions o = base("ipguard");
    o.k = k;
    group.push_back(o);
  }
  group[2].target = "random";
  group[1].seed = 9;
  expect_group_is_each_alone(group);
  // The margins differ in effect: a k shared by all rows would not give these.
  auto net = testing::seeded_lenet5();
  const std::vector<Fingerprint> fps = extract_fingerprints(*net, group, nullptr);
  EXPECT_NE(fps[0].iterations, fps[2].iterations);
}

TEST(ExtractGroup, SignMethodsUnderSeveralSeedsAndTargetRules) {
  for (const char* method : {"igsm", "fgsm"}) {
    SCOPED_TRACE(method);
    std::vector<ExtractOptions> group(3, base(method));
    group[1].seed = 6;
    group[2].target = "random";
    expect_group_is_each_alone(group);
  }
}

// Three CW-L2 settings (kappa 0, 0.001, 0.01; two seeds) whose early aborts come at
// different iterations on the seeded LeNet-5, and on which most rows succeed (its logits
// barely move: random targets, a small kappa and a large c; a kappa taken from another
// setting changes the bits).
std::vector<ExtractOptions> cw_group() {
  std::vector<ExtractOptions> group;
  for (double k : {0.0, 0.001, 0.01}) {
    ExtractOptions o = base("cwl2");
    o.k = k;
    o.iters = 100;  // the loss read every 10 iterations
    o.binary_steps = 3;
    o.lr = 0.1;
    o.c0 = 100;
    o.target = "random";
    group.push_back(o);
  }
  group[2].seed = 8;
  return group;
}

// CW-L2's early abort stays each setting's own in a shared batch: the settings stop their
// binary steps at different iterations (a batch-wide abort would give them all one count),
// each gets its fingerprint alone, iteration counts included, and on the CPU the settings
// that stopped leave the batch (it ran narrower than its chunk).
TEST(ExtractGroup, CwL2KeepsEachSettingsEarlyAbort) {
  const std::vector<ExtractOptions> group = cw_group();
  const int64_t narrowest = expect_group_is_each_alone(group);
  EXPECT_LT(narrowest, group.front().batch * static_cast<int64_t>(group.size()))
      << "no setting left the shared batch: no early abort came apart";
  auto net = testing::seeded_lenet5();
  const std::vector<Fingerprint> fps = extract_fingerprints(*net, group, nullptr);
  std::vector<int32_t> counts;
  for (const Fingerprint& fp : fps) {
    counts.push_back(fp.iterations.front());
    // Most rows succeed (what the CUDA test's agreement needs to mean something).
    int64_t converged = 0;
    for (uint8_t c : fp.converged) converged += c;
    EXPECT_GE(converged * 2, fp.size()) << converged << " of " << fp.size() << " converged";
  }
  std::printf("iterations of each setting's first row: %d %d %d\n", counts[0], counts[1],
              counts[2]);
  EXPECT_TRUE(counts[0] != counts[1] || counts[1] != counts[2])
      << "every setting ran the same iterations: the test does not tell the aborts apart";
  // Replayed (the CPU twin of the CUDA graphs), recorded again after every compaction and
  // every step's return to the whole chunk: the same fingerprints.
  std::vector<ExtractOptions> replayed = group;
  for (ExtractOptions& o : replayed) o.replay = ReplayMode::On;
  int64_t replays = 0;
  const std::vector<Fingerprint> again = extract_fingerprints(
      *net, replayed, nullptr, [&](const ExtractProgress& p) { replays = std::max(replays, p.replays); });
  EXPECT_GT(replays, 0) << "no stretch was replayed";
  ASSERT_EQ(again.size(), fps.size());
  for (size_t g = 0; g < fps.size(); ++g) {
    SCOPED_TRACE("replayed, setting " + std::to_string(g));
    EXPECT_EQ(again[g].points.to_vector(), fps[g].points.to_vector());
    EXPECT_EQ(again[g].iterations, fps[g].iterations);
    EXPECT_EQ(again[g].converged, fps[g].converged);
  }
}

TEST(ExtractGroup, SettingsThatCannotShareAreRefused) {
  auto net = testing::seeded_lenet5();
  std::vector<ExtractOptions> group(2, base("ipguard"));
  group[1].iters = 10;
  EXPECT_THROW(extract_fingerprints(*net, group, nullptr), std::invalid_argument);
  group[1] = base("igsm");
  EXPECT_THROW(extract_fingerprints(*net, group, nullptr), std::invalid_argument);
  std::vector<ExtractOptions> cw(2, base("cwl2"));
  EXPECT_EQ(batch_share_mismatch(cw[0], cw[1]), "");
  cw[1].binary_steps = 3;
  EXPECT_NE(batch_share_mismatch(cw[0], cw[1]), "");
  EXPECT_THROW(extract_fingerprints(*net, cw, nullptr), std::invalid_argument);
  cw[1] = cw[0];
  cw[1].c0 = 0.1;
  EXPECT_NE(batch_share_mismatch(cw[0], cw[1]), "");
  EXPECT_EQ(batch_share_mismatch(base("ipguard"), group[0]), "");
  EXPECT_TRUE(extract_fingerprints(*net, {}, nullptr).empty());
}

}  // namespace
}  // namespace ipg

namespace ipg {
namespace {

constexpr int64_t kConvergingIters = 1000;

// Rows of two fingerprints that agree: same label, flag, iteration count, source and
// target, and every value of the point within `tol`.
int64_t agreeing_rows(const Fingerprint& a, const Fingerprint& b, float tol) {
  const int64_t n = std::min(a.size(), b.size()), per = a.points.numel() / std::max<int64_t>(1, a.size());
  const std::vector<int32_t> la = a.labels.to_vector_i32(), lb = b.labels.to_vector_i32();
  const std::vector<float> pa = a.points.to_vector(), pb = b.points.to_vector();
  int64_t agree = 0;
  for (int64_t r = 0; r < n; ++r) {
    bool same = la[r] == lb[r] && a.converged[r] == b.converged[r] &&
                a.iterations[r] == b.iterations[r] && a.source[r] == b.source[r] &&
                a.target[r] == b.target[r];
    for (int64_t i = r * per; same && i < (r + 1) * per; ++i) same = std::abs(pa[i] - pb[i]) <= tol;
    agree += same;
  }
  return agree;
}

// IPGuard's success rule at the points, on the network's own device: every converged row
// has logit[target] - logit[source] >= k (up to the fused plan's rounding).
void expect_margins_reach_k(Network& net, const Fingerprint& fp, double k) {
  NoGradGuard no_grad;
  net.eval();
  const std::vector<float> z = net.logits(fp.points.to(net.device())).cpu().to_vector();
  const int64_t classes = int64_t(z.size()) / fp.size();
  for (int64_t r = 0; r < fp.size(); ++r) {
    if (!fp.converged[r]) continue;
    const float* row = z.data() + r * classes;
    EXPECT_GE(row[fp.target[r]] - row[fp.source[r]], float(k) - 1e-4f) << "row " << r;
  }
}

// The margins below, at a budget where rows converge (k only moves where the hinge stops:
// unconverged rows get the same gradients at every k), make the settings differ in most
// rows: a k shared by the rows (or taken from the wrong setting) fails the CUDA test below,
// where the GPU's batch-size rounding (cuDNN and cuBLAS choose kernels per shape) may move
// a row or two. On the CPU a group is bit-equal (IPGuardAtSeveralKIsEachKAlone above).
TEST(ExtractGroup, MarginsFarApartChangeMostRows) {
  auto net = testing::seeded_lenet5();
  std::vector<ExtractOptions> group;
  for (double k : {0.0, 0.02, 0.1}) {
    ExtractOptions o = base("ipguard");
    o.k = k;
    o.iters = kConvergingIters;
    group.push_back(o);
  }
  const std::vector<Fingerprint> fps = extract_fingerprints(*net, group, nullptr);
  EXPECT_LE(agreeing_rows(fps[0], fps[1], 1e-3f), 2);
  EXPECT_LE(agreeing_rows(fps[1], fps[2], 1e-3f), 2);
  for (size_t g = 0; g < group.size(); ++g) expect_margins_reach_k(*net, fps[g], group[g].k);
}

}  // namespace
}  // namespace ipg

namespace ipg {
namespace {

// The CUDA test's settings: IPGuard at three margins, one with random targets. Most rows
// of each must converge, or "the same converged rows" would compare unconverged ones
// (the first version's k = 0.1 converged 3 rows of 10 on the H200; on this seeded
// network k = 0.05 converges none): checked on the CPU by CudaGroupConvergesOnMostRows.
std::vector<ExtractOptions> cuda_group() {
  std::vector<ExtractOptions> group;
  for (double k : {0.0, 0.01, 0.02}) {
    ExtractOptions o = base("ipguard");
    o.k = k;
    o.iters = kConvergingIters;
    o.check_every = 10;
    group.push_back(o);
  }
  group[1].target = "random";
  return group;
}

TEST(ExtractGroup, CudaGroupConvergesOnMostRows) {
  auto net = testing::seeded_lenet5();
  const std::vector<ExtractOptions> group = cuda_group();
  const std::vector<Fingerprint> fps = extract_fingerprints(*net, group, nullptr);
  for (size_t g = 0; g < group.size(); ++g) {
    int64_t converged = 0;
    for (int64_t r = 0; r < fps[g].size(); ++r) converged += fps[g].converged[r] ? 1 : 0;
    std::printf("setting %zu (k %.2f): %lld of %lld rows converged\n", g, group[g].k,
                static_cast<long long>(converged), static_cast<long long>(fps[g].size()));
    EXPECT_GE(converged * 10, fps[g].size() * 7) << "setting " << g;
  }
  EXPECT_LE(agreeing_rows(fps[0], fps[1], 1e-3f), 2);
  EXPECT_LE(agreeing_rows(fps[1], fps[2], 1e-3f), 2);
  for (size_t g = 0; g < group.size(); ++g) expect_margins_reach_k(*net, fps[g], group[g].k);
}

// On CUDA (skipped without a GPU): the shared batch (a replayed loop, a per-row k on the
// device) gives each setting the fingerprint it gets alone on the same device, as far as
// two batch sizes can agree on a GPU (cuDNN and cuBLAS choose kernels per shape, and a
// trajectory carries the rounding along: the first H200 run had 5-7 of 10 points within
// 1e-3): the same converged rows with the same labels, but for one late row
// (tests/support/fingerprint_agree.h); every converged row of the shared batch reached
// its own setting's margin k (a k taken from another setting fails here); and the
// settings themselves differ in most rows (MarginsFarApartChangeMostRows).
TEST(ExtractGroupCuda, IPGuardAtSeveralKIsEachKAlone) {
  IPG_REQUIRE_CUDA();
  auto net = testing::seeded_lenet5();
  net->to(Device::cuda());
  const std::vector<ExtractOptions> group = cuda_group();
  const std::vector<Fingerprint> shared = extract_fingerprints(*net, group, nullptr);
  ASSERT_EQ(shared.size(), group.size());
  int64_t agree = 0, rows = 0;
  for (size_t g = 0; g < group.size(); ++g) {
    SCOPED_TRACE("setting " + std::to_string(g));
    const Fingerprint alone = extract_fingerprint(*net, group[g], nullptr);
    const int64_t a = agreeing_rows(alone, shared[g], 1e-3f);
    testing::expect_extractions_agree(alone, shared[g], group[g].iters * 3 / 4, "alone",
                                      "shared");
    EXPECT_EQ(alone.params.k, shared[g].params.k);
    expect_margins_reach_k(*net, shared[g], group[g].k);
    agree += a;
    rows += alone.size();
  }
  std::printf("rows agreeing with the settings alone (points within 1e-3): %lld of %lld\n",
              static_cast<long long>(agree), static_cast<long long>(rows));
  EXPECT_LE(agreeing_rows(shared[0], shared[1], 1e-3f), 2);
}

// On CUDA (skipped without a GPU), replayed as CUDA graphs: CW-L2 settings sharing a
// batch, each with its own early abort (the stopped ones riding along to the step's end,
// their results saved when they stop), agree with each setting alone on the GPU as far as
// two batch sizes can (a rounding may move an abort check, and a row with it): at most one
// row converged on one side only, the same labels where both converged.
TEST(ExtractGroupCuda, CwL2SettingsSharingABatchAgreeWithEachAlone) {
  IPG_REQUIRE_CUDA();
  auto net = testing::seeded_lenet5();
  net->to(Device::cuda());
  std::vector<ExtractOptions> group = cw_group();
  for (ExtractOptions& o : group) o.replay = ReplayMode::On;
  int64_t replays = 0;
  const std::vector<Fingerprint> shared = extract_fingerprints(
      *net, group, nullptr, [&](const ExtractProgress& p) { replays = std::max(replays, p.replays); });
  ASSERT_EQ(shared.size(), group.size());
  EXPECT_GT(replays, 0) << "no CUDA graph was replayed";
  for (size_t g = 0; g < group.size(); ++g) {
    SCOPED_TRACE("setting " + std::to_string(g));
    const Fingerprint alone = extract_fingerprint(*net, group[g], nullptr);
    testing::expect_extractions_agree(alone, shared[g], 0, "alone", "shared");
    EXPECT_EQ(alone.params.k, shared[g].params.k);
  }
}

}  // namespace
}  // namespace ipg
