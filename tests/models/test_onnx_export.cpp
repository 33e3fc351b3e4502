// ONNX out (models/onnx_export.h): every architecture written as ONNX and read back by the
// ONNX reader computes the same logits and input gradients as the network itself (with
// non-trivial batch-norm statistics and input normalization, so both are really
// exported); the graph digest catches a flipped byte; a network exports the same bytes
// twice.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/hdf5.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "models/frozen_network.h"
#include "models/onnx_export.h"
#include "models/onnx_model.h"
#include "tests/support/arch_cases.h"
#include "tests/support/network_checks.h"

namespace ipg {
namespace {

using testing::rel_gap;
using testing::input_grad;

using testing::ArchCase;

// Seeded weights, randomized batch-norm statistics and a non-trivial normalization, so
// folding them wrongly or dropping them shows.
std::unique_ptr<Network> random_network(const ArchCase& c) {
  auto net = testing::build_arch(c);
  net->eval();
  return net;
}

class OnnxExport : public ::testing::TestWithParam<ArchCase> {};

TEST_P(OnnxExport, ReadBackComputesWhatTheNetworkComputes) {
  const ArchCase c = GetParam();
  auto net = random_network(c);
  const std::string bytes = onnx_export_bytes(*net);
  EXPECT_EQ(onnx_export_bytes(*net), bytes) << "the export is not deterministic";
  auto back = load_onnx_bytes(bytes, c.arch + ".onnx");
  EXPECT_EQ(back->num_classes(), 10);
  back->eval();

  // Batch 3: not the batch size the export traced (2).
  Generator gen(9);
  const Tensor x = Tensor::uniform({3, c.channels, c.side, c.side}, 0.f, 1.f, gen);
  const Tensor r = Tensor::normal({3, 10}, 0.f, 1.f, gen);
  Tensor want, got;
  {
    NoGradGuard no_grad;
    want = net->logits(x);
    got = back->logits(x);
  }
  EXPECT_LT(rel_gap(got, want), 1e-4) << c.arch;
  net->set_requires_grad(false);
  back->set_requires_grad(false);
  EXPECT_LT(rel_gap(input_grad(*back, x, r), input_grad(*net, x, r)), 1e-3) << c.arch;
}

// The fingerprint loop's traced plan takes the exported graph as it takes the network:
// fully fused, the same steps (the reader's own identity normalization merges into the
// first affine step, which the step's provenance shows; the reader may order a residual
// block's two convolutions the other way, so steps are compared without their operands).
TEST(OnnxExportPlan, FusesLikeTheNetwork) {
  for (const ArchCase& c : {ArchCase{"lenet5", 1, 28}, ArchCase{"resnet20", 3, 32}}) {
    auto net = random_network(c);
    auto back = load_onnx_bytes(onnx_export_bytes(*net), "x.onnx");
    const Shape in = {4, c.channels, c.side, c.side};
    FrozenNetwork a(*net, in), b(*back, in);
    ASSERT_TRUE(a.fused()) << a.why_unfused();
    EXPECT_TRUE(b.fused()) << c.arch << ": " << b.why_unfused();
    auto steps = [](std::string t) {  // the steps without what they were made from
      std::string out;
      for (size_t at = 0; at < t.size();) {
        const size_t eol = t.find('\n', at);
        const std::string line = t.substr(at, eol - at);
        const std::string step = line.substr(0, line.find("  <- "));
        const size_t open = step.find('('), close = step.find(')');
        out += open == std::string::npos ? step : step.substr(0, open) + step.substr(close + 1);
        out += "\n";
        at = eol == std::string::npos ? t.size() : eol + 1;
      }
      return out;
    };
    EXPECT_EQ(steps(b.plan_text()), steps(a.plan_text())) << c.arch;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryArchitecture, OnnxExport,
                         ::testing::Values(ArchCase{"lenet5", 1, 28}, ArchCase{"resnet20", 3, 32},
                                           ArchCase{"wrn-22-4", 3, 32}, ArchCase{"resnet50", 3, 32},
                                           ArchCase{"vgg16", 3, 32},
                                           ArchCase{"vgg16-imagenet", 3, 32}),
                         [](const auto& info) { return testing::arch_case_name(info.param); });

TEST(OnnxExportIntegrity, AFlippedByteIsAnErrorNeverAnotherModel) {
  auto net = random_network({"lenet5", 1, 28});
  const std::string bytes = onnx_export_bytes(*net);
  Generator gen(3);
  const Tensor x = Tensor::uniform({2, 1, 28, 28}, 0.f, 1.f, gen);
  Tensor want;
  {
    NoGradGuard no_grad;
    want = load_onnx_bytes(bytes, "ok.onnx")->logits(x);
  }
  // Bytes across the whole file: weights, the graph's structure, the metadata, the digest.
  // A flip is refused with the file's name (one in the digest's own key too: the file keeps
  // its other ipguard.* entries), or loads the very same model: never a different one.
  int refused = 0, tried = 0;
  for (size_t at = 0; at < bytes.size(); at += bytes.size() / 211 + 1) {
    std::string bad = bytes;
    bad[at] = char(~bad[at]);
    ++tried;
    try {
      auto m = load_onnx_bytes(bad, "flipped.onnx");
      NoGradGuard no_grad;
      EXPECT_EQ(m->logits(x).to_vector(), want.to_vector())
          << "byte " << at << " of " << bytes.size() << " flipped: loaded as another model";
    } catch (const FileError& e) {
      EXPECT_NE(std::string(e.what()).find("flipped.onnx: "), std::string::npos) << e.what();
      ++refused;
    }
  }
  EXPECT_GE(refused, tried - 2) << "the digest should refuse nearly every flip";
  // Every byte of the digest's key: each flip refused, none loaded unchecked.
  const size_t key = bytes.rfind(kOnnxDigestKey);
  ASSERT_NE(key, std::string::npos);
  for (size_t at = key; at < key + std::string(kOnnxDigestKey).size(); ++at) {
    std::string bad = bytes;
    bad[at] = char(bad[at] ^ 1);
    EXPECT_THROW(load_onnx_bytes(bad, "flipped.onnx"), FileError) << "key byte " << at - key;
  }
}

}  // namespace
}  // namespace ipg
