// Keras HDF5 import. Two kinds of evidence:
//  - committed fixtures written by h5py (tests/golden/make_keras_golden.py): a LeNet-5 in
//    save_weights and model.save layouts, fixed and variable-length strings, generic layer
//    names (matched by position), with logits from an independent NHWC forward pass;
//  - round trips of full-size ResNet50 / VGG16 (too big to commit): a random native model
//    is written here in Keras's layout (HWIO, [in, out], NHWC flatten order, Keras names,
//    BN as gamma/beta/moving_mean/moving_variance), imported, and must give the logits the
//    original gives on Keras's 'caffe'-preprocessed input (BGR, x255, minus the mean).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "engine/random.h"
#include "models/keras_import.h"
#include "models/model_file.h"
#include "tests/support/batchnorm_stats.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;
const std::string kData = std::string(IPG_TEST_DATA_DIR) + "/keras/";

// How write_keras lays the file out, and what it breaks on purpose.
struct Layout {
  bool model_save = false;       // under /model_weights, as model.save writes
  bool fixed = false;            // fixed-length strings (Keras 2.2) instead of vlen UTF-8
  bool chunk = false;            // layer_names0/1 and weight_names0/1 on the first layer
  bool generic_names = false;    // conv2d_1, dense_2, ... (position matching)
  std::vector<int64_t> flatten;  // {C, H, W} before the first Dense, or empty
  std::string drop;              // omit this layer
  std::string bad_shape;         // store this layer's first weight with a wrong shape
  std::string extra_weight;      // list a third weight in this layer
  bool extra_layer = false;      // add an unknown layer with weights
  std::string nan;               // a NaN in this layer's kernel
};

void set_names(h5::Group& g, const std::string& name, const std::vector<std::string>& v,
               const Layout& l, bool chunk) {
  const auto layout = l.fixed ? h5::StringLayout::Fixed : h5::StringLayout::Variable;
  if (!chunk || v.size() < 2) {
    g.set_attr_strings(name, v, layout);
    return;
  }
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  g.set_attr_strings(name + "0", {v.begin(), mid}, layout);
  g.set_attr_strings(name + "1", {mid, v.end()}, layout);
}

// Writes `net`'s weights as Keras would store the same model.
void write_keras(Network& net, const std::string& path, const Layout& l) {
  std::vector<std::string> order;
  std::map<std::string, std::map<std::string, Tensor*>> mods;
  for (auto list : {net.named_parameters(), net.named_buffers()})
    for (auto& [name, t] : list) {
      const std::string mod = name.substr(0, name.rfind('/'));
      if (!mods.count(mod)) order.push_back(mod);
      mods[mod][name.substr(name.rfind('/') + 1)] = t;
    }
  h5::FileWriter w(path);
  h5::Group root = w;
  if (l.model_save) root = w.create_group("model_weights");
  if (l.model_save) w.set_attr_string("model_config", "{\"class_name\": \"Functional\"}");
  root.set_attr_string("keras_version", "2.11.0");
  std::vector<std::string> layer_names = {"input_1"};
  // Keras stores an empty weight list as an empty float64 array, not as strings.
  root.create_group("input_1").set_attr_floats("weight_names", {});
  int counter = 0;
  bool first_dense = true;
  for (const std::string& mod : order) {
    auto& m = mods[mod];
    std::string name = mod;
    std::replace(name.begin(), name.end(), '/', '_');
    const bool bn = m.count("running_mean") > 0, conv = !bn && m["weight"]->ndim() == 4;
    if (l.generic_names)
      name = (bn     ? "batch_normalization_"
              : conv ? "conv2d_"
                     : "dense_") +
             std::to_string(++counter);
    if (name == l.drop) continue;
    std::vector<std::pair<std::string, Tensor>> ws;
    if (bn) {
      ws = {{"gamma", *m["weight"]},
            {"beta", *m["bias"]},
            {"moving_mean", *m["running_mean"]},
            {"moving_variance", *m["running_var"]}};
    } else {
      const Tensor& t = *m["weight"];
      const float* s = t.data();
      Tensor k;
      if (conv) {  // OIHW -> HWIO
        const int64_t co = t.dim(0), ci = t.dim(1), kh = t.dim(2), kw = t.dim(3);
        k = Tensor::empty({kh, kw, ci, co});
        for (int64_t o = 0; o < co; ++o)
          for (int64_t c = 0; c < ci; ++c)
            for (int64_t y = 0; y < kh; ++y)
              for (int64_t x = 0; x < kw; ++x)
                k.data()[((y * kw + x) * ci + c) * co + o] = s[((o * ci + c) * kh + y) * kw + x];
      } else {  // [out, in] -> [in, out], rows in NHWC flatten order for the first Dense
        const int64_t out = t.dim(0), in = t.dim(1);
        const bool perm = first_dense && !l.flatten.empty();
        const int64_t C = perm ? l.flatten[0] : in, H = perm ? l.flatten[1] : 1,
                      W = perm ? l.flatten[2] : 1;
        k = Tensor::empty({in, out});
        for (int64_t c = 0; c < C; ++c)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x)
              for (int64_t o = 0; o < out; ++o)
                k.data()[((y * W + x) * C + c) * out + o] = s[o * in + (c * H + y) * W + x];
        if (first_dense) layer_names.push_back("flatten");  // weightless, skipped
        if (first_dense) root.create_group("flatten").set_attr_floats("weight_names", {});
        first_dense = false;
      }
      ws = {{"kernel", k}};
      if (m.count("bias")) ws.push_back({"bias", *m["bias"]});
    }
    if (name == l.bad_shape) {  // one output channel short
      Shape sh = ws[0].second.shape();
      sh.back() -= 1;
      ws[0].second = Tensor::zeros(sh);
    }
    if (name == l.nan) {
      ws[0].second = ws[0].second.clone();
      ws[0].second.data()[0] = std::nanf("");
    }
    if (name == l.extra_weight) ws.push_back({"extra", Tensor::zeros({3})});
    h5::Group g = root.create_group(name);
    std::vector<std::string> wnames;
    for (auto& [role, t] : ws) {
      wnames.push_back(name + "/" + role + ":0");
      g.write(wnames.back(), t);
    }
    set_names(g, "weight_names", wnames, l, l.chunk && layer_names.size() == 1);
    layer_names.push_back(name);
  }
  if (l.extra_layer) {
    h5::Group g = root.create_group("dense_extra");
    g.write("dense_extra/kernel:0", Tensor::zeros({4, 2}));
    g.set_attr_strings("weight_names", {"dense_extra/kernel:0"});
    layer_names.push_back("dense_extra");
  }
  set_names(root, "layer_names", layer_names, l, l.chunk);
  w.commit();
}

// Keras's 'caffe' input for [0,1] RGB images: BGR, x255, minus the BGR mean.
Tensor caffe_input(const Tensor& x) {
  Tensor k = Tensor::empty(x.shape());
  const int64_t n = x.dim(0), hw = x.dim(2) * x.dim(3);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t p = 0; p < hw; ++p)
        k.data()[(i * 3 + j) * hw + p] =
            255.f * x.data()[(i * 3 + (2 - j)) * hw + p] - kCaffeMeanBgr[j];
  return k;
}

// |got - want| <= tol * max(1, max |want|), elementwise.
void expect_close(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape());
  const auto g = got.to_vector(), w = want.to_vector();
  double scale = 1.0, worst = 0.0;
  for (float v : w) scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_TRUE(std::isfinite(g[i]));
    worst = std::max(worst, std::fabs(double(g[i]) - w[i]));
  }
  EXPECT_LE(worst, tol * scale) << "largest difference " << worst << ", scale " << scale;
}

class KerasImport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ipg_keras_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a random `arch` as Keras would, imports it, and compares logits on [0,1] input
  // with the original's on the caffe-preprocessed input.
  void round_trip(const std::string& arch, int side, const Layout& layout,
                  const std::string& import_arch) {
    ModelConfig cfg;
    cfg.arch = arch;
    cfg.in_channels = 3;
    cfg.height = cfg.width = side;
    cfg.classes = 10;
    cfg.seed = 11;
    auto orig = make_network(cfg);
    testing::randomize_batch_norm(*orig, 3);
    if (arch == "vgg16-imagenet") {
      // The default init (bound 1/sqrt(fan_in)) shrinks a BN-free signal ~1.7x per layer,
      // leaving logits that are mostly biases; He scaling keeps them input-dependent.
      for (auto& [name, t] : orig->named_parameters())
        if (t->ndim() >= 2)
          for (int64_t i = 0; i < t->numel(); ++i) t->data()[i] *= std::sqrt(6.f);
    }
    orig->eval();
    const std::string file = path("keras.h5");
    write_keras(*orig, file, layout);
    KerasImportOptions opt;
    opt.arch = import_arch;  // input size inferred (vgg16) or given (resnet50)
    if (arch == "resnet50") opt.height = opt.width = side;
    KerasImportSummary s;
    auto net = import_keras(file, opt, &s);
    EXPECT_EQ(s.root, layout.model_save ? "/model_weights" : "/");
    EXPECT_EQ(s.by_name, !layout.generic_names);
    EXPECT_EQ(net->config().height, side);
    EXPECT_EQ(net->num_classes(), 10);
    Generator gen(9);
    const Tensor x = Tensor::uniform({2, 3, side, side}, 0.f, 1.f, gen);
    NoGradGuard no_grad;
    const Tensor want = orig->logits(caffe_input(x));
    // The comparison only means something if the logits depend on the image.
    const auto wv = want.to_vector();
    double spread = 0, scale = 0;
    for (size_t i = 0; i < 10; ++i) {
      spread = std::max(spread, std::fabs(double(wv[i]) - wv[10 + i]));
      scale = std::max(scale, double(std::fabs(wv[i])));
    }
    EXPECT_GT(spread, 0.05 * scale) << "logits barely depend on the input";
    expect_close(net->logits(x), want, 2e-4);
    // The native file written by convert gives the same logits.
    convert_keras(file, opt, path("native.h5"));
    auto loaded = load_model(path("native.h5"));
    loaded->eval();
    expect_close(loaded->logits(x), want, 2e-4);
  }

  // A small LeNet-5 (1 channel, no preprocessing) written with `layout`, then imported.
  std::string lenet_file(const Layout& layout) {
    ModelConfig cfg;
    cfg.arch = "lenet5";
    cfg.height = cfg.width = 28;
    auto net = make_network(cfg);
    Layout l = layout;
    l.flatten = {16, 5, 5};
    write_keras(*net, path("lenet.h5"), l);
    return path("lenet.h5");
  }
  // The FileError message of importing `file` (empty when it did not throw).
  static std::string import_error(const std::string& file) {
    KerasImportOptions opt;
    opt.arch = "lenet5";
    opt.preprocess = "none";
    try {
      import_keras(file, opt);
    } catch (const FileError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(KerasImport, H5pyFixturesGiveKerasLogits) {
  const h5::File expected(kData + "lenet5_expected.h5");
  const Tensor x = expected.dataset("x").read(DType::F32);
  const Tensor want = expected.dataset("logits").read(DType::F32);
  for (const char* name : {"lenet5_save_weights_fixed.h5", "lenet5_model_save_vlen.h5"}) {
    SCOPED_TRACE(name);
    KerasImportOptions opt;
    opt.arch = "lenet5";
    KerasImportSummary s;
    auto net = import_keras(kData + name, opt, &s);
    EXPECT_FALSE(s.by_name);  // conv2d, dense_1, ...: by position
    EXPECT_EQ(s.root,
              std::string(name).find("model_save") != std::string::npos ? "/model_weights" : "/");
    EXPECT_EQ(s.layers_loaded, 5);
    EXPECT_EQ(net->config().height, 20);  // inferred from dense's 144 = 16 x 3 x 3 rows
    NoGradGuard no_grad;
    expect_close(net->logits(x), want, 1e-5);
  }
}

TEST_F(KerasImport, ResNet50SaveWeightsFixedChunkedByName) {
  Layout l;
  l.fixed = true;
  l.chunk = true;
  round_trip("resnet50", 32, l, "resnet50");
}

TEST_F(KerasImport, Vgg16ModelSaveVlenByNameWithFlattenOrder) {
  Layout l;
  l.model_save = true;
  l.flatten = {512, 2, 2};  // 64x64 input: fc1 reads a 2x2x512 map
  round_trip("vgg16-imagenet", 64, l, "vgg16");
}

TEST_F(KerasImport, LeNetByPositionRoundTrip) {
  for (bool generic : {false, true}) {
    Layout l;
    l.generic_names = generic;
    l.chunk = generic;
    const std::string file = lenet_file(l);
    ModelConfig cfg;
    cfg.arch = "lenet5";
    cfg.height = cfg.width = 28;
    auto orig = make_network(cfg);  // same seed: the same weights as in the file
    KerasImportOptions opt;
    opt.arch = "lenet5";
    opt.preprocess = "none";
    KerasImportSummary s;
    auto net = import_keras(file, opt, &s);
    EXPECT_EQ(s.by_name, !generic);
    Generator gen(4);
    const Tensor x = Tensor::uniform({3, 1, 28, 28}, 0.f, 1.f, gen);
    NoGradGuard no_grad;
    expect_close(net->logits(x), orig->logits(x), 1e-5);
  }
}

TEST_F(KerasImport, BadInputNamesFileAndLayer) {
  auto expect_error = [&](const Layout& l, const std::vector<std::string>& parts) {
    const std::string file = lenet_file(l);
    const std::string msg = import_error(file);
    ASSERT_FALSE(msg.empty()) << "no FileError";
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  };
  Layout l;
  l.drop = "fc2";
  expect_error(l, {"'fc2'", "not found"});
  l = {};
  l.bad_shape = "conv2";
  expect_error(l, {"/conv2/conv2/kernel:0", "shape"});
  l = {};
  l.extra_weight = "fc1";
  expect_error(l, {"/fc1", "extra:0", "3 weights"});
  l = {};
  l.extra_layer = true;
  expect_error(l, {"dense_extra", "has weights"});
  l = {};
  l.nan = "fc3";
  expect_error(l, {"/fc3/fc3/kernel:0", "NaN"});
  l = {};
  l.generic_names = true;
  l.drop = "dense_4";
  expect_error(l, {"fc3", "by position"});  // counts are checked before shapes
}

TEST_F(KerasImport, NotAKerasFile) {
  ModelConfig cfg;
  cfg.arch = "lenet5";
  auto net = make_network(cfg);
  save_model(*net, path("native.h5"));
  std::string msg = import_error(path("native.h5"));
  EXPECT_NE(msg.find(path("native.h5")), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a Keras weights file"), std::string::npos) << msg;
  msg = import_error(path("missing.h5"));
  EXPECT_NE(msg.find(path("missing.h5")), std::string::npos) << msg;
  // A resnet50 import of a LeNet file: layer names differ, so by position, and the first
  // layer's kernel shape is wrong.
  const std::string file = lenet_file({});
  KerasImportOptions opt;
  opt.arch = "resnet50";
  opt.preprocess = "none";
  try {
    import_keras(file, opt);
    ADD_FAILURE() << "no FileError";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
}

TEST_F(KerasImport, RefusesKeras22ResNet50Layout) {
  // keras_applications <= 1.0.8 names (and BN epsilon 1e-3): refused with a clear message.
  const std::string file = path("old_resnet50.h5");
  {
    h5::FileWriter w(file);
    const std::vector<std::pair<std::string, Shape>> layers = {
        {"conv1", {7, 7, 3, 64}}, {"bn_conv1", {64}}, {"fc1000", {2048, 10}}};
    std::vector<std::string> names;
    for (const auto& [name, shape] : layers) {
      h5::Group g = w.create_group(name);
      g.write(name + "/kernel:0", Tensor::zeros(shape));
      g.set_attr_strings("weight_names", {name + "/kernel:0"}, h5::StringLayout::Fixed);
      names.push_back(name);
    }
    w.set_attr_strings("layer_names", names, h5::StringLayout::Fixed);
    w.commit();
  }
  KerasImportOptions opt;
  opt.arch = "resnet50";
  try {
    import_keras(file, opt);
    ADD_FAILURE() << "no FileError";
  } catch (const FileError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file + ": /bn_conv1: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace ipg
