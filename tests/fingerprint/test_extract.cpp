// Fingerprint extraction on a seeded LeNet-5: what each method promises about its points
// (recomputed independently through the autodiff network), determinism, chunking and
// batch compaction not changing any point, and refused options.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/index.h"
#include "engine/random.h"
#include "fingerprint/extract.h"
#include "fingerprint/extract_search.h"
#include "tests/support/arch_cases.h"
#include "tests/support/fingerprint_agree.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

Tensor logits_of(Network& net, const Tensor& x) {
  NoGradGuard no_grad;
  net.eval();
  return net.logits(x);
}

ExtractOptions small(const std::string& method) {
  ExtractOptions o;
  o.method = method;
  o.n = 12;
  o.init = "random";
  o.k = 0.01;  // seeded weights: logits span ~0.2
  o.iters = 300;
  o.seed = 5;
  return o;
}

TEST(Extract, IPGuardPointsSitWhereTheirLossSays) {
  auto net = testing::seeded_lenet5();
  const Fingerprint fp = extract_fingerprint(*net, small("ipguard"), nullptr);
  ASSERT_EQ(fp.size(), 12);
  EXPECT_EQ(fp.method, "ipguard");
  EXPECT_EQ(fp.arch, "lenet5");
  const Tensor z = logits_of(*net, fp.points);
  const std::vector<int32_t> labels = ops::argmax(z).to_vector_i32();
  EXPECT_EQ(fp.labels.to_vector_i32(), labels);  // the target's labels at the points
  int converged = 0;
  for (int64_t r = 0; r < 12; ++r) {
    EXPECT_NE(fp.source[r], fp.target[r]);
    if (!fp.converged[r]) continue;
    ++converged;
    const float* row = z.data() + r * 10;
    EXPECT_EQ(labels[r], fp.target[r]) << "row " << r;
    EXPECT_GE(row[fp.target[r]] - row[fp.source[r]], 0.01f - 1e-5f);
    EXPECT_EQ(fp.final_loss[r], 0.f);
    EXPECT_LT(fp.iterations[r], 300);
  }
  EXPECT_GE(converged, 9);
  for (float p : fp.points.to_vector()) ASSERT_TRUE(p >= 0.f && p <= 1.f);
}

TEST(Extract, SourceIsTheInitialLabelAndTargetTheLeastLikely) {
  auto net = testing::seeded_lenet5();
  ExtractOptions o = small("random");
  const Fingerprint fp = extract_fingerprint(*net, o, nullptr);  // points = initial points
  const Tensor z = logits_of(*net, fp.points);
  for (int64_t r = 0; r < fp.size(); ++r) {
    const float* row = z.data() + r * 10;
    EXPECT_EQ(fp.source[r], std::max_element(row, row + 10) - row);
    EXPECT_EQ(fp.target[r], std::min_element(row, row + 10) - row);
    EXPECT_EQ(fp.iterations[r], 0);
    EXPECT_TRUE(fp.converged[r]);
  }
}

TEST(Extract, InitTrainPicksDistinctTrainingImages) {
  auto net = testing::seeded_lenet5();
  Generator gen(2);
  const Tensor train = Tensor::uniform({40, 1, 28, 28}, 0.f, 1.f, gen);
  ExtractOptions o = small("random");
  o.init = "train";
  o.n = 20;
  const Fingerprint fp = extract_fingerprint(*net, o, &train);
  std::vector<int64_t> picked;
  for (int64_t r = 0; r < 20; ++r) {
    const float* p = fp.points.data() + r * 784;
    for (int64_t i = 0; i < 40; ++i)
      if (std::equal(p, p + 784, train.data() + i * 784)) picked.push_back(i);
  }
  ASSERT_EQ(picked.size(), 20u);
  std::sort(picked.begin(), picked.end());
  EXPECT_EQ(std::unique(picked.begin(), picked.end()), picked.end());
  o.n = 41;
  EXPECT_THROW(extract_fingerprint(*net, o, &train), std::invalid_argument);
}

TEST(Extract, SignMethodsStayWithinEpsAndReportSuccessByLabel) {
  auto net = testing::seeded_lenet5();
  const Fingerprint start = extract_fingerprint(*net, small("random"), nullptr);
  for (const char* method : {"fgsm", "igsm"}) {
    SCOPED_TRACE(method);
    ExtractOptions o = small(method);
    o.eps = 0.05;
    const Fingerprint fp = extract_fingerprint(*net, o, nullptr);
    const std::vector<float> a = fp.points.to_vector(), b = start.points.to_vector();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_LE(std::abs(a[i] - b[i]), 0.05f + 1e-6f);
    const std::vector<int32_t> labels = fp.labels.to_vector_i32();
    for (int64_t r = 0; r < fp.size(); ++r)
      EXPECT_EQ(fp.converged[r] != 0, labels[r] == fp.target[r]) << "row " << r;
  }
}

TEST(Extract, CwL2PointsAreSuccessesAtTheirReportedDistance) {
  auto net = testing::seeded_lenet5();
  ExtractOptions first = small("random");
  first.n = 6;
  const Fingerprint start = extract_fingerprint(*net, first, nullptr);
  ExtractOptions o = small("cwl2");
  o.n = 6;
  o.iters = 160;
  o.binary_steps = 2;
  o.c0 = 1e3;  // seeded weights: logits barely move with the input, c must be large
  o.lr = 0.1;
  o.target = "random";
  o.abort_early = false;
  const Fingerprint fp = extract_fingerprint(*net, o, nullptr);
  const Tensor z = logits_of(*net, fp.points);
  const std::vector<float> p = fp.points.to_vector(), q = start.points.to_vector();
  int converged = 0;
  for (int64_t r = 0; r < fp.size(); ++r) {
    double d2 = 0;
    for (int64_t e = r * 784; e < (r + 1) * 784; ++e) d2 += double(p[e] - q[e]) * (p[e] - q[e]);
    if (!fp.converged[r]) {
      EXPECT_LT(d2, 1e-8) << "row " << r << ": no success, so the start";
      continue;
    }
    ++converged;
    const float* row = z.data() + r * 10;
    const int j = fp.target[r];
    for (int t = 0; t < 10; ++t) {
      if (t == j) continue;
      EXPECT_GT(row[j] - 0.01f, row[t] - 1e-4f) << "row " << r;
    }
    EXPECT_NEAR(fp.final_loss[r], d2, 1e-3 * (1 + d2)) << "row " << r;
    EXPECT_GT(d2, 0);
  }
  EXPECT_GE(converged, 3);
}

TEST(Extract, SameSeedSameFingerprintAndChunkingChangesNothing) {
  auto net = testing::seeded_lenet5();
  ExtractOptions o = small("ipguard");
  o.iters = 100;
  const Fingerprint a = extract_fingerprint(*net, o, nullptr);
  const Fingerprint b = extract_fingerprint(*net, o, nullptr);
  EXPECT_EQ(a.points.to_vector(), b.points.to_vector());
  // Chunks of 5 (batches 5, 5, 2) with read-backs every 3 iterations: other batch
  // shapes, other compaction points; each row's arithmetic is its own.
  o.batch = 5;
  o.check_every = 3;
  const Fingerprint c = extract_fingerprint(*net, o, nullptr);
  EXPECT_EQ(a.labels.to_vector_i32(), c.labels.to_vector_i32());
  EXPECT_EQ(a.converged, c.converged);
  const std::vector<float> pa = a.points.to_vector(), pc = c.points.to_vector();
  for (size_t i = 0; i < pa.size(); ++i) ASSERT_NEAR(pa[i], pc[i], 1e-5f);
  o.batch = 100;
  o.seed = 6;
  const Fingerprint d = extract_fingerprint(*net, o, nullptr);
  EXPECT_NE(a.points.to_vector(), d.points.to_vector());
}

// Compaction moves the rows still searching into a smaller batch, with their points and
// Adam moments: forced at every finished row, or never, the same points come out (to
// oneDNN's batch-size-dependent rounding), and the forced run did compact.
TEST(Extract, CompactionChangesNoPoint) {
  auto net = testing::seeded_lenet5();
  for (const char* method : {"ipguard", "igsm"}) {
    SCOPED_TRACE(method);
    ExtractOptions o = small(method);
    o.eps = 1;  // igsm: the whole image, for the least likely label of a random network
    o.alpha = 0.02;
    int64_t smallest = o.n;
    auto watch = [&](const ExtractProgress& p) { smallest = std::min(smallest, p.batch_rows); };
    o.compact_at = 0;
    const Fingerprint never = extract_fingerprint(*net, o, nullptr, watch);
    EXPECT_EQ(smallest, o.n);
    o.compact_at = 1;
    const Fingerprint always = extract_fingerprint(*net, o, nullptr, watch);
    EXPECT_LT(smallest, o.n) << "no compaction happened: the test proves nothing";
    int converged = 0;
    for (uint8_t c : never.converged) converged += c;
    EXPECT_GE(converged, 3);
    EXPECT_EQ(never.converged, always.converged);
    EXPECT_EQ(never.iterations, always.iterations);
    EXPECT_EQ(never.labels.to_vector_i32(), always.labels.to_vector_i32());
    const std::vector<float> a = never.points.to_vector(), b = always.points.to_vector();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f) << "element " << i;
  }
}

// The recorded stretch between two reads of the flags (engine/replay.h; on the CPU its
// twin) runs the same ops as the direct loop, Adam's coefficients read from a table on
// the device: the same bits, with the batch compacted (and the stretch recorded again)
// whenever a row finishes.
void expect_same_bits(const Fingerprint& a, const Fingerprint& b) {
  EXPECT_EQ(a.converged, b.converged);
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_EQ(a.labels.to_vector_i32(), b.labels.to_vector_i32());
  const std::vector<float> pa = a.points.to_vector(), pb = b.points.to_vector();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) ASSERT_EQ(pa[i], pb[i]) << "element " << i;
}

TEST(Extract, ReplayedStretchesGiveTheSameBits) {
  auto net = testing::seeded_lenet5();
  ExtractOptions o = small("ipguard");
  o.check_every = 7;
  o.compact_at = 1;
  int64_t smallest = o.n;
  auto watch = [&](const ExtractProgress& p) { smallest = std::min(smallest, p.batch_rows); };
  o.replay = ReplayMode::Off;
  const Fingerprint direct = extract_fingerprint(*net, o, nullptr);
  o.replay = ReplayMode::On;
  const Fingerprint replayed = extract_fingerprint(*net, o, nullptr, watch);
  EXPECT_LT(smallest, o.n) << "no compaction: the recording was never made again";
  int converged = 0;
  for (uint8_t c : direct.converged) converged += c;
  EXPECT_GE(converged, 3);
  expect_same_bits(direct, replayed);
}

// IGSM's and CW-L2's stretches between two reads (of the flags; of CW-L2's loss for its
// early abort) recorded and replayed give the direct loop's bits; the progress reports
// count the replays, so a loop that never replayed fails here.
TEST(Extract, ReplayedIgsmAndCwl2GiveTheSameBits) {
  auto net = testing::seeded_lenet5();
  for (const char* method : {"igsm", "cwl2"}) {
    SCOPED_TRACE(method);
    ExtractOptions o = small(method);
    o.check_every = 4;   // igsm: 3 iterations per stretch
    o.iters = 60;        // cwl2: the loss is read every 6 iterations, 5 per stretch
    o.binary_steps = 3;
    o.target = "random";
    o.c0 = 1e3;          // cwl2, seeded weights: logits barely move, c must be large
    o.lr = 0.1;
    o.eps = 0.3;         // igsm: room and step enough for rows to succeed (and compact)
    o.alpha = 0.01;
    o.compact_at = 1;
    int64_t replays = 0;
    auto watch = [&](const ExtractProgress& p) { replays = std::max(replays, p.replays); };
    o.replay = ReplayMode::Off;
    const Fingerprint direct = extract_fingerprint(*net, o, nullptr, watch);
    EXPECT_EQ(replays, 0);
    o.replay = ReplayMode::On;
    const Fingerprint replayed = extract_fingerprint(*net, o, nullptr, watch);
    EXPECT_GT(replays, 0) << "no stretch was replayed";
    expect_same_bits(direct, replayed);
    int converged = 0;
    for (uint8_t c : direct.converged) converged += c;
    EXPECT_GE(converged, 3);
    // Bit for bit (NaN for rows without a distance).
    ASSERT_EQ(direct.final_loss.size(), replayed.final_loss.size());
    EXPECT_EQ(std::memcmp(direct.final_loss.data(), replayed.final_loss.data(),
                          direct.final_loss.size() * sizeof(float)),
              0);
  }
}

// IGSM rows caught in a cycle of points stop at the point their budget ends on
// (CycleWatch): the fingerprint is the one every row running its whole budget gives, bit
// for bit, with the flags read every iteration or every 4 (the period then a multiple of
// 4), with the batch compacted or not. Rows must have cycled, or the test proves nothing.
void expect_cycles_stopped_exactly(Network& net, int64_t every, double compact_at) {
  SCOPED_TRACE("check_every " + std::to_string(every) + ", compact_at " +
               std::to_string(compact_at));
  ExtractOptions o = small("igsm");
  o.eps = 0.02;  // seeded weights: most rows end circling in the eps box
  o.alpha = 0.004;
  o.target = "random";
  o.iters = 200;
  o.check_every = every;
  o.compact_at = compact_at;
  int64_t cycled = 0;
  auto watch = [&](const ExtractProgress& p) { cycled = std::max(cycled, p.cycled); };
  o.stop_cycles = false;
  const Fingerprint whole = extract_fingerprint(net, o, nullptr, watch);
  EXPECT_EQ(cycled, 0);
  o.stop_cycles = true;
  const Fingerprint stopped = extract_fingerprint(net, o, nullptr, watch);
  EXPECT_GE(cycled, 3) << "too few rows cycled: the test proves little";
  int unconverged = 0;
  for (uint8_t c : whole.converged) unconverged += c == 0;
  EXPECT_GE(unconverged, cycled);
  expect_same_bits(whole, stopped);
  ASSERT_EQ(whole.final_loss.size(), stopped.final_loss.size());
  EXPECT_EQ(std::memcmp(whole.final_loss.data(), stopped.final_loss.data(),
                        whole.final_loss.size() * sizeof(float)),
            0);
}

TEST(Extract, IgsmRowsInACycleStopWithTheBudgetsPoint) {
  auto net = testing::seeded_lenet5();
  for (int64_t every : {1, 4})
    for (double compact_at : {0.0, 0.25}) expect_cycles_stopped_exactly(*net, every, compact_at);
}

// On CUDA the flags are read every 10 iterations and the stretches between replay as CUDA
// graphs; the batch keeps its size (a compaction would change cuDNN's algorithms, and with
// them the rounding, in both runs differently).
TEST(ExtractCuda, IgsmRowsInACycleStopWithTheBudgetsPoint) {
  IPG_REQUIRE_CUDA();
  auto net = testing::seeded_lenet5();
  net->to(Device::cuda());
  expect_cycles_stopped_exactly(*net, 10, 0.0);
}

// When the budget does not end on a check (iters not a multiple of check_every), the
// point it ends on was never checked: no row stops early.
TEST(Extract, IgsmCyclesAreNotCutWhenTheBudgetEndsBetweenChecks) {
  auto net = testing::seeded_lenet5();
  ExtractOptions o = small("igsm");
  o.eps = 0.02;
  o.alpha = 0.004;
  o.target = "random";
  o.iters = 201;
  o.check_every = 4;
  int64_t cycled = 0;
  const Fingerprint fp = extract_fingerprint(
      *net, o, nullptr, [&](const ExtractProgress& p) { cycled = std::max(cycled, p.cycled); });
  EXPECT_EQ(cycled, 0);
  EXPECT_EQ(fp.size(), o.n);
}

// The batch sizes a compaction takes: on the CPU the live rows rounded up to 4 (an
// iteration costs in proportion to its rows, a plan little); on CUDA powers of two from 8,
// few sizes whose plans (and cuDNN algorithm searches) every chunk shares.
TEST(Extract, CompactionBucketsPerDevice) {
  const Device cpu = Device::cpu(), gpu = Device::cuda(0);
  for (const auto& [live, on_cpu, on_gpu] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 4, 8}, {4, 4, 8}, {5, 8, 8}, {9, 12, 16},
        {19, 20, 32}, {33, 36, 64}, {75, 76, 128}}) {
    EXPECT_EQ(extract_detail::Search::compact_rows(live, cpu), on_cpu) << live << " live rows";
    EXPECT_EQ(extract_detail::Search::compact_rows(live, gpu), on_gpu) << live << " live rows";
  }
  EXPECT_EQ(default_compact_at(cpu), 0.75);
  EXPECT_EQ(default_compact_at(gpu), 0.25);
}

// On the CPU, 5 chunks of 12 compacted whenever a row finishes take only the buckets' sizes
// (12, then 8 and 4); the chunk's plan is built once and shared (the final pass of every
// chunk takes it), a compaction's plan at most once per compaction (the plan a compaction
// leaves is dropped, so a later chunk may build it again); the points are those of the
// run without compaction (to rounding: other batch sizes).
TEST(Extract, CpuCompactionsFollowTheLiveRowsAndChunksShareTheirPlan) {
  auto net = testing::seeded_lenet5();
  ExtractOptions o = small("ipguard");
  o.n = 60;
  o.batch = 12;
  o.compact_at = 1;
  int64_t plans = 0, compactions = 0, last_rows = 0;
  std::set<int64_t> sizes;
  auto watch = [&](const ExtractProgress& p) {
    plans = std::max(plans, p.plans);
    sizes.insert(p.batch_rows);
    if (p.batch_rows != last_rows && p.batch_rows != o.batch) ++compactions;
    last_rows = p.batch_rows;
  };
  const Fingerprint fp = extract_fingerprint(*net, o, nullptr, watch);
  EXPECT_TRUE(sizes.count(4) || sizes.count(8)) << "no compaction happened";
  for (int64_t rows : sizes) EXPECT_TRUE(rows == 12 || rows == 8 || rows == 4) << rows;
  EXPECT_GE(compactions, 2);
  EXPECT_GE(plans, 2);
  EXPECT_LE(plans, 1 + compactions) << "the plan of 12 rows was built again for a later chunk";
  o.compact_at = 0;
  const Fingerprint whole = extract_fingerprint(*net, o, nullptr);
  EXPECT_EQ(fp.converged, whole.converged);
  EXPECT_EQ(fp.labels.to_vector_i32(), whole.labels.to_vector_i32());
  const std::vector<float> a = fp.points.to_vector(), b = whole.points.to_vector();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5f) << "element " << i;
}

TEST(Extract, AutomaticBatchOnTheCpuIsThePapersFingerprint) {
  auto net = testing::seeded_lenet5();
  EXPECT_EQ(auto_batch(*net, 250), 100);
  EXPECT_EQ(auto_batch(*net, 12), 12);
  ExtractOptions o = small("ipguard");
  o.n = 30;
  o.batch = 0;
  const Fingerprint automatic = extract_fingerprint(*net, o, nullptr);
  o.batch = 7;  // chunks of 7: the same points (every row's arithmetic is its own)
  const Fingerprint chunked = extract_fingerprint(*net, o, nullptr);
  EXPECT_EQ(automatic.converged, chunked.converged);
  EXPECT_EQ(automatic.labels.to_vector_i32(), chunked.labels.to_vector_i32());
}

// The CPU's and the GPU's extractions of the same candidates agree as
// tests/support/fingerprint_agree.h says.
void expect_devices_agree(const Fingerprint& cpu, const Fingerprint& gpu, int64_t late_from) {
  testing::expect_extractions_agree(cpu, gpu, late_from, "the CPU", "the GPU");
}

// On a GPU the automatic batch holds far more than the CPU's 100: 10,000 LeNet-5
// candidates in one batch (the target) on any recent GPU.
TEST(ExtractCuda, AutomaticBatchFillsTheDevice) {
  IPG_REQUIRE_CUDA();
  auto net = testing::seeded_lenet5();
  net->to(Device::cuda());
  EXPECT_EQ(auto_batch(*net, 10000), 10000);
}

TEST(ExtractCuda, ReplayedStretchesGiveTheSameBitsAndAgreeWithTheCpu) {
  IPG_REQUIRE_CUDA();
  auto cpu = testing::seeded_lenet5(), gpu = testing::seeded_lenet5();
  gpu->to(Device::cuda());
  ExtractOptions o = small("ipguard");
  o.check_every = 10;
  o.replay = ReplayMode::Off;
  const Fingerprint direct = extract_fingerprint(*gpu, o, nullptr);
  o.replay = ReplayMode::On;  // a CUDA graph per stretch
  int64_t replays = 0;
  std::string note;
  auto watch = [&](const ExtractProgress& p) {
    replays = std::max(replays, p.replays);
    if (!p.replay_note.empty()) note = p.replay_note;
  };
  const Fingerprint replayed = extract_fingerprint(*gpu, o, nullptr, watch);
  // A capture that fails falls back to the direct loop: the same bits, nothing replayed.
  EXPECT_GT(replays, 0) << "no CUDA graph was replayed: " << note;
  expect_same_bits(direct, replayed);
  o.replay = ReplayMode::Off;
  o.check_every = 1;
  const Fingerprint on_cpu = extract_fingerprint(*cpu, o, nullptr);
  expect_devices_agree(on_cpu, replayed, o.iters * 3 / 4);
}

// IGSM and CW-L2 on the seeded LeNet-5 at a budget where most rows succeed: its logits
// span ~0.2, so IGSM needs a wide ball and CW-L2 a large constant and step (with the
// defaults every row stays unconverged, and a comparison of unconverged rows would prove
// nothing).
ExtractOptions igsm_cwl2_case(const std::string& method) {
  ExtractOptions o = small(method);
  o.check_every = 10;
  o.iters = 200;
  o.binary_steps = 3;
  o.target = "random";
  o.eps = 1.0;
  o.alpha = 0.02;
  o.c0 = 1e3;
  o.lr = 0.1;
  return o;
}

// The premise of the CUDA test below, checked where it always runs: most rows converge.
TEST(Extract, IgsmAndCwl2CaseConvergesOnMostRows) {
  auto net = testing::seeded_lenet5();
  for (const char* method : {"igsm", "cwl2"}) {
    const Fingerprint fp = extract_fingerprint(*net, igsm_cwl2_case(method), nullptr);
    int64_t converged = 0;
    for (int64_t r = 0; r < fp.size(); ++r) converged += fp.converged[r] ? 1 : 0;
    std::printf("%s: %lld of %lld rows converged\n", method, static_cast<long long>(converged),
                static_cast<long long>(fp.size()));
    EXPECT_GE(converged * 4, fp.size() * 3) << method;
  }
}

// On CUDA IGSM's and CW-L2's stretches run as CUDA graphs: the same bits as the same
// iterations run directly, and the CPU's converged set and labels (>= 99%).
TEST(ExtractCuda, ReplayedIgsmAndCwl2GiveTheSameBitsAndAgreeWithTheCpu) {
  IPG_REQUIRE_CUDA();
  auto cpu = testing::seeded_lenet5(), gpu = testing::seeded_lenet5();
  gpu->to(Device::cuda());
  for (const char* method : {"igsm", "cwl2"}) {
    SCOPED_TRACE(method);
    ExtractOptions o = igsm_cwl2_case(method);
    int64_t replays = 0;
    std::string note;
    auto watch = [&](const ExtractProgress& p) {
      replays = std::max(replays, p.replays);
      if (!p.replay_note.empty()) note = p.replay_note;
    };
    o.replay = ReplayMode::Off;
    const Fingerprint direct = extract_fingerprint(*gpu, o, nullptr);
    o.replay = ReplayMode::On;
    const Fingerprint replayed = extract_fingerprint(*gpu, o, nullptr, watch);
    EXPECT_GT(replays, 0) << "no CUDA graph was replayed: " << note;
    expect_same_bits(direct, replayed);
    o.replay = ReplayMode::Off;
    const Fingerprint on_cpu = extract_fingerprint(*cpu, o, nullptr);
    // CW-L2 counts the whole chunk's iterations for every row: no row converges "late".
    expect_devices_agree(on_cpu, replayed, std::string(method) == "cwl2" ? 0 : o.iters * 3 / 4);
  }
}

TEST(Extract, BadOptionsAreRefused) {
  auto net = testing::seeded_lenet5();
  auto bad = [&](auto change) {
    ExtractOptions o = small("ipguard");
    change(o);
    EXPECT_THROW(extract_fingerprint(*net, o, nullptr), std::invalid_argument);
  };
  bad([](ExtractOptions& o) { o.method = "cwl3"; });
  bad([](ExtractOptions& o) { o.n = 0; });
  bad([](ExtractOptions& o) { o.k = -1; });
  bad([](ExtractOptions& o) { o.lr = 0; });
  bad([](ExtractOptions& o) { o.eps = 2; });
  bad([](ExtractOptions& o) { o.init = "train"; });  // no training images given
  bad([](ExtractOptions& o) { o.target = "most-likely"; });
  bad([](ExtractOptions& o) { o.compact_at = 1.5; });
  bad([](ExtractOptions& o) { o.check_every = -1; });
  bad([](ExtractOptions& o) { o.batch = -1; });
}

}  // namespace
}  // namespace ipg
