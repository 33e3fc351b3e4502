// write_file_atomically (atomic_file.h).
#include "engine/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "engine/hdf5.h"
#include "engine/temp_files.h"

namespace ipg {

namespace {

void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw FileError(path + ": cannot flush to disk (" + reason + ")");
  }
  ::close(fd);
}

void sync_parent_folder(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);  // best effort: the file itself is already on disk
  ::close(fd);
}

}  // namespace

void rename_durably(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  try {
    sync_file(tmp);
  } catch (...) {
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw FileError(path + ": cannot rename " + tmp + " into place (" + ec.message() + ")");
  }
  sync_parent_folder(path);
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const TempFileGuard guard(tmp);  // removed if a signal stops the process mid-write
  {
    errno = 0;
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      // The stream's failing call left its reason in errno (a full disk, a size limit).
      const std::string reason = errno ? std::strerror(errno) : "an I/O error";
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw FileError(path + ": cannot write (" + reason + ")");
    }
  }
  rename_durably(tmp, path);
}

void copy_file_atomically(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".tmp-" + std::to_string(::getpid());
  const TempFileGuard guard(tmp);
  std::error_code ec;
  auto fail = [&](const std::string& what) {
    const std::string reason = errno ? std::strerror(errno) : "an I/O error";
    std::filesystem::remove(tmp, ec);
    throw FileError(what + " (" + reason + ")");
  };
  {
    errno = 0;
    std::ifstream in(from, std::ios::binary);
    if (!in) fail(from + ": cannot read");
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(to + ": cannot write");
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), std::streamsize(buf.size()));
      if (in.bad()) fail(from + ": cannot read");
      out.write(buf.data(), in.gcount());
      if (!out) fail(to + ": cannot write");
    }
    out.flush();
    if (!out) fail(to + ": cannot write");
  }
  rename_durably(tmp, to);
}

}  // namespace ipg
