// The zoo's manifest (models/zoo_manifest.h): it reads back what was written, its own
// checksum catches a changed byte, and every listed file is checked by its sha256.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "engine/hdf5.h"
#include "engine/sha256.h"
#include "models/model_file.h"
#include "models/zoo_manifest.h"
#include "tests/support/text_files.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

using testing::read_text;
using testing::write_text;

std::unique_ptr<Network> net(uint64_t seed) {
  ModelConfig c;
  c.arch = "lenet5";
  c.seed = seed;
  return make_network(c);
}

class ZooManifestDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ipg_zoo_manifest_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

ZooManifest sample_manifest() {
  ZooManifest m;
  ZooEntry t;
  t.file = "target.h5";
  t.group = "target";
  t.kind = "network";
  t.arch = "lenet5";
  t.attack = "target";
  t.seed = 1;
  t.accuracy = 0.9057;
  t.sha256 = std::string(64, 'a');
  t.command = "cp x target.h5";
  t.weights_sha256 = std::string(64, 'b');
  m.models.push_back(t);
  ZooEntry p = t;
  p.file = "positive/wp-0.2.h5";
  p.group = "positive";
  p.parent = "target.h5";
  p.attack = "wp";
  p.param = 0.2;
  p.accuracy = 0.9012;
  m.models.push_back(p);
  ZooSweep s;
  s.attack = "wp";
  s.target_accuracy = 0.9057;
  s.kept = {0.1, 0.2};
  s.stopped_at = 0.3;
  s.stop_accuracy = 0.85;
  s.stop_command = "ipguard --seed 3 postprocess";
  m.sweeps.push_back(s);
  return m;
}

TEST_F(ZooManifestDir, ManifestRoundTripsAndItsChecksumIsOfTheCompactDump) {
  const ZooManifest m = sample_manifest();
  write_manifest(m, path("manifest.json"));
  const ZooManifest r = read_manifest(path("manifest.json"));
  EXPECT_EQ(manifest_text(r), manifest_text(m));
  ASSERT_EQ(r.models.size(), 2u);
  EXPECT_EQ(r.models[1].param.value_or(-1), 0.2);
  EXPECT_EQ(r.models[0].parent, "");
  EXPECT_EQ(r.sweeps[0].stopped_at.value_or(-1), 0.3);
  // The listed sha256 is the hash the contract defines, and no temporary file is left.
  EXPECT_NE(read_text(path("manifest.json")).find(manifest_sha256(m)), std::string::npos);
  for (const auto& f : fs::directory_iterator(dir_))
    EXPECT_EQ(f.path().filename(), "manifest.json");
}

TEST_F(ZooManifestDir, ManifestChecksumCatchesAFlippedByte) {
  write_manifest(sample_manifest(), path("manifest.json"));
  std::string text = read_text(path("manifest.json"));
  const size_t at = text.find("0.9012");
  ASSERT_NE(at, std::string::npos);
  text[at + 5] = '3';  // 0.9013: still valid JSON, a different accuracy
  write_text(path("manifest.json"), text);
  try {
    read_manifest(path("manifest.json"));
    FAIL() << "a changed manifest was read";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
  write_text(path("manifest.json"), "{\"format\": \"ipguard-zoo\"");
  EXPECT_THROW(read_manifest(path("manifest.json")), FileError);
}

TEST_F(ZooManifestDir, ListedFilesAreCheckedByTheirSha256) {
  // Two real model files; the manifest lists their hashes.
  auto a = net(1), b = net(2);
  fs::create_directories(dir_ / "positive");
  save_model(*a, path("target.h5"));
  save_model(*b, path("positive/ftll.h5"));
  ZooManifest m = sample_manifest();
  m.models[0].sha256 = sha256_file(path("target.h5"));
  m.models[1].file = "positive/ftll.h5";
  m.models[1].sha256 = sha256_file(path("positive/ftll.h5"));
  EXPECT_NO_THROW(verify_zoo_files(dir_.string(), m));
  // A flipped byte in a listed file.
  const std::string saved = read_text(path("positive/ftll.h5"));
  std::string flipped = saved;
  flipped[flipped.size() / 2] ^= 0x01;
  write_text(path("positive/ftll.h5"), flipped);
  try {
    verify_zoo_files(dir_.string(), m);
    FAIL() << "a flipped byte passed";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("positive/ftll.h5: sha256"), std::string::npos)
        << e.what();
  }
  // A valid model file swapped in: its sha256 changed.
  save_model(*a, path("positive/ftll.h5"));
  EXPECT_THROW(verify_zoo_files(dir_.string(), m), FileError);
  write_text(path("positive/ftll.h5"), saved);
  EXPECT_NO_THROW(verify_zoo_files(dir_.string(), m));
  fs::remove(path("positive/ftll.h5"));
  EXPECT_THROW(verify_zoo_files(dir_.string(), m), FileError);
}

}  // namespace
}  // namespace ipg
