// An exclusive lock on an output folder, so that two runs never write one results or zoo
// folder at once (each would rewrite the other's manifest and files). It is an advisory
// flock() on the folder itself: no lock file to leave behind, and the kernel releases it
// when the process ends, however it ends. Taken again in the same process (rank 0 of an
// MPI zoo stages files, then builds), the lock is shared, not refused.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

namespace ipg {

// Another process holds the folder: a usage error for a command (found before any work).
struct FolderBusy : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

class FolderLock {
 public:
  FolderLock() = default;
  // Locks the existing folder `dir` until the last copy of the result is destroyed.
  // Throws FolderBusy naming `dir` when another process holds it, FileError
  // (engine/hdf5.h) when the folder cannot be opened or locked for another reason.
  static FolderLock take(const std::string& dir);
  bool held() const { return held_ != nullptr; }

 private:
  struct Held;
  explicit FolderLock(std::shared_ptr<Held> h) : held_(std::move(h)) {}
  std::shared_ptr<Held> held_;
};

}  // namespace ipg
