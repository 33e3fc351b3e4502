// write_file_atomically (atomic_file.h).
#include "engine/atomic_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/hdf5.h"

namespace ipg {

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw FileError(path + ": cannot write");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw FileError(path + ": cannot rename " + tmp + " into place (" + ec.message() + ")");
  }
}

}  // namespace ipg
