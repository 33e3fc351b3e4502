// Reading zoo folders (fingerprint/experiment_zoo.h): the layout without a manifest, and
// with one its checksums, groups and duplicates; bad folders named in the error. The model
// files here are stand-in bytes: scanning reads checksums, never the models.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/sha256.h"
#include "fingerprint/experiment.h"
#include "fingerprint/experiment_zoo.h"
#include "models/zoo_manifest.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ZooScan : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("ipg_zoo_scan_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    for (const char* g : {"positive", "negative"}) fs::create_directories(dir_ / g);
    put("target.h5", "target bytes");
    put("positive/ftll.h5", "ftll bytes");
    put("positive/wp-0.2.h5", "wp bytes");
    put("negative/lenet5-seed2.h5", "lenet bytes");
    put("negative/notes.txt", "not a model");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void put(const std::string& file, const std::string& bytes) {
    std::ofstream(dir_ / file, std::ios::binary) << bytes;
  }
  std::string sha(const std::string& file) { return sha256_file((dir_ / file).string()); }
  ZooEntry entry(const std::string& file, const std::string& group) {
    ZooEntry e;
    e.file = file;
    e.group = group;
    e.kind = "network";
    e.arch = "lenet5";
    e.attack = group == "target" ? "target" : group == "positive" ? "ftll" : "independent";
    e.sha256 = sha(file);
    e.command = "ipguard ...";
    e.weights_sha256 = std::string(64, 'a');
    return e;
  }
  // A manifest over the files of SetUp as `ipguard zoo` writes it (models/zoo_manifest.h),
  // after `edit`.
  void write(const std::function<void(ZooManifest&)>& edit = {}) {
    ZooManifest m;
    m.models = {entry("target.h5", "target"), entry("positive/ftll.h5", "positive"),
                entry("positive/wp-0.2.h5", "positive"),
                entry("negative/lenet5-seed2.h5", "negative")};
    if (edit) edit(m);
    write_manifest(m, (dir_ / "manifest.json").string());
  }
  // The written manifest's JSON changed by `edit`, and sealed again unless `reseal` is false.
  void tamper(const std::function<void(json&)>& edit, bool reseal) {
    json m = json::parse(std::ifstream(dir_ / "manifest.json"));
    edit(m);
    if (reseal) {
      m.erase("sha256");
      m["sha256"] = sha256_hex(m.dump());
    }
    std::ofstream(dir_ / "manifest.json") << m.dump(2);
  }
  std::string error_of(const std::string& dir) {
    try {
      scan_zoo(dir);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(ZooScan, LayoutWithoutManifest) {
  const Zoo z = scan_zoo(dir_.string());
  EXPECT_EQ(z.target.file, "target.h5");
  EXPECT_EQ(z.target.sha256, sha256_hex("target bytes"));
  ASSERT_EQ(z.suspects.size(), 3u);  // notes.txt is not a model
  EXPECT_EQ(z.suspects[0].file, "positive/ftll.h5");
  EXPECT_EQ(z.suspects[0].name, "ftll");
  EXPECT_EQ(z.suspects[2].group, SuspectGroup::Negative);
  EXPECT_TRUE(z.manifest_sha256.empty());
  EXPECT_EQ(z.identity.size(), 64u);
}

TEST_F(ZooScan, AdaptiveSuspectsAreTheirOwnGroup) {
  fs::create_directories(dir_ / "adaptive");
  put("adaptive/distill.h5", "distilled");
  const Zoo z = scan_zoo(dir_.string());
  ASSERT_EQ(z.group(SuspectGroup::Adaptive).size(), 1u);
  EXPECT_EQ(z.group(SuspectGroup::Adaptive)[0]->name, "distill");
  EXPECT_EQ(z.group(SuspectGroup::Positive).size(), 2u);
}

TEST_F(ZooScan, IdentityFollowsEveryFile) {
  const std::string before = scan_zoo(dir_.string()).identity;
  put("negative/lenet5-seed2.h5", "other lenet bytes");
  EXPECT_NE(scan_zoo(dir_.string()).identity, before);
}

TEST_F(ZooScan, BadFoldersAreNamed) {
  EXPECT_NE(error_of((dir_ / "nosuch").string()).find("nosuch: not a folder"), std::string::npos);
  fs::remove(dir_ / "target.h5");
  EXPECT_NE(error_of(dir_.string()).find("no target.h5"), std::string::npos);
  put("target.h5", "t");
  fs::remove_all(dir_ / "positive");
  const std::string e = error_of(dir_.string());
  EXPECT_NE(e.find((dir_ / "positive").string()), std::string::npos) << e;
  EXPECT_NE(e.find("no usable positive suspect"), std::string::npos) << e;
}

// A group none of whose files load: the error itself names a file and why (the problems
// list is printed only after a load that succeeds, so "see above" showed nothing).
TEST_F(ZooScan, AGroupLeftEmptyNamesAFileThatFailed) {
  const std::string net = std::string(IPG_TEST_DATA_DIR) + "/../../weights/lenet5-fashion-mnist.h5";
  fs::copy_file(net, dir_ / "target.h5", fs::copy_options::overwrite_existing);
  fs::copy_file(net, dir_ / "positive/ftll.h5", fs::copy_options::overwrite_existing);
  put("negative/other.h5", "other bytes");
  Zoo z = scan_zoo(dir_.string());
  std::string e;
  try {
    load_zoo(z, Device::cpu(), {});
  } catch (const std::runtime_error& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("no negative suspect could be loaded ("), std::string::npos) << e;
  EXPECT_NE(e.find("negative/lenet5-seed2.h5: not an HDF5 file; and 1 more)"), std::string::npos)
      << e;
}

TEST_F(ZooScan, ManifestDecidesGroupsAndChecksFiles) {
  put("negative/stray.h5", "not listed");
  write([](ZooManifest& m) { m.models[2].group = "adaptive"; });
  const Zoo z = scan_zoo(dir_.string());
  EXPECT_EQ(z.manifest_sha256.size(), 64u);
  EXPECT_EQ(z.group(SuspectGroup::Adaptive).size(), 1u);  // wp-0.2 as the manifest says
  EXPECT_EQ(z.group(SuspectGroup::Positive).size(), 1u);
  ASSERT_EQ(z.unlisted.size(), 1u);
  EXPECT_EQ(z.unlisted[0], "negative/stray.h5");
  EXPECT_TRUE(z.problems.empty());
}

TEST_F(ZooScan, DuplicatesAreCountedOnce) {
  write([this](ZooManifest& m) {
    ZooEntry dup = entry("positive/wp-0.2.h5", "positive");
    dup.file = "positive/fp-0.0625.h5";  // its file not kept: identical weights
    dup.duplicate_of = "positive/wp-0.2.h5";
    m.models.push_back(dup);
  });
  const Zoo z = scan_zoo(dir_.string());
  EXPECT_EQ(z.group(SuspectGroup::Positive).size(), 2u);
  ASSERT_EQ(z.duplicates.size(), 1u);
  EXPECT_EQ(z.duplicates[0].file, "positive/fp-0.0625.h5");
  EXPECT_EQ(z.duplicates[0].duplicate_of, "positive/wp-0.2.h5");
}

TEST_F(ZooScan, AChangedSuspectIsAProblemNamingItAndTheRestAreKept) {
  write();
  put("positive/wp-0.2.h5", "changed after the manifest");
  const Zoo z = scan_zoo(dir_.string());
  ASSERT_EQ(z.problems.size(), 1u);
  EXPECT_EQ(z.problems[0].file, "positive/wp-0.2.h5");
  EXPECT_NE(z.problems[0].reason.find("sha256"), std::string::npos);
  EXPECT_EQ(z.suspects.size(), 2u);
}

TEST_F(ZooScan, ManifestChecksumTargetAndPathsAreChecked) {
  write();
  EXPECT_EQ(error_of(dir_.string()), "");
  tamper([](json& m) { m["models"][1]["arch"] = "resnet20"; }, false);  // edited, not resealed
  EXPECT_NE(error_of(dir_.string()).find("checksum mismatch"), std::string::npos);
  write();
  put("target.h5", "replaced target");
  const std::string e = error_of(dir_.string());
  EXPECT_NE(e.find("target.h5: sha256"), std::string::npos) << e;
  put("target.h5", "target bytes");
  write([](ZooManifest& m) { m.models[1].file = "../outside.h5"; });
  EXPECT_NE(error_of(dir_.string()).find("not a path inside the zoo"), std::string::npos);
  write([](ZooManifest& m) { m.models.erase(m.models.begin()); });
  EXPECT_NE(error_of(dir_.string()).find("lists no target"), std::string::npos);
  write();
  tamper([](json& m) { m["format"] = "something-else"; }, true);
  EXPECT_NE(error_of(dir_.string()).find("format is not 'ipguard-zoo'"), std::string::npos);
  std::ofstream(dir_ / "manifest.json") << "{ not json";
  EXPECT_NE(error_of(dir_.string()).find("manifest.json: manifest: not JSON"), std::string::npos)
      << error_of(dir_.string());
}

}  // namespace
}  // namespace ipg
