// Native model files: bit-exact round trips and every kind of bad file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/hdf5.h"
#include "engine/random.h"
#include "models/model_file.h"

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

  fs::path dir_;
  ModelConfig cfg_;
};

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
    w.set_attr_string("format", "ipguard-fingerprint");
    w.commit();
  }
  expect_error(path("other.h5"), "not an ipguard model file");
  auto net = make_network(cfg_);
  save_model(*net, path("t.h5"));
  fs::resize_file(path("t.h5"), fs::file_size(path("t.h5")) / 2);
  EXPECT_THROW(load_model(path("t.h5")), FileError);
}

TEST_F(ModelFile, AbsurdDimensionsInTheHeader) {
  {
    h5::FileWriter w(path("huge.h5"));
    w.set_attr_string("format", "ipguard-model");
    w.set_attr_int("version", 1);
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
    w.set_attr_int("version", 1);
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

}  // namespace
}  // namespace ipg
