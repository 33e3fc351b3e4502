// Temporary files in progress, removed when the process is stopped by a signal. Outputs are
// written under a temporary name and renamed into place (atomic_file.h, h5::FileWriter);
// Ctrl-C or a job's SIGTERM in the middle of that left "<out>.tmp-<pid>" behind, hundreds
// of megabytes for a large fingerprint, and a suspect command's points (secret) in /tmp.
// While a path is registered, SIGINT, SIGTERM and SIGHUP remove it (a folder: rmdir, after
// the files) before the process ends as the signal would have ended it.
#pragma once

#include <string>

namespace ipg {

// Registers `path` for removal on a stopping signal until the guard is destroyed (which
// does not remove the path: its owner renames or removes it). The handlers are installed
// on first use, only for signals whose disposition is still the default, so a handler of
// an embedding program (Python's SIGINT) or of ours (an MPI rank's report) stays in place;
// those call remove_temp_files_now() themselves where they end the process. At most 64
// paths at once: beyond that a path is simply not registered.
class TempFileGuard {
 public:
  explicit TempFileGuard(const std::string& path);
  ~TempFileGuard();
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;

 private:
  int slot_ = -1;
};

// Removes every registered path now. Async-signal-safe (unlink and rmdir only).
void remove_temp_files_now();

// For tests: how many paths are registered.
int registered_temp_files();

}  // namespace ipg
