// CPU thread policy (engine/threads.h): bounds on explicit counts, the automatic count
// from idle cores, and the short libgomp spin set before libgomp starts.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/threads.h"

namespace {

// Restores OpenMP's thread count after each test (other tests run in the same process).
class Threads : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = omp_get_max_threads(); }
  void TearDown() override { omp_set_num_threads(saved_); }
  int saved_ = 1;
};

TEST_F(Threads, ExplicitCountsWithinBoundsAreUsedExactly) {
  const int hi = ipg::max_threads_allowed();
  ASSERT_GE(hi, ipg::available_cores());
  ASSERT_LE(hi, 1024);
  for (int n : {1, 2, ipg::available_cores(), hi}) {
    EXPECT_EQ(ipg::set_threads(n), n);
    EXPECT_EQ(omp_get_max_threads(), n);
  }
}

TEST_F(Threads, CountsOutOfBoundsAreRefusedNotPassedToOpenMP) {
  const int before = omp_get_max_threads();
  EXPECT_THROW(ipg::set_threads(-1), std::invalid_argument);
  EXPECT_THROW(ipg::set_threads(ipg::max_threads_allowed() + 1), std::invalid_argument);
  EXPECT_THROW(ipg::set_threads(100000), std::invalid_argument);
  EXPECT_EQ(omp_get_max_threads(), before);
}

// Sets OMP_NUM_THREADS (or unsets it: null) for a test's lifetime.
class OmpNumThreads {
 public:
  explicit OmpNumThreads(const char* value) {
    if (const char* v = std::getenv("OMP_NUM_THREADS")) saved_ = v, had_ = true;
    if (value)
      setenv("OMP_NUM_THREADS", value, 1);
    else
      unsetenv("OMP_NUM_THREADS");
  }
  ~OmpNumThreads() {
    if (had_)
      setenv("OMP_NUM_THREADS", saved_.c_str(), 1);
    else
      unsetenv("OMP_NUM_THREADS");
  }

 private:
  std::string saved_;
  bool had_ = false;
};

TEST_F(Threads, AutomaticCountIsBetweenOneAndTheCoresWeMayUse) {
  OmpNumThreads unset(nullptr);
  const int n = ipg::set_threads(0);
  EXPECT_GE(n, 1);
  EXPECT_LE(n, ipg::available_cores());
  EXPECT_EQ(omp_get_max_threads(), n);
}

// A job script's OMP_NUM_THREADS is the automatic count; an explicit count still wins, and
// a value that is not a count we accept is left to the idle-core guess.
TEST_F(Threads, AutomaticCountFollowsOmpNumThreads) {
  const int hi = ipg::max_threads_allowed();
  {
    OmpNumThreads env("3");  // allowed: 4 per core, so at least 4
    EXPECT_EQ(ipg::threads_from_environment(), 3);
    EXPECT_EQ(ipg::set_threads(0), 3);
    EXPECT_EQ(ipg::set_threads(1), 1);
  }
  {
    OmpNumThreads env("1,4");  // OpenMP's per-level list: the outer level counts
    EXPECT_EQ(ipg::threads_from_environment(), 1);
    EXPECT_EQ(ipg::set_threads(0), 1);
    EXPECT_EQ(omp_get_max_threads(), 1);
  }
  for (const char* bad : {"", "0", "-2", "two", "2x", "99999999999999999999"}) {
    SCOPED_TRACE(bad);
    OmpNumThreads env(bad);
    EXPECT_EQ(ipg::threads_from_environment(), 0);
    const int n = ipg::set_threads(0);
    EXPECT_GE(n, 1);
    EXPECT_LE(n, ipg::available_cores());
  }
  OmpNumThreads env(std::to_string(hi + 1).c_str());
  EXPECT_EQ(ipg::threads_from_environment(), 0);
}

// A rank's share of a node: the launcher's binding or, without one, the node divided.
TEST(ThreadsPerRank, BindingOrTheNodeDividedAmongItsRanks) {
  using ipg::threads_per_rank;
  EXPECT_EQ(threads_per_rank(32, 32, 8), 4);   // no binding: the node among 8 ranks
  EXPECT_EQ(threads_per_rank(32, 32, 1), 32);  // one rank: the whole node
  EXPECT_EQ(threads_per_rank(4, 32, 8), 4);    // srun --cpus-per-task=4: its 4 cores
  EXPECT_EQ(threads_per_rank(16, 32, 8), 4);   // bound per socket: 4 ranks per socket
  EXPECT_EQ(threads_per_rank(1, 2, 2), 1);     // mpirun's per-core binding of 2 ranks
  EXPECT_EQ(threads_per_rank(2, 2, 2), 1);     // 2 ranks on this 2-core machine, unbound
  EXPECT_EQ(threads_per_rank(2, 2, 3), 1);     // oversubscribed: at least 1
  EXPECT_EQ(threads_per_rank(0, 0, 0), 1);     // nonsense in: at least 1
  // Never more threads than cores in the mask, however few ranks.
  for (int mask : {1, 3, 8, 16, 64})
    for (int ranks : {1, 2, 5, 16}) EXPECT_LE(threads_per_rank(mask, 64, ranks), mask);
}

// With as many runnable spinning threads as the machine has cores, no core is idle: the
// automatic count is 1 (not "all cores", which made a busy machine 10x slower). Spinning
// threads stay runnable whether or not they are scheduled, so this does not depend on
// timing, only on the spinners having started.
TEST_F(Threads, BusyCoresAreNotCountedAsIdle) {
  const long online = std::clamp(sysconf(_SC_NPROCESSORS_ONLN), 1L, 256L);
  std::atomic<bool> stop{false};
  std::atomic<long> started{0};
  std::vector<std::thread> spinners;
  for (long i = 0; i < online; ++i)
    spinners.emplace_back([&] {
      started.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  while (started.load() < online) std::this_thread::yield();
  const int idle = ipg::idle_cores();
  stop = true;
  for (auto& t : spinners) t.join();
  EXPECT_EQ(idle, 1);
}

// The executable's pre-init hook sets a short spin before libgomp reads its settings,
// unless the user chose a wait policy or a spin count.
TEST(ThreadsWaitPolicy, ShortSpinIsSetUnlessTheUserChose) {
  if (std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT"))
    GTEST_SKIP() << "OMP_WAIT_POLICY set by the user: the hook leaves it alone";
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  ASSERT_NE(spin, nullptr) << "GOMP_SPINCOUNT not set before libgomp started";
  EXPECT_LE(std::atol(spin), 300000L);
}

}  // namespace
