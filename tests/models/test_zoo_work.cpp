// The zoo's models made apart from build_zoo (models/zoo_work.h): the staging names and
// which sweep values a shared build may leave unmade.
#include <gtest/gtest.h>

#include "models/zoo_work.h"

namespace ipg {
namespace {

TEST(ZooStaging, NamedByTheCommandWithoutDeviceAndThreads) {
  const std::string a = "ipguard --device cpu --threads 1 --seed 7 train --arch lenet5 --out z/n.h5";
  const std::string b = "ipguard --device cuda:0 --threads 8 --seed 7 train --arch lenet5 --out z/n.h5";
  const std::string c = "ipguard --device cpu --threads 1 --seed 8 train --arch lenet5 --out z/n.h5";
  EXPECT_EQ(staged_model_path("d", a), staged_model_path("d", b));
  EXPECT_NE(staged_model_path("d", a), staged_model_path("d", c));
  EXPECT_EQ(staged_model_path("d", a).rfind("d/model-", 0), 0u);
}

std::vector<ZooWork> sweep_then(const std::vector<double>& values) {
  std::vector<ZooWork> work;
  for (double v : values) {
    ZooWork w;
    w.sweep = "wp";
    w.param = v;
    work.push_back(w);
  }
  work.emplace_back();  // a model after the sweep
  return work;
}

TEST(ZooStaging, SweepValuesAfterAKnownStopAreNotNeeded) {
  const std::vector<ZooWork> work = sweep_then({0.1, 0.2, 0.3, 0.4});
  std::vector<double> acc(work.size(), -1);
  const double target = 0.90, limit = 0.03;
  for (size_t i = 0; i < work.size(); ++i)  // nothing known: everything is needed
    EXPECT_FALSE(sweep_stopped_before(work, acc, i, target, limit)) << i;
  acc[1] = 0.88;  // within the limit: nothing stops
  for (size_t i = 0; i < work.size(); ++i) EXPECT_FALSE(sweep_stopped_before(work, acc, i, target, limit));
  acc[2] = 0.86;  // 0.3 stops the sweep: 0.4 is not needed; 0.3 itself and the rest are
  EXPECT_FALSE(sweep_stopped_before(work, acc, 2, target, limit));
  EXPECT_TRUE(sweep_stopped_before(work, acc, 3, target, limit));
  EXPECT_FALSE(sweep_stopped_before(work, acc, 4, target, limit));  // not a sweep value
}

TEST(ZooStaging, AStopRecordedByAnEarlierRunCounts) {
  std::vector<ZooWork> work = sweep_then({0.1, 0.2, 0.3});
  const std::vector<double> acc(work.size(), -1);
  work[0].known_accuracy = 0.80;  // the old manifest's stop at 0.1
  EXPECT_TRUE(sweep_stopped_before(work, acc, 1, 0.90, 0.03));
  EXPECT_TRUE(sweep_stopped_before(work, acc, 2, 0.90, 0.03));
  EXPECT_FALSE(sweep_stopped_before(work, acc, 0, 0.90, 0.03));
}

TEST(ZooStaging, OneSweepsStopLeavesTheNextSweepAlone) {
  std::vector<ZooWork> work = sweep_then({0.1, 0.2});
  work.pop_back();
  ZooWork fp;
  fp.sweep = "fp";
  fp.param = 1 / 16.0;
  work.push_back(fp);
  std::vector<double> acc(work.size(), -1);
  acc[0] = 0.5;
  EXPECT_TRUE(sweep_stopped_before(work, acc, 1, 0.90, 0.03));
  EXPECT_FALSE(sweep_stopped_before(work, acc, 2, 0.90, 0.03));
}

}  // namespace
}  // namespace ipg
