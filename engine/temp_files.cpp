// TempFileGuard (temp_files.h): fixed slots a signal handler can read without locks.
#include "engine/temp_files.h"

#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace ipg {

namespace {

constexpr int kSlots = 64;
enum : int { kFree = 0, kFilling = 1, kSet = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  char path[PATH_MAX];
};
Slot g_slots[kSlots];

extern "C" void on_stop(int sig) {
  remove_temp_files_now();
  // Ended as the signal would have ended it: the caller sees "killed by SIGINT".
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
      struct sigaction act {};
      act.sa_handler = on_stop;
      sigemptyset(&act.sa_mask);
      ::sigaction(sig, &act, nullptr);
    }
  });
}

}  // namespace

TempFileGuard::TempFileGuard(const std::string& path) {
  if (path.empty() || path.size() >= PATH_MAX) return;
  install_handlers();
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kFilling)) continue;
    std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
    g_slots[i].state.store(kSet);
    slot_ = i;
    return;
  }
}

TempFileGuard::~TempFileGuard() {
  if (slot_ >= 0) g_slots[slot_].state.store(kFree);
}

void remove_temp_files_now() {
  // Files first, then folders (rmdir removes only an emptied one).
  for (int pass = 0; pass < 2; ++pass)
    for (auto& s : g_slots)
      if (s.state.load() == kSet) {
        if (pass == 0)
          ::unlink(s.path);
        else
          ::rmdir(s.path);
      }
}

int registered_temp_files() {
  int n = 0;
  for (auto& s : g_slots) n += s.state.load() == kSet;
  return n;
}

}  // namespace ipg
