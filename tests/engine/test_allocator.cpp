// The caching allocator serves a steady-state loop from its cache.
#include <gtest/gtest.h>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

// One boundary-search-like iteration: forward, backward to the input, update.
void iteration(Tensor& x, const Tensor& w) {
  x.zero_grad();
  ops::sum(ops::relu(ops::linear(x, w))).backward();
  NoGradGuard g;
  Tensor xd = x.detach();
  ops::axpy_(xd, x.grad(), -0.1f);
}

void steady_state_allocates_nothing(Device dev) {
  Generator gen(7);
  Tensor x = Tensor::uniform({32, 64}, 0.f, 1.f, gen, dev);
  x.set_requires_grad(true);
  const Tensor w = Tensor::normal({10, 64}, 0.f, 0.1f, gen, dev);
  auto& alloc = CachingAllocator::for_device(dev);
  iteration(x, w);
  iteration(x, w);
  const uint64_t before = alloc.stats().system_allocs;
  const uint64_t requests = alloc.stats().requests;
  for (int i = 0; i < 10; ++i) iteration(x, w);
  EXPECT_EQ(alloc.stats().system_allocs, before);
  EXPECT_GT(alloc.stats().requests, requests);  // the loop did allocate tensors
}

TEST(CachingAllocator, SteadyStateLoopAllocatesNothingNewCpu) {
  steady_state_allocates_nothing(Device::cpu());
}

TEST(CachingAllocator, SteadyStateLoopAllocatesNothingNewCuda) {
  IPG_REQUIRE_CUDA();
  steady_state_allocates_nothing(Device::cuda(0));
}

TEST(CachingAllocator, RoundingGroupsNearbySizes) {
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size((1u << 20) + 1), (1u << 20) + (64u << 10));
}

TEST(CachingAllocator, ReleasedBlockIsReused) {
  auto& alloc = CachingAllocator::for_device(Device::cpu());
  void* p = alloc.allocate(3000);
  alloc.release(p, 3000);
  void* q = alloc.allocate(2900);  // same rounded size
  EXPECT_EQ(p, q);
  alloc.release(q, 2900);
}

// A process that meets many tensor sizes (compaction's shrinking batches, one model after
// another) keeps at most cache_limit() bytes cached, giving back the least recently
// released blocks; the block it released last is still handed out again.
TEST(CachingAllocator, CpuCacheStaysBoundedOverManySizes) {
  auto& alloc = CachingAllocator::for_device(Device::cpu());
  const AllocatorStats start = alloc.stats();
  const size_t base = alloc.cache_limit() / 64;
  size_t released = 0, size = 0;
  void* last = nullptr;
  for (int i = 0; released <= 3 * alloc.cache_limit(); ++i) {
    size = CachingAllocator::round_size(base + size_t(i) * (64u << 10));  // a new size each time
    last = alloc.allocate(size);  // never written: costs address space, not memory
    alloc.release(last, size);
    released += size;
  }
  const AllocatorStats end = alloc.stats();
  EXPECT_LE(end.cached_bytes, alloc.cache_limit());
  EXPECT_EQ(end.reserved_bytes - end.in_use_bytes, end.cached_bytes);
  EXPECT_GT(end.evictions, start.evictions);
  void* again = alloc.allocate(size);
  EXPECT_EQ(again, last);
  alloc.release(again, size);
}

}  // namespace
}  // namespace ipg
