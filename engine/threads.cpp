// CPU thread policy (threads.h): how many threads a run starts. How idle threads wait is
// set before libgomp starts, by the shared library of engine/wait_policy.c.
#include "engine/threads.h"

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

// engine/wait_policy.c: referenced so that a linker dropping unused libraries
// (--as-needed) keeps it, and with it the short spin.
extern "C" int ipg_wait_policy_linked(void);

namespace ipg {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int online_cores() { return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))); }

int threads_per_rank(int mask_cores, int online, int local_ranks) {
  mask_cores = std::max(1, mask_cores);
  online = std::max(mask_cores, online);
  // Ranks sharing this mask, rounded to the nearest (a mask of 4 of 32 cores among 8 ranks:
  // 1; the whole node: all of them).
  const long sharing = std::max(
      1L, std::lround(static_cast<double>(std::max(1, local_ranks)) * mask_cores / online));
  return std::max(1, static_cast<int>(mask_cores / sharing));
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
  const int online = online_cores();
  // Other tasks spread over all online cores; our share of them falls on our cores (a
  // container seeing a big host's /proc/stat counts only its part).
  const double others = std::max(0, runnable - 1) * static_cast<double>(mine) / online;
  return std::clamp(mine - static_cast<int>(std::lround(others)), 1, mine);
}

int threads_from_environment() {
  const char* v = std::getenv("OMP_NUM_THREADS");
  if (!v || !*v) return 0;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || (*end != '\0' && *end != ',')) return 0;
  return n >= 1 && n <= max_threads_allowed() ? static_cast<int>(n) : 0;
}

int set_threads(int requested) {
  if (requested < 0 || requested > max_threads_allowed())
    throw std::invalid_argument("thread count " + std::to_string(requested) +
                                " is not between 0 (automatic) and " +
                                std::to_string(max_threads_allowed()));
  // A count the user's environment names wins over our guess from the idle cores: a
  // cluster job sets OMP_NUM_THREADS to the cores it was given.
  const int from_env = requested > 0 ? 0 : threads_from_environment();
  const int n = requested > 0 ? requested : from_env > 0 ? from_env : idle_cores();
  omp_set_num_threads(n + 0 * ipg_wait_policy_linked());
  return n;
}

}  // namespace ipg
