// Settings sharing one batch in the experiment (ExperimentOptions::share_batch): which
// settings batch_groups puts together, and on the tiny zoo (tiny_zoo.h) a run with shared
// batches gives every setting the fingerprint, rates and counts it gets alone, while its
// first draws did run as shared batches and the record says so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "engine/sha256.h"
#include "fingerprint/experiment_folder.h"
#include "fingerprint/experiment_tables.h"
#include "tests/fingerprint/tiny_zoo.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

Setting setting(Method m, double param, Mode mode, Convergence c = Convergence::Paper) {
  Setting s;
  s.method = m;
  s.param = param;
  s.mode = mode;
  s.convergence = c;
  return s;
}

constexpr Mode TL{Init::Train, TargetLabel::LeastLikely}, TR{Init::Train, TargetLabel::Random},
    RL{Init::Random, TargetLabel::LeastLikely}, RR{Init::Random, TargetLabel::Random};

TEST(BatchGroups, SameMethodAndBudgetShare) {
  std::vector<Setting> s = {
      setting(Method::IPGuard, 3, TL),                               // 0
      setting(Method::CWL2, 0, TL),                                  // 1
      setting(Method::IPGuard, 10, RR, Convergence::UntilConverged),  // 2: round 0 shares
      setting(Method::FGSM, 0.1, TR),                                // 3
      setting(Method::CWL2, 1, TR),                                  // 4: any kappa
      setting(Method::FGSM, 0.3, TL),                                // 5: another eps
      setting(Method::FGSM, 0.1, RL),                                // 6
      setting(Method::IPGuard, 3, RL),                               // 7: another budget
      setting(Method::Random, 0, TL),                                // 8
      setting(Method::CWL2, 0, RL),                                  // 9: other binary steps
  };
  s[7].budget.iters = 50;
  s[9].budget.binary_steps = 4;
  ExperimentOptions o;
  const std::vector<std::vector<size_t>> alone = batch_groups(s, o);
  ASSERT_EQ(alone.size(), s.size());
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(alone[i], std::vector<size_t>{i});
  o.share_batch = true;
  const std::vector<std::vector<size_t>> shared = batch_groups(s, o);
  const std::vector<std::vector<size_t>> want = {{0, 2}, {1, 4}, {3, 6}, {5}, {7}, {8}, {9}};
  EXPECT_EQ(shared, want);
}

class ExperimentShare : public test::TinyZooSuite {};

struct Outcome {
  ExperimentRecord rec;
  std::map<size_t, Fingerprint> fps;              // by setting index
  std::map<size_t, size_t> first_draw_shared;     // setting -> settings in its round-0 batch
};

Outcome run_grid(const fs::path& zoo_dir, const std::vector<Setting>& planned, bool share,
        const Tensor* train_images) {
  Zoo zoo = scan_zoo(zoo_dir.string());
  LoadedZoo loaded = load_zoo(zoo, Device::cpu());
  Outcome r;
  r.rec = new_record(zoo, loaded);
  r.rec.device = "cpu";
  r.rec.options.n = 30;
  r.rec.options.seed = 11;
  r.rec.options.max_draws_factor = 3;
  r.rec.options.share_batch = share;
  r.rec.planned = planned;
  ExperimentHooks hooks;
  hooks.progress = [&](const ExperimentProgress& p) {
    if (p.phase == ExperimentProgress::Phase::Extracting && p.round == 0)
      r.first_draw_shared[p.setting] = p.shared;
  };
  hooks.on_result = [&](SettingResult& res, const Fingerprint& fp) {
    for (size_t i = 0; i < planned.size(); ++i)
      if (planned[i] == res.setting) r.fps[i] = fp;
  };
  r.rec.results = run_experiment(loaded, planned, r.rec.options, train_images, Device::cpu(), hooks);
  return r;
}

TEST_F(ExperimentShare, EverySettingGetsItsOwnResult) {
  std::vector<Setting> planned = {
      setting(Method::IPGuard, 3, TL),
      setting(Method::Random, 0, TL),
      setting(Method::FGSM, 0.1, TR, Convergence::UntilConverged),
      setting(Method::IPGuard, 1, RR, Convergence::UntilConverged),
      setting(Method::FGSM, 0.1, TL),
      setting(Method::CWL2, 0, TL),  // each with its own early abort in the shared batch
      setting(Method::CWL2, 2, RR),
  };
  for (size_t i : {5, 6}) {
    planned[i].budget.iters = 30;
    planned[i].budget.binary_steps = 3;
  }
  const Outcome alone = run_grid(root() / "zoo", planned, false, &train().images);
  const Outcome shared = run_grid(root() / "zoo", planned, true, &train().images);
  ASSERT_EQ(alone.rec.results.size(), planned.size());
  ASSERT_EQ(shared.rec.results.size(), planned.size());

  // The first draws ran as batches of the groups {0, 3}, {1}, {2, 4}, {5, 6}: each group's
  // batch reported once, under its first setting.
  EXPECT_EQ(alone.first_draw_shared,
            (std::map<size_t, size_t>{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}}));
  EXPECT_EQ(shared.first_draw_shared, (std::map<size_t, size_t>{{0, 2}, {1, 1}, {2, 2}, {5, 2}}));
  const std::vector<int64_t> want_shared = {2, 1, 2, 2, 2, 2, 2};
  const std::string target_sha = sha256_file((root() / "zoo" / "target.h5").string());
  for (size_t i = 0; i < planned.size(); ++i) {
    const SettingResult &a = alone.rec.results[i], &b = shared.rec.results[i];
    SCOPED_TRACE(setting_label(planned[i]));
    EXPECT_TRUE(b.setting == planned[i]);  // results in planned order
    EXPECT_EQ(a.shared, 1);
    EXPECT_EQ(b.shared, want_shared[i]);
    // The same bits on the CPU: points, labels, which candidates were kept, every rate.
    const Fingerprint &fa = alone.fps.at(i), &fb = shared.fps.at(i);
    EXPECT_EQ(fa.points.to_vector(), fb.points.to_vector());
    EXPECT_EQ(fa.labels.to_vector_i32(), fb.labels.to_vector_i32());
    EXPECT_EQ(fa.converged, fb.converged);
    EXPECT_EQ(fa.iterations, fb.iterations);
    EXPECT_EQ(fb.model_sha256, target_sha);  // the model it was taken from, as extract's
    EXPECT_EQ(a.converged, b.converged);
    EXPECT_EQ(a.drawn, b.drawn);
    EXPECT_EQ(a.rounds, b.rounds);
    EXPECT_EQ(a.origin, b.origin);
    EXPECT_EQ(a.rates(SuspectGroup::Positive), b.rates(SuspectGroup::Positive));
    EXPECT_EQ(a.rates(SuspectGroup::Negative), b.rates(SuspectGroup::Negative));
    EXPECT_EQ(a.aruc, b.aruc);
    EXPECT_GE(b.extract_seconds, 0.0);
  }
  // FGSM until converged drew more rounds after its shared first draw.
  EXPECT_GT(shared.rec.results[2].drawn, 30);
  // Members of one group start from different points (their modes differ): sharing a
  // batch did not give them one setting's rows.
  EXPECT_NE(shared.fps.at(0).points.to_vector(), shared.fps.at(3).points.to_vector());
  EXPECT_NE(shared.fps.at(2).points.to_vector(), shared.fps.at(4).points.to_vector());

  // The record keeps the sharing (JSON round trip) and Table 8 says how times were split.
  ExperimentRecord rec = shared.rec;
  rec.version = "test";
  const ExperimentRecord back = parse_results(results_text(rec), "results.json");
  EXPECT_TRUE(back.options.share_batch);
  ASSERT_EQ(back.results.size(), planned.size());
  for (size_t i = 0; i < planned.size(); ++i) EXPECT_EQ(back.results[i].shared, want_shared[i]);
  const std::string t8 = render_text(table8(rec));
  EXPECT_NE(t8.find("/2"), std::string::npos) << t8;
  EXPECT_NE(t8.find("divided equally"), std::string::npos) << t8;
  EXPECT_EQ(render_text(table8(alone.rec)).find("divided equally"), std::string::npos);
}

}  // namespace
}  // namespace ipg
