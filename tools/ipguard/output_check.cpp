// Output checks (output_check.h). Files are written to a temporary name in the output's
// folder and renamed over the output (engine/hdf5.h FileWriter, experiment's
// write_atomically), so what must be writable is that folder, not the file.
#include "tools/ipguard/output_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "models/data/dataset.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

namespace fs = std::filesystem;

namespace {

// Whether a and b name the same file. When `a` exists, by device and inode (stat follows
// symlinks, and hard links share the inode); otherwise by where the paths lead.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) == 0)
    return ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code ea, eb;
  const fs::path ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  return !ea && !eb && ca == cb;
}

bool writable_dir(const fs::path& dir) {
  std::error_code ec;
  // W_OK to create the temporary file and rename it, X_OK to reach names inside.
  if (!fs::is_directory(dir, ec) || ::access(dir.c_str(), W_OK | X_OK) != 0) return false;
  // access() answers from the mode bits: root passes it in /sys and /proc, where creating a
  // file fails, and only after the work. A file made and removed at once settles it.
  const fs::path probe = dir / (".ipguard-probe-" + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno == EEXIST;  // a leftover of this pid: the folder takes files
  ::close(fd);
  ::unlink(probe.c_str());
  return true;
}

}  // namespace

std::vector<Input> with_data(std::vector<Input> inputs, const std::string& data) {
  for (const std::string& f : dataset_files(data)) inputs.push_back({"--data", f});
  return inputs;
}

void check_inputs_outside(const std::string& dir, const std::vector<Input>& inputs,
                          const std::string& why) {
  std::error_code ed;
  const fs::path d = fs::weakly_canonical(dir, ed);
  if (ed) return;
  for (const Input& in : inputs) {
    if (in.path.empty()) continue;
    std::error_code ep;
    const fs::path p = fs::weakly_canonical(in.path, ep);
    if (ep) continue;
    // p is d or below it: d's components are a prefix of p's.
    auto pi = p.begin();
    bool below = true;
    for (auto di = d.begin(); di != d.end() && below; ++di, ++pi)
      below = pi != p.end() && *pi == *di;
    if (below)
      throw UsageError(in.flag + " " + in.path + " lies in " + dir + ", " + why + "; move it");
  }
}

void check_output_path(const std::string& flag, const std::string& out,
                       const std::vector<Input>& inputs) {
  if (out.empty()) throw UsageError(flag + " needs a file name");
  for (const Input& in : inputs)
    if (!in.path.empty() && same_file(out, in.path))
      throw UsageError(flag + " " + out + " would overwrite " + in.path + " (" + in.flag +
                       "); write to another file");
  std::error_code ec;
  const fs::file_status st = fs::status(out, ec);  // follows a symlink to what it names
  if (fs::is_directory(st)) throw UsageError(flag + " " + out + " is a folder; give a file name");
  // The temporary file is renamed over `out`: that would replace a device (/dev/null), a
  // pipe or a socket with a plain file, for everyone who uses it.
  if (fs::exists(st) && !fs::is_regular_file(st))
    throw UsageError(flag + " " + out + " is not a regular file (a device, pipe or socket); " +
                     "give a file name");
}

void check_output_file(const std::string& flag, const std::string& out,
                       const std::vector<Input>& inputs) {
  check_output_path(flag, out, inputs);
  if (!out.empty() && out.back() == '/')
    throw UsageError(flag + " " + out + " ends in /, a folder's name; give a file name");
  fs::path folder = fs::path(out).parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw UsageError(flag + " " + out + ": " +
                     (fs::exists(folder, ec) ? folder.string() + " is a file, not a folder"
                                             : "folder " + folder.string() + " does not exist"));
  if (!writable_dir(folder))
    throw UsageError(flag + " " + out + ": folder " + folder.string() + " is not writable");
}

void check_output_dir(const std::string& flag, const std::string& dir) {
  if (dir.empty()) throw UsageError(flag + " needs a folder name");
  std::error_code ec;
  fs::path p = dir;
  if (fs::exists(p, ec)) {
    if (!fs::is_directory(p, ec)) throw UsageError(flag + " " + dir + " is a file, not a folder");
    if (!writable_dir(p)) throw UsageError(flag + " " + dir + " is not writable");
    return;
  }
  // Created with its missing parents (create_directories): the nearest existing one decides.
  fs::path up = fs::absolute(p, ec).parent_path();
  while (!up.empty() && !fs::exists(up, ec) && up != up.root_path()) up = up.parent_path();
  if (!writable_dir(up))
    throw UsageError(flag + " " + dir + ": cannot create it in " + up.string() +
                     " (not a writable folder)");
}

}  // namespace ipg::cli
