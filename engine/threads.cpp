// CPU thread policy (threads.h). Two parts: how idle OpenMP threads wait, which must be
// decided before libgomp initializes, and how many threads a run starts.
#include "engine/threads.h"

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

namespace ipg {

namespace {

// libgomp spins 300,000 iterations (~0.1-1 ms) at every barrier before it sleeps, and reads
// its settings once, in its own constructor. With every core busy, a spinning thread
// burns the time slice the thread it waits for needs; a run of many small parallel
// regions (the fingerprint loop) then goes 10x slower. A short spin keeps the idle
// machine's latency (regions here are 20 us and up) and sleeps soon when cores are
// shared. The user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
constexpr const char* kSpinCount = "10000";

void set_wait_policy(int, char**, char**) {
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT"))
    setenv("GOMP_SPINCOUNT", kSpinCount, 0);
}

}  // namespace

// .preinit_array entries of the executable run before any shared library's constructors,
// so libgomp's constructor sees the variable. (Linked in with set_threads().)
__attribute__((section(".preinit_array"), used)) static void (*const ipg_preinit_wait_policy)(
    int, char**, char**) = set_wait_policy;

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int max_threads_allowed() { return std::min(1024, 4 * available_cores()); }

namespace {

// Runnable tasks on the whole system right now ("procs_running" in /proc/stat, which
// counts this thread too); -1 when unknown.
int runnable_tasks() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return -1;
  char line[256];
  int n = -1;
  while (std::fgets(line, sizeof(line), f))
    if (std::sscanf(line, "procs_running %d", &n) == 1) break;
  std::fclose(f);
  return n;
}

}  // namespace

int idle_cores() {
  const int mine = available_cores();
  // The least of a few samples: a compiler or a short job may be runnable for an instant.
  int runnable = -1;
  for (int i = 0; i < 3; ++i) {
    const int r = runnable_tasks();
    if (r >= 0) runnable = runnable < 0 ? r : std::min(runnable, r);
    if (i < 2) usleep(2000);
  }
  if (runnable < 0) return mine;
  const long online = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  // Other tasks spread over all online cores; our share of them falls on our cores (a
  // container seeing a big host's /proc/stat counts only its part).
  const double others = std::max(0, runnable - 1) * static_cast<double>(mine) / online;
  return std::clamp(mine - static_cast<int>(std::lround(others)), 1, mine);
}

int set_threads(int requested) {
  if (requested < 0 || requested > max_threads_allowed())
    throw std::invalid_argument("thread count " + std::to_string(requested) +
                                " is not between 0 (automatic) and " +
                                std::to_string(max_threads_allowed()));
  const int n = requested > 0 ? requested : idle_cores();
  omp_set_num_threads(n);
  return n;
}

}  // namespace ipg
