// FolderLock (folder_lock.h): flock() on a descriptor of the folder, one per folder per
// process.
#include "engine/folder_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>

#include "engine/hdf5.h"

namespace ipg {

struct FolderLock::Held {
  int fd = -1;
  ~Held() {
    if (fd >= 0) ::close(fd);  // the last descriptor of the lock: released
  }
};

FolderLock FolderLock::take(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<Held>> held;  // this process's locks
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(dir, ec).string();
  if (ec) key = dir;
  std::lock_guard<std::mutex> lock(mu);
  auto it = held.find(key);
  if (it != held.end())
    if (std::shared_ptr<Held> h = it->second.lock()) return FolderLock(std::move(h));
  // Close-on-exec: a child program (verify --suspect-cmd, mpirun's helpers) must not keep
  // the lock alive after this process ends.
  auto h = std::make_shared<Held>();
  h->fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (h->fd < 0)
    throw FileError(dir + ": cannot open the folder to lock it (" + std::strerror(errno) + ")");
  if (::flock(h->fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    if (e == EWOULDBLOCK)
      throw FolderBusy(dir + ": another ipguard process is writing this folder; "
                                  "wait for it to end, or choose another folder");
    throw FileError(dir + ": cannot lock the folder (" + std::strerror(e) + ")");
  }
  held[key] = h;
  return FolderLock(std::move(h));
}

}  // namespace ipg
