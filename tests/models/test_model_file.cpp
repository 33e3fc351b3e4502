// Native model files: bit-exact round trips and every kind of bad file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/hdf5.h"
#include "engine/random.h"
#include "models/model_file.h"
#include "tests/engine/file_flips.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ipg_model_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    cfg_.arch = "resnet20";
    cfg_.in_channels = 1;
    cfg_.height = cfg_.width = 28;
    cfg_.classes = 10;
    cfg_.mean = {0.3f};
    cfg_.std = {0.35f};
    cfg_.seed = 5;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Saves a model, then rewrites one dataset through `edit` (a tampered file).
  std::string tampered(
      const std::function<void(h5::FileWriter&, const std::string&, const Tensor&)>& edit) {
    auto net = make_network(cfg_);
    const std::string good = path("good.h5"), bad = path("bad.h5");
    save_model(*net, good);
    const h5::File in(good);
    h5::FileWriter out(bad);
    for (const auto& a : in.attr_names()) {
      if (a == h5::kContentDigestAttr) continue;  // the writer seals its own content
      if (a == "arch" || a == "format" || a == "data" || a == "recipe")
        out.set_attr_string(a, in.attr_string(a));
      else if (a == "mean" || a == "std")
        out.set_attr_floats(a, in.attr_floats(a));
      else
        out.set_attr_int(a, in.attr_int(a));
    }
    for (auto& [name, t] : net->named_parameters()) edit(out, "params/" + name, *t);
    for (auto& [name, t] : net->named_buffers()) out.write("buffers/" + name, *t);
    out.commit();
    return bad;
  }

  void expect_error(const std::string& file, const std::string& fragment) {
    try {
      load_model(file);
      FAIL() << "expected FileError mentioning '" << fragment << "'";
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }

  // The message of the FileError load_model throws (and fails the test when it loads).
  std::string load_error(const std::string& file) {
    try {
      load_model(file);
    } catch (const FileError& e) {
      return e.what();
    }
    ADD_FAILURE() << file << " loaded";
    return "";
  }

  // The smallest network file (LeNet-5 on 1x16x16, 2 classes: 60 KB) with every tensor
  // and BN-free, filled with distinct values.
  std::unique_ptr<Network> small_lenet(const std::string& file) {
    ModelConfig cfg;
    cfg.arch = "lenet5";
    cfg.in_channels = 1;
    cfg.height = cfg.width = 16;
    cfg.classes = 2;
    cfg.mean = {0.25f};
    cfg.std = {0.5f};
    cfg.seed = 3;
    auto net = make_network(cfg);
    Provenance p;
    p.data = "toy";
    p.seed = 3;
    p.accuracy = 0.5;
    save_model(*net, file, p);
    return net;
  }

  // A sealed version-2 model file whose root attributes are written by `attrs` (the
  // valid set first, so `attrs` replaces one) and whose tensors are `net`'s; unsealed, a
  // legacy version-1 file.
  std::string with_attributes(Network& net, const std::string& name,
                              const std::function<void(h5::FileWriter&)>& attrs,
                              h5::Sealing sealing = h5::Sealing::Sealed) {
    const std::string p = path(name);
    h5::FileWriter w(p, sealing);
    write_model_attributes(w, net.config(), {});
    if (sealing == h5::Sealing::Unsealed) w.set_attr_int("version", 1);
    attrs(w);
    for (auto& [n, t] : net.named_parameters()) w.write("params/" + n, *t);
    for (auto& [n, t] : net.named_buffers()) w.write("buffers/" + n, *t);
    w.commit();
    return p;
  }

  fs::path dir_;
  ModelConfig cfg_;
};

// Captures the notices a block of code makes (engine/hdf5.h), restoring the sink after.
struct Notices {
  Notices() {
    old = h5::set_notice_sink([this](const std::string& line) { lines.push_back(line); });
  }
  ~Notices() { h5::set_notice_sink(old); }
  std::vector<std::string> lines;
  h5::NoticeSink old;
};

bool same_tensors(Network& a, Network& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  auto ba = a.named_buffers(), bb = b.named_buffers();
  pa.insert(pa.end(), ba.begin(), ba.end());
  pb.insert(pb.end(), bb.begin(), bb.end());
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i)
    if (pa[i].first != pb[i].first || pa[i].second->shape() != pb[i].second->shape() ||
        std::memcmp(pa[i].second->raw(), pb[i].second->raw(), pa[i].second->nbytes()) != 0)
      return false;
  return true;
}

TEST_F(ModelFile, RoundTripIsBitExact) {
  auto net = make_network(cfg_);
  // Make the BN buffers non-trivial so that they are really checked.
  for (auto& [name, t] : net->named_buffers()) {
    Generator g(std::hash<std::string>{}(name));
    t->copy_from(Tensor::uniform(t->shape(), 0.5f, 1.5f, g));
  }
  Provenance p;
  p.data = "fashion-mnist";
  p.seed = 5;
  p.epochs = 3;
  p.accuracy = 0.91;
  save_model(*net, path("m.h5"), p);
  Provenance q;
  auto back = load_model(path("m.h5"), &q);
  EXPECT_EQ(back->config().arch, "resnet20");
  EXPECT_EQ(back->config().mean, cfg_.mean);
  EXPECT_EQ(q.data, "fashion-mnist");
  EXPECT_EQ(q.epochs, 3);
  EXPECT_DOUBLE_EQ(q.accuracy, 0.91);
  auto a = net->named_parameters(), b = back->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i].second->to_vector(), b[i].second->to_vector());
  auto ab = net->named_buffers(), bb = back->named_buffers();
  for (size_t i = 0; i < ab.size(); ++i)
    EXPECT_EQ(ab[i].second->to_vector(), bb[i].second->to_vector());
  const ModelInfo info = read_model_info(path("m.h5"));
  EXPECT_EQ(info.num_parameters, net->num_parameters());
}

TEST_F(ModelFile, MissingExtraAndMisshapenTensorsAreAllReported) {
  const std::string bad = tampered([](h5::FileWriter& w, const std::string& name, const Tensor& t) {
    if (name == "params/conv1/weight") return;  // missing
    if (name == "params/linear/bias") {
      w.write(name, Tensor::zeros({11}));                  // wrong shape
      w.write("params/linear/extra", Tensor::zeros({3}));  // not part of the model
      return;
    }
    w.write(name, t);
  });
  expect_error(bad, "3 tensor(s) do not fit resnet20");
  expect_error(bad, "missing params/conv1/weight");
  expect_error(bad, "params/linear/bias: file has float32 [11], resnet20 needs float32 [10]");
  expect_error(bad, "unexpected params/linear/extra");
}

TEST_F(ModelFile, NanWeightsAreRefusedNamingTheTensor) {
  const std::string bad = tampered([](h5::FileWriter& w, const std::string& name, const Tensor& t) {
    Tensor v = t.detach().clone();
    if (name == "params/layer2/0/conv1/weight") v.data()[7] = NAN;
    w.write(name, v);
  });
  expect_error(bad, "params/layer2/0/conv1/weight");
  expect_error(bad, "NaN");
}

TEST_F(ModelFile, NotAModelFile) {
  expect_error(path("missing.h5"), "missing.h5");
  std::ofstream(path("text.h5")) << "not hdf5 at all";
  expect_error(path("text.h5"), "text.h5");
  {
    h5::FileWriter w(path("other.h5"));
    w.set_attr_string("format", "ipguard-other");
    w.commit();
  }
  expect_error(path("other.h5"), "not an ipguard model file");
  {
    h5::FileWriter w(path("fp.h5"));
    w.set_attr_string("format", "ipguard-fingerprint");
    w.commit();
  }
  expect_error(path("fp.h5"), "an ipguard fingerprint, not a model");
  auto net = make_network(cfg_);
  save_model(*net, path("t.h5"));
  fs::resize_file(path("t.h5"), fs::file_size(path("t.h5")) / 2);
  EXPECT_THROW(load_model(path("t.h5")), FileError);
}

TEST_F(ModelFile, AbsurdDimensionsInTheHeader) {
  {
    h5::FileWriter w(path("huge.h5"));
    w.set_attr_string("format", "ipguard-model");
    w.set_attr_int("version", 2);
    w.set_attr_string("arch", "lenet5");
    w.set_attr_int("in_channels", 1);
    w.set_attr_int("height", 1000000);
    w.set_attr_int("width", 28);
    w.set_attr_int("classes", 10);
    w.set_attr_floats("mean", {0.f});
    w.set_attr_floats("std", {1.f});
    w.commit();
  }
  expect_error(path("huge.h5"), "implausible");
}

// Headers the fuzzer found or a review caught (tests/fuzz): an int attribute beyond int's
// range (a cast would read 2^32 + 1 as 1), a plausible-looking header whose network would
// need far more weights than the file holds, and a link cycle under /params.
TEST_F(ModelFile, HeaderTricksAreRefused) {
  auto header = [&](const std::string& name, int64_t height, const std::string& arch,
                    int64_t classes) {
    h5::FileWriter w(path(name));
    w.set_attr_string("format", "ipguard-model");
    w.set_attr_int("version", 2);
    w.set_attr_string("arch", arch);
    w.set_attr_int("in_channels", 1);
    w.set_attr_int("height", height);
    w.set_attr_int("width", 28);
    w.set_attr_int("classes", classes);
    w.set_attr_floats("mean", {0.f});
    w.set_attr_floats("std", {1.f});
    w.commit();
  };
  header("wrap.h5", (int64_t{1} << 32) + 28, "lenet5", 10);
  expect_error(path("wrap.h5"), "out of range");
  header("big.h5", 28, "resnet50", 90000);  // 184M weights from a 1 KiB file
  expect_error(path("big.h5"), "implausible");

  auto net = make_network(cfg_);
  save_model(*net, path("cycle.h5"));
  {
    const hid_t f = H5Fopen(path("cycle.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    ASSERT_GE(H5Lcreate_soft("/params", f, "/params/loop", H5P_DEFAULT, H5P_DEFAULT), 0);
    H5Fclose(f);
  }
  EXPECT_THROW(read_model_info(path("cycle.h5")), FileError);
  EXPECT_THROW(load_model(path("cycle.h5")), FileError);
}

TEST_F(ModelFile, WriteIsAtomic) {
  auto net = make_network(cfg_);
  EXPECT_THROW(save_model(*net, path("no/such/dir/m.h5")), FileError);
  EXPECT_FALSE(fs::exists(path("no")));
}

// Issue 11: a byte flipped in weight data was accepted (LeNet-5 accuracy 0.93 -> 0.40).
// Every byte of the tensors' data, every byte of the first 4 KiB (integrity header,
// superblock, root group) and every 7th byte of the rest, flipped one at a time: each
// file either fails to load with a FileError or loads bit-identical weights; in fact a
// sealed file refuses every one.
TEST_F(ModelFile, EveryFlippedByteIsRefusedOrHarmless) {
  const std::string good = path("good.h5"), bad = path("bad.h5");
  auto net = small_lenet(good);
  const std::vector<size_t> positions = test::flip_positions(good, 4096, 7);
  size_t data_bytes = 0;
  for (const auto& [b, e] : test::data_regions(good)) data_bytes += e - b;
  ASSERT_GT(data_bytes, 59000u);  // the weights themselves are tested byte by byte
  ASSERT_GT(positions.size(), data_bytes + 4000);
  size_t harmless = 0;
  const size_t refused = test::count_flips(good, bad, positions, [&](size_t at) {
    try {
      auto back = load_model(bad);
      EXPECT_TRUE(same_tensors(*net, *back)) << "byte " << at << " changed the weights silently";
      ++harmless;
      return false;
    } catch (const FileError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(bad), std::string::npos) << msg;
      return true;
    }
  });
  EXPECT_EQ(refused + harmless, positions.size());
  EXPECT_EQ(harmless, 0u);
}

// Issue 11: `mean` rewritten as a float64 scalar was accepted (accuracy 0.93 -> 0.26).
// Every root attribute must have its class (int, float, string) and shape (scalar, or a
// float vector of in_channels values).
TEST_F(ModelFile, AttributesOfTheWrongTypeOrShapeAreRefused) {
  auto net = small_lenet(path("m.h5"));
  const std::pair<std::function<void(h5::FileWriter&)>, std::string> cases[] = {
      {[](h5::FileWriter& w) { w.set_attr_double("mean", 0.25); },
       "attribute 'mean': expected float [1], found float64 scalar"},
      {[](h5::FileWriter& w) {
         w.set_attr_floats("std", {0.5f, 0.5f});
       },
       "attribute 'std': expected float [1], found float32 [2]"},
      {[](h5::FileWriter& w) { w.set_attr_floats("mean", {}); }, "attribute 'mean'"},
      {[](h5::FileWriter& w) { w.set_attr_string("in_channels", "1"); },
       "attribute 'in_channels': expected an integer scalar, found string scalar"},
      {[](h5::FileWriter& w) { w.set_attr_double("height", 16); },
       "attribute 'height': expected an integer scalar, found float64 scalar"},
      {[](h5::FileWriter& w) { w.set_attr_double("version", 2); },
       "attribute 'version': expected an integer scalar"},
      {[](h5::FileWriter& w) { w.set_attr_int("arch", 5); },
       "attribute 'arch': expected a string scalar, found int64 scalar"},
      {[](h5::FileWriter& w) { w.set_attr_strings("arch", {"lenet5"}); },
       "attribute 'arch': expected a string scalar, found string [1]"},
      {[](h5::FileWriter& w) { w.set_attr_string("accuracy", "0.9"); },
       "attribute 'accuracy': expected a float scalar"},
      {[](h5::FileWriter& w) { w.set_attr_double("seed", 3); },
       "attribute 'seed': expected an integer scalar"},
  };
  int i = 0;
  for (const auto& [edit, fragment] : cases) {
    const std::string p = with_attributes(*net, "a" + std::to_string(i++) + ".h5", edit);
    const std::string msg = load_error(p);
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
    EXPECT_EQ(msg, [&] {
      try {
        read_model_info(p);
      } catch (const FileError& e) {
        return std::string(e.what());
      }
      return std::string("info accepted it");
    }()) << "info must refuse what load refuses";
  }
  // The file: a legacy (version 1) model whose mean a tool rewrote.
  const std::string legacy = path("legacy.h5");
  fs::copy_file(std::string(IPG_TEST_DATA_DIR) + "/models/lenet5.h5", legacy);
  {
    const hid_t f = H5Fopen(legacy.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    H5Adelete(f, "mean");
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "mean", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const double m = 0.2860;
    H5Awrite(a, H5T_NATIVE_DOUBLE, &m);
    H5Aclose(a);
    H5Sclose(space);
    H5Fclose(f);
  }
  Notices n;
  EXPECT_NE(load_error(legacy).find("attribute 'mean': expected float ["), std::string::npos);
}

// Version-1 files (tests/data/models/*.h5 are written by h5py, unsealed) still load, each
// load with exactly one notice line saying how to re-save the file sealed.
TEST_F(ModelFile, LegacyFileLoadsWithExactlyOneNotice) {
  const std::string legacy = path("legacy.h5");
  fs::copy_file(std::string(IPG_TEST_DATA_DIR) + "/models/lenet5.h5", legacy);
  {
    Notices n;
    auto net = load_model(legacy);
    ASSERT_EQ(n.lines.size(), 1u);
    EXPECT_EQ(n.lines[0], "notice: " + legacy +
                              " has no integrity digest (format 1); re-save it with `ipguard "
                              "convert --upgrade` to add one");
    // Re-saved, it is sealed: no notice any more, the same weights.
    save_model(*net, path("resaved.h5"));
    auto again = load_model(path("resaved.h5"));
    EXPECT_EQ(n.lines.size(), 1u);
    EXPECT_TRUE(same_tensors(*net, *again));
  }
  Notices n;
  read_model_info(legacy);
  EXPECT_EQ(n.lines.size(), 1u);
}

// Issue 11: info printed "parameters 2147545348" or "0 in 0 tensors" for files eval
// rejects. It now goes through load_model's checks and fails with the same message.
TEST_F(ModelFile, InfoRefusesWhatLoadRefuses) {
  auto net = small_lenet(path("good.h5"));
  const ModelInfo good = read_model_info(path("good.h5"));
  EXPECT_EQ(good.num_parameters, net->num_parameters());
  EXPECT_EQ(good.tensors.size(), 10u);
  std::vector<std::string> files;
  // A flipped byte in the data.
  files.push_back(path("flipped.h5"));
  {
    std::string bytes = test::read_bytes(path("good.h5"));
    bytes[test::data_regions(path("good.h5")).back().first + 2] ^= 0x10;
    test::write_bytes(files.back(), bytes);
  }
  // No tensors at all (info said "0 in 0 tensors").
  files.push_back(path("empty.h5"));
  {
    h5::FileWriter w(files.back());
    write_model_attributes(w, net->config(), {});
    w.commit();
  }
  // A legacy file with a huge tensor declared and never written (info added its 2^31
  // elements to the parameter count).
  files.push_back(path("huge.h5"));
  {
    h5::FileWriter w(files.back(), h5::Sealing::Unsealed);
    ModelConfig cfg = net->config();
    write_model_attributes(w, cfg, {});
    w.set_attr_int("version", 1);
    for (auto& [n, t] : net->named_parameters()) w.write("params/" + n, *t);
    const hsize_t n = hsize_t{1} << 31;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t g = H5Gopen2(w.id(), "params", H5P_DEFAULT);
    H5Dclose(H5Dcreate2(g, "huge", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Gclose(g);
    H5Sclose(space);
    w.commit();
  }
  Notices n;
  for (const std::string& f : files) {
    const std::string from_load = load_error(f);
    std::string from_info = "info accepted it";
    try {
      read_model_info(f);
    } catch (const FileError& e) {
      from_info = e.what();
    }
    EXPECT_EQ(from_info, from_load) << f;
  }
  EXPECT_NE(load_error(files[0]).find("content digest mismatch"), std::string::npos);
  EXPECT_NE(load_error(files[1]).find("missing params/conv1/weight"), std::string::npos);
  EXPECT_NE(load_error(files[2]).find("unexpected params/huge"), std::string::npos);
}

// Issue 11: "unexpected params/<binary>" printed raw bytes. Names from the file are
// escaped, at most five problems are listed, and a name with control bytes is refused
// when the group is listed.
TEST_F(ModelFile, GarbledNamesAreEscapedAndFewAreListed) {
  auto net = small_lenet(path("m.h5"));
  const std::string many = with_attributes(*net, "many.h5", [](h5::FileWriter& w) {
    for (int i = 0; i < 12; ++i) w.write("params/\xff\xfe" + std::to_string(i), Tensor::zeros({1}));
  });
  const std::string msg = load_error(many);
  EXPECT_NE(msg.find("12 tensor(s) do not fit lenet5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected params/\\xff\\xfe0 (not part of lenet5)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("... and 7 more"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\xff'), std::string::npos) << "raw bytes in: " << msg;
  size_t listed = 0;
  for (size_t at = msg.find("unexpected"); at != std::string::npos;
       at = msg.find("unexpected", at + 1))
    ++listed;
  EXPECT_EQ(listed, 5u);

  // Sealing refuses such a name (it lists the groups), so this is a legacy file.
  const std::string control = with_attributes(
      *net, "control.h5",
      [](h5::FileWriter& w) { w.write("params/conv1/w\x01\x1b[2J", Tensor::zeros({1})); },
      h5::Sealing::Unsealed);
  Notices n;
  const std::string m2 = load_error(control);
  EXPECT_NE(m2.find("/params/conv1: cannot list group: a name with control bytes "
                    "('w\\x01\\x1b[2J')"),
            std::string::npos)
      << m2;
  EXPECT_EQ(m2.find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace ipg
