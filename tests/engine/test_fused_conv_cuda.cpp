// The fused convolution's forward through cuDNN's graph API (kernels/cuda/cudnn_graph_conv.h)
// against the legacy fused call it may replace (kernels/cuda/fused_conv.h), on the same
// device inputs: a ResNet block's conv with residual and ReLU, a strided conv with ReLU, a
// 1x1 projection without ReLU, a depthwise conv. Where cuDNN offers no engine under our
// precision rules, the refusal must name the convolution (the frozen network then keeps
// the legacy call); which shapes were refused is printed, for the GPU report. Also: the
// same bits twice (the cached variant pack) and the errors of misuse. Skipped, visibly,
// where no GPU is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "tests/support/parity.h"
#include "tests/support/random_tensors.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/check.h"
#include "kernels/cuda/cudnn_graph_conv.h"
#include "kernels/cuda/fused_conv.h"
#include "kernels/cuda/runtime.h"
#endif

namespace ipg {
namespace {

#if IPG_HAS_CUDA
namespace kg = kernels::cuda;

struct FusedCase {
  const char* name;
  int64_t n, c_in, hw, c_out, k, stride, padding, groups;
  bool residual, relu;
};

kernels::Conv2dShape shape_of(const FusedCase& c) {
  return kernels::Conv2dShape::square_layer(c.n, c.c_in, c.hw, c.c_out, c.k, c.stride, c.padding,
                                            c.groups);
}

using testing::random_values;

const FusedCase kFusedCases[] = {
    {"block", 10, 16, 28, 16, 3, 1, 1, 1, true, true},
    {"down", 10, 16, 28, 32, 3, 2, 1, 1, false, true},
    {"proj", 10, 16, 28, 32, 1, 2, 0, 1, false, false},
    {"depthwise", 4, 8, 9, 8, 3, 1, 1, 8, false, true},
};
#endif

// No GPU needed: cuDNN builds and checks the operation graph and ranks engines for it
// without a device, so every CUDA build checks the graph's plumbing here.
TEST(CudnnGraphConv, OperationGraphIsWellFormedAndEnginesAreOffered) {
#if IPG_HAS_CUDA
  for (const FusedCase& c : kFusedCases) {
    SCOPED_TRACE(c.name);
    int offered = -1;
    try {
      offered = kg::graph_conv_offered_engines(shape_of(c), c.residual, c.relu);
    } catch (const CudaError& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    EXPECT_GT(offered, 0);
    std::printf("[ graph API ] %s: %d engine configurations ranked\n", c.name, offered);
  }
  // A graph cuDNN must refuse: 15 input channels in 2 groups of 7.
  kernels::Conv2dShape bad = shape_of(kFusedCases[0]);
  bad.c_in = 15;
  bad.groups = 2;
  EXPECT_THROW(kg::graph_conv_offered_engines(bad, false, true), CudaError);
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

TEST(FusedConvCuda, GraphApiForwardMatchesTheLegacyCallOrNamesTheConvItRefuses) {
  IPG_REQUIRE_CUDA();
#if IPG_HAS_CUDA
  const auto& cases = kFusedCases;
  const cudaStream_t stream = kg::stream(0);
  int accepted = 0;
  std::string refused;
  for (const FusedCase& c : cases) {
    SCOPED_TRACE(c.name);
    const kernels::Conv2dShape s = shape_of(c);
    const std::vector<float> w =
        random_values(c.c_out * s.c_in_group() * c.k * c.k, 1, -0.3f, 0.3f);
    const std::vector<float> b = random_values(c.c_out, 2, -0.2f, 0.2f);
    const kg::FusedConv legacy(s, w.data(), b.data(), c.residual, c.relu, stream);
    std::unique_ptr<kg::FusedConv> graph;
    try {
      graph = std::make_unique<kg::FusedConv>(s, w.data(), b.data(), c.residual, c.relu, stream,
                                              kg::ConvEngine::Graph);
    } catch (const CudaError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("graph API"), std::string::npos) << what;
      EXPECT_NE(what.find(kernels::describe(kernels::ConvPass::Forward, s)), std::string::npos)
          << what;
      refused += std::string(" ") + c.name + " (" + what + ");";
      continue;
    }
    ++accepted;
    const Shape out{s.n, s.c_out, s.h_out(), s.w_out()};
    Generator gen(3);
    const Tensor x = Tensor::uniform({s.n, s.c_in, s.h, s.w}, 0.f, 1.f, gen).to(Device::cuda());
    const Tensor r = Tensor::uniform(out, -1.f, 1.f, gen).to(Device::cuda());
    Tensor y_legacy = Tensor::empty(out, Device::cuda()),
           y_graph = Tensor::empty(out, Device::cuda());
    const size_t ws_bytes = std::max(legacy.workspace_bytes(), graph->workspace_bytes());
    Tensor ws = Tensor::empty({int64_t(ws_bytes / sizeof(float)) + 1}, Device::cuda());
    const float* res = c.residual ? r.data() : nullptr;
    legacy.forward(x.data(), res, y_legacy.data(), ws.raw(), ws.nbytes());
    graph->forward(x.data(), res, y_graph.data(), ws.raw(), ws.nbytes());
    const std::vector<float> first = y_graph.cpu().to_vector();
    EXPECT_PARITY(y_legacy, y_graph, 1e-5, 1e-4);
    // Again, through the cached variant pack: the same bits.
    graph->forward(x.data(), res, y_graph.data(), ws.raw(), ws.nbytes());
    EXPECT_EQ(y_graph.cpu().to_vector(), first);
    // Not trivially zero: with the ReLU, some outputs are positive.
    double sum = 0;
    for (float v : first) sum += v > 0 ? v : -v;
    EXPECT_GT(sum, 1e-3);
    std::printf("[ graph API ] %s: %s\n", c.name, graph->forward_engine().c_str());

    // Misuse: a residual it was not made for, and a workspace too small.
    if (!c.residual) {
      EXPECT_THROW(graph->forward(x.data(), r.data(), y_graph.data(), ws.raw(), ws.nbytes()),
                   std::invalid_argument);
    }
    if (graph->workspace_bytes() > 0) {
      EXPECT_THROW(graph->forward(x.data(), res, y_graph.data(), ws.raw(), 0),
                   std::invalid_argument);
    }
  }
  std::printf("[ graph API ] %d of %zu convolutions accepted;%s\n", accepted,
              sizeof(cases) / sizeof(cases[0]),
              refused.empty() ? " none refused" : refused.c_str());
#endif
}

}  // namespace
}  // namespace ipg
