// Replay (engine/replay.h): recorded work runs again at each replay, on the CPU (the
// function itself) and on CUDA (a CUDA graph); work that allocates or reads values back
// is never replayed.
#include <gtest/gtest.h>

#include <string>

#include "engine/ops/elementwise.h"
#include "engine/replay.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

// x += 1 per run, into an existing tensor: allocation-free.
void add_one(Tensor& x) { ops::axpy_(x, Tensor::ones(x.shape(), x.device()), 1.f); }

TEST(Replay, CpuRunsTheRecordedWorkAtEachReplayOnly) {
  Tensor x = Tensor::zeros({4});
  const Tensor one = Tensor::ones({4});
  Replay r(Device::cpu());
  std::string why;
  ASSERT_TRUE(r.record([&] { ops::axpy_(x, one, 1.f); }, &why)) << why;
  EXPECT_EQ(x.to_vector()[0], 0.f);  // recording runs nothing
  for (int i = 0; i < 3; ++i) r.replay();
  EXPECT_EQ(x.to_vector(), std::vector<float>(4, 3.f));
  EXPECT_THROW(r.record([] {}, &why), std::logic_error);
}

TEST(Replay, CpuReplayOfAllocatingWorkIsAnError) {
  Tensor x = Tensor::zeros({4});
  Replay r(Device::cpu());
  std::string why;
  ASSERT_TRUE(r.record([&] { add_one(x); }, &why));
  EXPECT_THROW(r.replay(), std::logic_error);  // Tensor::ones allocates each time
  Replay empty(Device::cpu());
  EXPECT_THROW(empty.replay(), std::logic_error);
}

// A read back to the host synchronizes on CUDA (a capture fails); the CPU twin refuses it
// too, and the scope ends with the replay: reads afterwards are fine.
TEST(Replay, CpuReplayThatReadsValuesBackIsAnError) {
  Tensor x = Tensor::zeros({4});
  const Tensor one = Tensor::ones({4});
  for (int which = 0; which < 3; ++which) {
    Replay r(Device::cpu());
    std::string why;
    ASSERT_TRUE(r.record([&, which] {
      ops::axpy_(x, one, 1.f);
      if (which == 0) (void)x.to_vector();
      if (which == 1) (void)x.narrow0(0, 1).item();
      if (which == 2) (void)x.cpu();
    }, &why));
    EXPECT_THROW(r.replay(), std::logic_error) << "case " << which;
    EXPECT_EQ(x.to_vector()[0], static_cast<float>(which + 1));
  }
}

TEST(ReplayCuda, GraphReplaysTheCapturedWork) {
  IPG_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  Tensor x = Tensor::zeros({1000}, gpu);
  const Tensor one = Tensor::ones({1000}, gpu);
  Replay r(gpu);
  std::string why;
  ASSERT_TRUE(r.record([&] { ops::axpy_(x, one, 2.f); }, &why)) << why;
  EXPECT_EQ(x.cpu().to_vector()[0], 0.f);  // captured, not run
  for (int i = 0; i < 5; ++i) r.replay();
  EXPECT_EQ(x.cpu().to_vector(), std::vector<float>(1000, 10.f));
  // Work that allocates is refused, and the stream still works afterwards.
  Replay bad(gpu);
  EXPECT_FALSE(bad.record([&] { add_one(x); }, &why));
  EXPECT_FALSE(why.empty());
  add_one(x);
  EXPECT_EQ(x.cpu().to_vector()[0], 11.f);
}

}  // namespace
}  // namespace ipg
