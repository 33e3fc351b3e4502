// The zoo builder (models/zoo.h): the sweeps' stopping rule with a stub accuracy, seeds
// from names, duplicate detection by weights, the checks made
// before any work, and tiny real builds (Fashion-MNIST, 1 epoch on 256 images): duplicates
// counted once, an interrupted build resumed to the same manifest, a failing model named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include "engine/hdf5.h"
#include "engine/sha256.h"
#include "models/forest_file.h"
#include "models/recipe.h"
#include "models/zoo.h"
#include "models/zoo_plan.h"
#include "models/zoo_resume.h"
#include "tests/support/text_files.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

const std::string kTarget = std::string(IPG_TEST_DATA_DIR) + "/../../weights/lenet5-fashion-mnist.h5";

bool have_fashion_mnist() { return fs::exists(std::string(kFashionMnistDir)); }

using testing::read_text;
using testing::write_text;

class ZooDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ipg_zoo_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // 1 epoch on 256 images, one thread: seconds per model.
  ZooOptions tiny(const std::string& name) const {
    ZooOptions o;
    o.target = kTarget;
    o.out = path(name);
    o.limit = 256;
    o.epochs = 1;
    o.batch = 64;
    o.trees = 2;
    o.seed = 5;
    o.threads = 1;
    return o;
  }
  fs::path dir_;
};

// ---- the stopping rule ----

TEST(ZooSweep, ValuesAreThePapersSteps) {
  const std::vector<double> wp = sweep_values(Attack::WeightPrune);
  ASSERT_EQ(wp.size(), 9u);
  for (int k = 1; k <= 9; ++k) EXPECT_EQ(wp[k - 1], k / 10.0);  // 0.3 itself, not 0.1 * 3
  const std::vector<double> fp = sweep_values(Attack::FilterPrune);
  ASSERT_EQ(fp.size(), 15u);
  for (int k = 1; k <= 15; ++k) EXPECT_EQ(fp[k - 1], k / 16.0);
  EXPECT_THROW(sweep_values(Attack::FTLL), std::invalid_argument);
}

TEST(ZooSweep, KeepsValuesUpToThreePointsAndStopsAtTheFirstBeyond) {
  // Accuracy falls a point per step from 0.90: p = 0.1, 0.2, 0.3 lose 1, 2, 3 points (kept:
  // "no larger than 3%"), p = 0.4 loses 4 (stops, not kept); nothing after it is measured.
  std::vector<double> asked;
  const SweepResult r =
      run_sweep(sweep_values(Attack::WeightPrune), 0.90, 0.03, [&](double p) {
        asked.push_back(p);
        return 0.90 - 0.01 * double(asked.size());
      });
  EXPECT_EQ(r.kept, (std::vector<double>{0.1, 0.2, 0.3}));
  ASSERT_TRUE(r.stopped_at.has_value());
  EXPECT_EQ(*r.stopped_at, 0.4);
  EXPECT_NEAR(r.stop_accuracy, 0.86, 1e-12);
  EXPECT_EQ(asked, (std::vector<double>{0.1, 0.2, 0.3, 0.4}));
}

TEST(ZooSweep, ALossOfExactlyThreePointsIsKept) {
  // 0.9049 - 0.8749 is 0.030000000000000027 in doubles: still "no larger than 3%".
  const SweepResult r = run_sweep({0.1, 0.2}, 0.9049, 0.03, [](double p) {
    return p < 0.15 ? 0.8749 : 0.8748;
  });
  EXPECT_EQ(r.kept, (std::vector<double>{0.1}));
  EXPECT_EQ(r.stopped_at.value_or(-1), 0.2);
}

TEST(ZooSweep, AllKeptOrNoneKept) {
  int calls = 0;
  SweepResult all = run_sweep(sweep_values(Attack::FilterPrune), 0.9, 0.03, [&](double) {
    ++calls;
    return 0.95;  // better than the target: no loss at all
  });
  EXPECT_EQ(all.kept.size(), 15u);
  EXPECT_FALSE(all.stopped_at.has_value());
  EXPECT_EQ(calls, 15);
  calls = 0;
  SweepResult none = run_sweep(sweep_values(Attack::FilterPrune), 0.9, 0.03, [&](double) {
    ++calls;
    return 0.5;
  });
  EXPECT_TRUE(none.kept.empty());
  EXPECT_EQ(none.stopped_at.value_or(-1), 1 / 16.0);
  EXPECT_EQ(calls, 1);
}

TEST(ZooSeed, DependsOnTheGlobalSeedAndTheNameAlone) {
  EXPECT_EQ(model_seed(1, "negative/lenet5-seed1"), model_seed(1, "negative/lenet5-seed1"));
  EXPECT_NE(model_seed(1, "negative/lenet5-seed1"), model_seed(1, "negative/lenet5-seed2"));
  EXPECT_NE(model_seed(1, "negative/lenet5-seed1"), model_seed(2, "negative/lenet5-seed1"));
  EXPECT_LT(model_seed(7, "positive/wp"), uint64_t{1} << 31);
}

// ---- duplicates: by weights ----

std::unique_ptr<Network> net(const std::string& arch, uint64_t seed) {
  ModelConfig c;
  c.arch = arch;
  c.seed = seed;
  c.mean = {0.3f};
  c.std = {0.3f};
  return make_network(c);
}

TEST(ZooDuplicates, IdenticalWeightsMatchAndAnyDifferenceDoesNot) {
  auto a = net("lenet5", 1), b = net("lenet5", 1), c = net("lenet5", 2);
  EXPECT_EQ(weights_sha256(*a), weights_sha256(*b));  // two identical networks
  EXPECT_NE(weights_sha256(*a), weights_sha256(*c));  // two differing ones
  // One weight one ulp apart.
  Tensor& w = *b->named_parameters().back().second;
  w.data()[0] = std::nextafter(w.data()[0], 1.f);
  EXPECT_NE(weights_sha256(*a), weights_sha256(*b));
  // The input normalization is part of the function too.
  ModelConfig cfg = a->config();
  cfg.mean = {0.31f};
  EXPECT_NE(weights_sha256(*a), weights_sha256(*make_network(cfg)));
}

TEST(ZooDuplicates, BatchNormStatisticsCount) {
  auto a = net("resnet20", 1), b = net("resnet20", 1);
  EXPECT_EQ(weights_sha256(*a), weights_sha256(*b));
  Tensor& stat = *b->named_buffers().front().second;
  stat.data()[0] += 0.5f;
  EXPECT_NE(weights_sha256(*a), weights_sha256(*b));
}

TEST_F(ZooDir, FileDigestIgnoresProvenance) {
  auto a = net("lenet5", 3);
  Provenance p1, p2;
  p1.recipe = "one way";
  p2.recipe = "another";
  save_model(*a, path("a.h5"), p1);
  save_model(*a, path("b.h5"), p2);
  EXPECT_NE(sha256_file(path("a.h5")), sha256_file(path("b.h5")));
  EXPECT_EQ(weights_sha256_file(path("a.h5")), weights_sha256_file(path("b.h5")));
  EXPECT_EQ(weights_sha256_file(path("a.h5")), weights_sha256(*a));
}

// ---- bad input, before any work ----

TEST_F(ZooDir, BadPlansAndTargetsAreRefusedBeforeAnything) {
  ZooPlan plan;
  plan.positives.push_back({parse_post_process("ftll"), false});
  ZooOptions o = tiny("z");
  EXPECT_NO_THROW(check_zoo(plan, o));
  // Not a network: a text file, a random forest.
  write_text(path("not.h5"), "not a model");
  o.target = path("not.h5");
  EXPECT_THROW(check_zoo(plan, o), std::invalid_argument);
  ForestArrays fa;
  fa.in_channels = 1;
  fa.height = 28;
  fa.width = 28;
  fa.classes = 10;
  fa.feature = {-1};
  fa.threshold = {0};
  fa.left = {-1};
  fa.right = {-1};
  fa.value = std::vector<float>(10, 0.1f);
  fa.tree_offsets = {0, 1};
  save_forest(RandomForest(fa), path("rf.h5"));
  o.target = path("rf.h5");
  try {
    check_zoo(plan, o);
    FAIL() << "a forest target was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("random forest"), std::string::npos) << e.what();
  }
  o.target = kTarget;
  // Unknown architectures, a sweep and one of its values, a file planned twice.
  ZooPlan bad = plan;
  bad.negatives.push_back({"nosuch", 1});
  EXPECT_THROW(check_zoo(bad, o), std::invalid_argument);
  bad = plan;
  bad.adaptive.push_back({Extraction::Distill, "rf"});
  EXPECT_THROW(check_zoo(bad, o), std::invalid_argument);
  bad = plan;
  bad.positives.push_back({parse_post_process("wp:0.2"), false});
  bad.positives.push_back({{Attack::WeightPrune, 0}, true});
  EXPECT_THROW(check_zoo(bad, o), std::invalid_argument);
  bad = plan;
  bad.positives.push_back({parse_post_process("ftll"), false});
  EXPECT_THROW(check_zoo(bad, o), std::invalid_argument);
  // A zoo already there: only --resume continues it.
  fs::create_directories(o.out);
  write_text(o.out + "/manifest.json", "{}");
  EXPECT_THROW(check_zoo(plan, o), std::invalid_argument);
  o.resume = true;
  EXPECT_NO_THROW(check_zoo(plan, o));
  EXPECT_FALSE(fs::exists(o.out + "/positive"));  // nothing written by the checks
  // No manifest but a file the zoo would write (a zoo put together by hand): refused,
  // naming it, unless resuming; a file the plan does not write is no obstacle.
  fs::remove(o.out + "/manifest.json");
  o.resume = false;
  write_text(o.out + "/notes.txt", "mine");
  EXPECT_NO_THROW(check_zoo(plan, o));
  fs::create_directories(o.out + "/positive");
  write_text(o.out + "/positive/ftll.h5", "hand-made");
  try {
    check_zoo(plan, o);
    FAIL() << "a folder holding positive/ftll.h5 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("already holds positive/ftll.h5"), std::string::npos)
        << e.what();
  }
  // Resuming takes the files for an interrupted build's, when they can be: a file that is
  // no model is refused, naming it; a model is taken (the build makes it anew).
  o.resume = true;
  try {
    check_zoo(plan, o);
    FAIL() << "--resume took a hand-made positive/ftll.h5 for a model";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("positive/ftll.h5: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a model the zoo made"), std::string::npos) << e.what();
  }
  fs::copy_file(o.target, o.out + "/positive/ftll.h5", fs::copy_options::overwrite_existing);
  EXPECT_NO_THROW(check_zoo(plan, o));
}

TEST(ZooParse, AttacksReadBackExactly) {
  for (const char* s : {"ftll", "ftal", "rtll", "rtal", "wp:0.2", "fp:0.0625", "wp:0.3"})
    EXPECT_EQ(to_string(parse_post_process(s)), s);
  EXPECT_EQ(file_stem(parse_post_process("fp:0.0625")), "fp-0.0625");
  EXPECT_EQ(parse_post_process("wp:0.3").param, 3 / 10.0);
  for (const char* s : {"wp:0", "wp:1", "fp:1.5", "wp:", "wp:x", "nope", "ftll:0.1"})
    EXPECT_THROW(parse_post_process(s), std::invalid_argument) << s;
  EXPECT_EQ(exact_number(1 / 16.0), "0.0625");
  EXPECT_EQ(exact_number(0.1), "0.1");
}

// ---- tiny real builds ----

TEST_F(ZooDir, SamePruningIsADuplicateCountedOnceAndOtherPruningIsNot) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed";
  // LeNet-5's convs have 6 and 16 filters: c = 1/16 and c = 0.1 both prune one filter of
  // the second (floor(1.6) = 1) and none of the first; c = 2/16 prunes two. The values of
  // one attack share a seed, so the first two are the same model.
  ZooPlan plan;
  for (const char* a : {"fp:0.0625", "fp:0.1", "fp:0.125"})
    plan.positives.push_back({parse_post_process(a), false});
  const ZooResult r = build_zoo(plan, tiny("z"));
  const ZooManifest& m = r.manifest;
  ASSERT_EQ(m.models.size(), 4u);
  EXPECT_EQ(m.models[1].duplicate_of, "");
  EXPECT_EQ(m.models[2].file, "positive/fp-0.1.h5");
  EXPECT_EQ(m.models[2].duplicate_of, "positive/fp-0.0625.h5");
  EXPECT_EQ(m.models[2].weights_sha256, m.models[1].weights_sha256);
  EXPECT_EQ(m.models[3].duplicate_of, "");
  EXPECT_NE(m.models[3].weights_sha256, m.models[1].weights_sha256);
  // The second filter c = 2/16 prunes (conv2 filter 1 of the shipped target) is dead on
  // the training images: the two models differ in its weights alone and label every test
  // image with the same logits. Kept, and said so.
  EXPECT_EQ(m.models[3].same_outputs_as, "positive/fp-0.0625.h5");
  EXPECT_EQ(m.models[1].same_outputs_as, "");
  EXPECT_EQ(r.same_outputs, 1);
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_TRUE(fs::exists(path("z/positive/fp-0.0625.h5")));
  EXPECT_FALSE(fs::exists(path("z/positive/fp-0.1.h5")));  // not kept
  EXPECT_TRUE(fs::exists(path("z/positive/fp-0.125.h5")));
  // What was written reads back and checks.
  const ZooManifest back = read_manifest(path("z/manifest.json"));
  EXPECT_EQ(manifest_text(back), manifest_text(m));
  EXPECT_NO_THROW(verify_zoo_files(path("z"), back));
  EXPECT_EQ(sha256_file(path("z/target.h5")), sha256_file(kTarget));  // bit-identical copy
}

ZooPlan resume_plan() {
  ZooPlan plan;
  plan.positives.push_back({parse_post_process("ftll"), false});
  plan.positives.push_back({{Attack::WeightPrune, 0}, true});
  plan.negatives.push_back({"same", 1});
  plan.negatives.push_back({"rf", 1});
  return plan;
}

TEST_F(ZooDir, AnInterruptedBuildResumesToTheSameManifest) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed";
  // A tight limit makes the WP sweep stop early (its stop is recorded too). Both builds
  // go to the same folder (its path is in the commands), one after the other.
  ZooOptions o = tiny("z");
  o.max_accuracy_loss = 0.005;
  const ZooResult one = build_zoo(resume_plan(), o);
  ASSERT_EQ(one.manifest.sweeps.size(), 1u);
  const std::string expected = read_text(path("z/manifest.json"));
  fs::remove_all(o.out);

  // The same build stopped after its second model (an exception out of the progress
  // callback: the manifest as of the last model kept, as a kill would leave it).
  int done = 0;
  EXPECT_THROW(build_zoo(resume_plan(), o,
                         [&](const ZooEvent& e) {
                           if (e.kind == ZooEvent::Kind::Done && ++done == 2)
                             throw std::runtime_error("interrupted");
                         }),
               std::runtime_error);
  EXPECT_NE(read_text(path("z/manifest.json")), expected);
  // Without --resume the folder is refused; with it, the rest is made.
  EXPECT_THROW(build_zoo(resume_plan(), o), std::invalid_argument);
  o.resume = true;
  const ZooResult resumed = build_zoo(resume_plan(), o);
  EXPECT_EQ(resumed.reused, 2);
  EXPECT_EQ(resumed.made + resumed.reused, one.made);
  EXPECT_EQ(read_text(path("z/manifest.json")), expected);

  // A file changed behind the manifest's back is remade, and the manifest is the same.
  const std::string ftll = path("z/positive/ftll.h5");
  std::string bytes = read_text(ftll);
  bytes[bytes.size() / 2] ^= 0x10;
  write_text(ftll, bytes);
  int made = 0;
  const ZooResult again = build_zoo(resume_plan(), o, [&](const ZooEvent& e) {
    if (e.kind == ZooEvent::Kind::Begin) {  // and it says why
      EXPECT_EQ(e.again, "its file changed since the manifest listed it");
    }
    if (e.kind == ZooEvent::Kind::Done) {
      ++made;
      EXPECT_EQ(e.file, "positive/ftll.h5");
    }
  });
  EXPECT_EQ(made, 1);
  EXPECT_EQ(again.reused, one.made - 1);
  EXPECT_EQ(read_text(path("z/manifest.json")), expected);

  // The zoo copied to another folder and resumed from a copy of the target at another
  // path: nothing is made again, and the manifest's commands name the new paths.
  fs::copy(path("z"), path("moved"), fs::copy_options::recursive);
  fs::copy_file(kTarget, path("t.h5"));
  ZooOptions m = o;
  m.out = path("moved");
  m.target = path("t.h5");
  const ZooResult moved = build_zoo(resume_plan(), m);
  EXPECT_EQ(moved.made, 0);
  EXPECT_EQ(moved.reused, one.made);
  auto renamed = [&](std::string c) {
    for (const auto& [from, to] : {std::pair{kTarget, path("t.h5")}, std::pair{path("z") + "/", path("moved") + "/"}})
      for (size_t at = c.find(from); at != std::string::npos; at = c.find(from, at + to.size()))
        c.replace(at, from.size(), to);
    return c;
  };
  const ZooManifest a = read_manifest(path("z/manifest.json"));
  const ZooManifest b = read_manifest(path("moved/manifest.json"));
  ASSERT_EQ(a.models.size(), b.models.size());
  for (size_t i = 0; i < a.models.size(); ++i) {
    EXPECT_EQ(b.models[i].command, renamed(a.models[i].command)) << i;
    EXPECT_EQ(b.models[i].sha256, a.models[i].sha256) << i;
  }
  ASSERT_EQ(a.sweeps.size(), b.sweeps.size());
  EXPECT_EQ(b.sweeps[0].stop_command, renamed(a.sweeps[0].stop_command));

  // Another target at the same path (retrained, say): the copies made from the old one are
  // made again from the new one; the independent models are kept.
  fs::copy_file(path("z/positive/ftll.h5"), path("t.h5"), fs::copy_options::overwrite_existing);
  int from_old_target = 0;
  const ZooResult other = build_zoo(resume_plan(), m, [&](const ZooEvent& e) {
    from_old_target += e.kind == ZooEvent::Kind::Begin && e.again == "made from another target";
  });
  EXPECT_GE(from_old_target, 2);  // ftll and the sweep's first value at least
  EXPECT_EQ(other.reused, 2);  // negative/lenet5, negative/rf
  const ZooManifest c = read_manifest(path("moved/manifest.json"));
  for (const ZooEntry& e : c.models)
    for (const ZooEntry& before : b.models) {
      if (e.file != before.file) continue;
      if (e.group == "negative")
        EXPECT_EQ(e.sha256, before.sha256) << e.file;
      else
        EXPECT_NE(e.sha256, before.sha256) << e.file;  // the target and its copies
    }
}

// A zoo resumed with other options would make its models again: the option that differs is
// named, read from the commands of the models this build plans too.
TEST(ZooResume, AnOptionMadeWithAnotherValueIsNamed) {
  using zoo_detail::option_mismatch;
  using zoo_detail::Planned;
  const zoo_detail::TargetInfo t{"lenet5", 10};
  auto planned = [&](const ZooOptions& o) {
    return std::vector<Planned>{zoo_detail::plan_positive(o, t, parse_post_process("ftll")),
                                zoo_detail::plan_negative(o, "lenet5", 1),
                                zoo_detail::plan_negative(o, "rf", 1),
                                zoo_detail::plan_adaptive(o, t, {Extraction::Distill, "same"})};
  };
  ZooOptions o;
  o.target = "t.h5";
  o.out = "z";
  o.limit = 256;
  o.threads = 2;
  ZooManifest old;
  for (const Planned& p : planned(o)) {
    ZooEntry e;
    e.file = p.file;
    e.group = p.group;
    e.attack = p.attack;
    e.command = p.command;
    old.models.push_back(e);
  }
  ZooSweep sweep;
  sweep.attack = "wp";
  sweep.max_accuracy_loss = 0.03;
  old.sweeps.push_back(sweep);
  auto now = [&](const std::function<void(ZooOptions&)>& change) {
    ZooOptions n = o;
    change(n);
    return option_mismatch(old, planned(n), n);
  };
  EXPECT_EQ(now([](ZooOptions&) {}), "");
  EXPECT_EQ(now([](ZooOptions& n) { n.threads = 1; }), "");  // not an option of the models
  EXPECT_EQ(now([](ZooOptions& n) { n.max_accuracy_loss = 0.1; }), "");  // no sweep planned
  EXPECT_EQ(now([](ZooOptions& n) { n.epochs = 1; }), "--epochs (2 then, 1 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.fresh_epochs = 5; }), "--train-epochs (2 then, 5 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.limit = 0; }), "--limit (256 then, 0 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.seed = 9; }), "--seed");
  EXPECT_EQ(now([](ZooOptions& n) { n.data = "mnist:m"; }),
            "--data (fashion-mnist then, mnist:m now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.batch = 64; }), "--batch (128 then, 64 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.lr = 0.02f; }), "--lr (0.01 then, 0.02 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.fresh_lr = 0.1f; }), "--train-lr (0.05 then, 0.1 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.distill_lr = 0.01f; }), "--distill-lr (0.02 then, 0.01 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.trees = 3; }), "--trees (20 then, 3 now)");
  EXPECT_EQ(now([](ZooOptions& n) { n.temperature = 2; }), "--temperature (4 then, 2 now)");
  // A sweep planned again: its accuracy limit counts.
  auto with_sweep = [&](double max_loss) {
    ZooOptions n = o;
    n.max_accuracy_loss = max_loss;
    std::vector<Planned> p = planned(n);
    PostProcess wp{Attack::WeightPrune, 0.1};
    p.push_back(zoo_detail::plan_positive(n, t, wp));
    p.back().sweep = "wp";
    return option_mismatch(old, p, n);
  };
  EXPECT_EQ(with_sweep(0.03), "");
  EXPECT_EQ(with_sweep(0.05), "--max-loss (0.03 then, 0.05 now)");
}

TEST(ZooPaths, MovedWordByWordAndQuotedPathsLeftAsTheyAre) {
  using zoo_detail::copy_command_paths;
  using zoo_detail::move_paths;
  const zoo_detail::CommandPaths p = copy_command_paths("cp w/t.h5 old/zoo/target.h5");
  EXPECT_EQ(p.target, "w/t.h5");
  EXPECT_EQ(p.folder, "old/zoo");
  EXPECT_EQ(move_paths("x --seed 1 postprocess --model w/t.h5 --out old/zoo/positive/a.h5 --data old/zoox",
                       p, {"n.h5", "new"}),
            "x --seed 1 postprocess --model n.h5 --out new/positive/a.h5 --data old/zoox");
  EXPECT_EQ(move_paths("a --model w/t.h5", {"", "old/zoo"}, {"n.h5", "new"}), "a --model w/t.h5");
  EXPECT_EQ(copy_command_paths("cp 'my t.h5' z/target.h5").folder, "");  // quoted: not taken apart
  EXPECT_EQ(copy_command_paths("cp a.h5 z/other.h5").folder, "");
  EXPECT_EQ(copy_command_paths("mv a.h5 z/target.h5").folder, "");
}

TEST_F(ZooDir, AModelThatFailsToTrainIsNamed) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed";
  ZooPlan plan;
  plan.positives.push_back({parse_post_process("ftal"), false});
  ZooOptions o = tiny("z");
  o.lr = 1e30f;  // the loss overflows at the second step
  try {
    build_zoo(plan, o);
    FAIL() << "a diverging training passed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("positive/ftal.h5: "), std::string::npos) << e.what();
  }
}

// Fresh networks train for --train-epochs, copies fine-tune for --epochs (a paper-scale
// zoo trains its negatives as long as the target), and 0 keeps the one count for both.
TEST(ZooPlanEpochs, FreshNetworksAndCopiesHaveTheirOwnEpochs) {
  ZooOptions o;
  o.target = kTarget;
  o.out = "zoo";
  o.epochs = 3;
  o.fresh_epochs = 40;
  const zoo_detail::TargetInfo t{"lenet5", 10};
  const zoo_detail::Planned pos = zoo_detail::plan_positive(o, t, parse_post_process("ftal"));
  const zoo_detail::Planned neg = zoo_detail::plan_negative(o, "resnet20", 1);
  const zoo_detail::Planned ada =
      zoo_detail::plan_adaptive(o, t, AdaptiveSpec{Extraction::LabelOnly, "same"});
  EXPECT_EQ(pos.recipe.opt.epochs, 3);
  EXPECT_EQ(neg.recipe.opt.epochs, 40);
  EXPECT_EQ(ada.recipe.opt.epochs, 40);
  // The recorded commands make the same models.
  EXPECT_NE(pos.command.find(" --epochs 3 "), std::string::npos) << pos.command;
  EXPECT_NE(neg.command.find(" --epochs 40 "), std::string::npos) << neg.command;
  EXPECT_NE(ada.command.find(" --epochs 40 "), std::string::npos) << ada.command;
  o.fresh_epochs = 0;
  EXPECT_EQ(zoo_detail::plan_negative(o, "resnet20", 1).recipe.opt.epochs, 3);
  o.fresh_epochs = -1;
  ZooPlan plan;
  EXPECT_THROW(check_zoo(plan, o), std::invalid_argument);
}

}  // namespace
}  // namespace ipg
