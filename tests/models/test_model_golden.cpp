// Whole networks against their PyTorch twins (tools/torch_models.py): logits and the input
// gradient d sum(logits * r) / dx, in eval mode with frozen weights (what fingerprint
// extraction differentiates), read from tests/data/models/<arch>.golden.h5
// (tests/golden/make_model_golden.py). The reference is PyTorch in float64 on the same
// float32 weights and inputs, so the tolerances bound our own float32 error.
//
// Weights: the large architectures would need 17-135 MB files, so the generator draws every
// weight from a counter-based recipe (a pure function of the tensor's path and element
// index) that RecipeValues below reimplements; every value is exactly a float32, so both
// sides hold identical weights. lenet5 and resnet20 are also committed as native model
// files written by Python (save_ipguard, gzip-compressed): loading them is the
// torch2h5 -> C++ path, and comparing them with the recipe checks the two recipe
// implementations against each other.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "models/model_file.h"
#include "models/network.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

std::string models_dir() { return std::string(IPG_TEST_DATA_DIR) + "/models/"; }

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

// The generator's recipe for the tensor stored at `name` ("params/..." or "buffers/...");
// see the header of tests/golden/make_model_golden.py. Computed in double: every value is
// a 20-bit integer times a power of two (plus 0.5 or 1), exact in float32 too.
std::vector<float> RecipeValues(const std::string& name, const Shape& shape) {
  const int64_t n = shape_numel(shape);
  const uint64_t key = fnv1a64(name);
  const std::string leaf = name.substr(name.rfind('/') + 1);
  double scale = 0;
  if (leaf == "weight" && shape.size() >= 2) {
    const int64_t fan_in = n / shape[0];
    int e = 0;
    while (3 * (int64_t{1} << (2 * (e + 1))) <= fan_in) ++e;
    scale = std::ldexp(1.0, -e);
  }
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = key + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double m = static_cast<double>(z >> 44);
    const double s = (m - 524288.0) / 524288.0;  // 2^19
    double v;
    if (leaf == "running_var")
      v = 0.5 + m / 1048576.0;  // 2^20
    else if (leaf == "running_mean" || leaf == "bias")
      v = s / 8.0;
    else if (shape.size() == 1)
      v = 1.0 + s / 4.0;  // BN gamma
    else
      v = s * scale;
    out[static_cast<size_t>(i)] = static_cast<float>(v);
  }
  return out;
}

// "<path>:<d0>x<d1>..." for every parameter and buffer, in name order, as the generator
// lists the twin's tensors.
std::vector<std::string> TensorList(Network& net) {
  std::vector<std::string> out;
  auto add = [&](const std::string& root, const std::vector<nn::NamedTensor>& ts) {
    for (const auto& [name, t] : ts) {
      std::string dims;
      for (int64_t d : t->shape()) dims += (dims.empty() ? "" : "x") + std::to_string(d);
      out.push_back(root + name + ":" + dims);
    }
  };
  add("params/", net.named_parameters());
  add("buffers/", net.named_buffers());
  std::sort(out.begin(), out.end());
  return out;
}

struct Golden {
  ModelConfig cfg;
  std::string model_file;
  std::vector<std::string> tensors;
  Tensor x, r, logits, grad_x;
};

Golden ReadGolden(const std::string& arch) {
  const h5::File f(models_dir() + arch + ".golden.h5");
  Golden g;
  g.cfg.arch = f.attr_string("arch");
  g.cfg.in_channels = static_cast<int>(f.attr_int("in_channels"));
  g.cfg.height = static_cast<int>(f.attr_int("height"));
  g.cfg.width = static_cast<int>(f.attr_int("width"));
  g.cfg.classes = static_cast<int>(f.attr_int("classes"));
  g.cfg.mean = f.attr_floats("mean");
  g.cfg.std = f.attr_floats("std");
  g.model_file = f.attr_string("model_file");
  g.tensors = f.attr_strings("tensors");
  std::sort(g.tensors.begin(), g.tensors.end());
  g.x = f.dataset("x").read(DType::F32);
  g.r = f.dataset("r").read(DType::F32);
  g.logits = f.dataset("logits").read(DType::F32);
  g.grad_x = f.dataset("grad_x").read(DType::F32);
  return g;
}

double MaxAbs(const Tensor& t) {
  double m = 0;
  for (float v : t.to_vector()) m = std::max(m, std::fabs(double(v)));
  return m;
}

// Relative to each output's own scale (logits of these random networks range from 0.7 to
// 3.5e3), since float32 error is relative: |got - ref| <= kTol * (max|ref| + |ref|).
// Measured on the development CPU (oneDNN), max |diff| / max |ref|: lenet5 2.3e-7 / 2.3e-7
// (logits / input gradient), resnet20 2.9e-7 / 8.7e-7, wrn-22-4 2.4e-7 / 5.8e-7, vgg16
// 3.6e-7 / 4.9e-7, resnet50 7.2e-7 / 1.1e-6, vgg16-imagenet 5.6e-7 / 6.5e-7: the size of
// PyTorch's own float32 error (recorded in each file as torch_float32_rel_diff_*).
// 1e-4 leaves room for other summation orders (oneDNN picks its algorithm by CPU) while
// still catching structural mistakes (a wrong layer, stride, padding or shortcut moves
// results by 1e-2 or more; BN's eps, 1e-5 vs 1.001e-5, is below any float32 test). The
// generator keeps the inputs away from ReLU / max-pool kinks, where float32 and float64
// gradients legitimately differ by O(1).
constexpr double kTol = 1e-4;

class ModelGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelGolden, LogitsAndInputGradientMatchPyTorch) {
  const Golden g = ReadGolden(GetParam());
  ASSERT_EQ(g.cfg.arch, GetParam());
  std::unique_ptr<Network> net;
  if (!g.model_file.empty()) {
    // The native file written by tools/torch_models.save_ipguard.
    net = load_model(models_dir() + g.model_file);
    const ModelConfig& c = net->config();
    EXPECT_EQ(c.arch, g.cfg.arch);
    EXPECT_EQ(c.in_channels, g.cfg.in_channels);
    EXPECT_EQ(c.height, g.cfg.height);
    EXPECT_EQ(c.classes, g.cfg.classes);
    EXPECT_EQ(c.mean, g.cfg.mean);
    EXPECT_EQ(c.std, g.cfg.std);
  } else {
    net = make_network(g.cfg);
  }
  // Module paths and shapes are the twin's (the 1:1 state_dict mapping).
  ASSERT_EQ(TensorList(*net), g.tensors);

  auto check_or_fill = [&](const std::string& root, const std::vector<nn::NamedTensor>& ts) {
    for (const auto& [name, t] : ts) {
      const std::vector<float> want = RecipeValues(root + name, t->shape());
      if (g.model_file.empty())
        t->copy_from(Tensor::from_vector(want, t->shape()));
      else
        ASSERT_EQ(t->to_vector(), want) << root + name << ": file and recipe disagree";
    }
  };
  check_or_fill("params/", net->named_parameters());
  check_or_fill("buffers/", net->named_buffers());
  net->eval();
  net->set_requires_grad(false);

  Tensor x = g.x.detach();
  x.set_requires_grad(true);
  const Tensor z = net->logits(x);
  const double zscale = MaxAbs(g.logits), gscale = MaxAbs(g.grad_x);
  const auto pz = testing::compare_tensors(g.logits, z, kTol * zscale, kTol);
  EXPECT_TRUE(pz.ok) << "logits: " << pz.message;
  z.backward(g.r);
  ASSERT_TRUE(x.grad().defined());
  const auto pg = testing::compare_tensors(g.grad_x, x.grad(), kTol * gscale, kTol);
  EXPECT_TRUE(pg.ok) << "grad_x: " << pg.message;
  for (auto& [name, p] : net->named_parameters()) EXPECT_FALSE(p->grad().defined()) << name;

  std::cout << "[ModelGolden] " << GetParam() << ": logits max|diff| " << pz.max_abs_diff
            << " (scale " << zscale << ", rel " << pz.max_abs_diff / zscale
            << "); grad_x max|diff| " << pg.max_abs_diff << " (scale " << gscale << ", rel "
            << pg.max_abs_diff / gscale << ")\n";
}

INSTANTIATE_TEST_SUITE_P(Arch, ModelGolden,
                         ::testing::Values("lenet5", "resnet20", "wrn-22-4", "vgg16", "resnet50",
                                           "vgg16-imagenet"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// A Python-written file (gzip-compressed datasets, h5py string attributes, provenance)
// reads like a C++-written one, and survives a C++ save/load with identical outputs.
TEST(ModelGoldenRoundTrip, PythonWrittenFileLoadsAndResavesBitExact) {
  for (const std::string arch : {"lenet5", "resnet20"}) {
    SCOPED_TRACE(arch);
    const std::string src = models_dir() + arch + ".h5";
    const ModelInfo info = read_model_info(src);
    EXPECT_EQ(info.config.arch, arch);
    EXPECT_EQ(info.provenance.data, "recipe");
    EXPECT_EQ(info.provenance.seed, 0);
    Provenance p;
    auto net = load_model(src, &p);
    EXPECT_EQ(p.recipe, "tests/golden/make_model_golden.py");
    EXPECT_EQ(info.num_parameters, net->num_parameters());

    const fs::path dir =
        fs::temp_directory_path() / ("ipg_model_golden_" + std::to_string(::getpid()) + "_" + arch);
    fs::create_directories(dir);
    const std::string copy = (dir / "copy.h5").string();
    save_model(*net, copy, p);
    auto again = load_model(copy);
    auto a = net->named_parameters(), b = again->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_EQ(a[i].second->to_vector(), b[i].second->to_vector()) << a[i].first;
    }
    const Golden g = ReadGolden(arch);
    EXPECT_EQ(net->logits(g.x).to_vector(), again->logits(g.x).to_vector());
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace ipg
