// FolderLock (engine/folder_lock.h): another process is refused while the lock is held and
// succeeds once it is released; the same process may take it again.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <stdexcept>

#include "engine/folder_lock.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

// 0 when another process could lock the folder, 1 when it found it locked. That process
// is util-linux's flock(1) (Debian: essential), which flock()s the folder as we do; a fork
// of this process would share our lock's descriptor and this process's table of locks.
// The refusal message of a second ipguard is checked by ctest cli_hardening.
int other_process_takes(const std::string& dir) {
  const int status = std::system(("flock -n -E 10 '" + dir + "' true").c_str());
  if (!WIFEXITED(status)) return 3;
  return WEXITSTATUS(status) == 0 ? 0 : WEXITSTATUS(status) == 10 ? 1 : 2;
}

TEST(FolderLock, AnotherProcessIsRefusedUntilReleased) {
  const fs::path dir = fs::temp_directory_path() / ("ipg-folder-lock-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  EXPECT_EQ(other_process_takes(dir.string()), 0);  // free
  {
    FolderLock a = FolderLock::take(dir.string());
    ASSERT_TRUE(a.held());
    FolderLock b = FolderLock::take(dir.string());  // this process again: shared
    EXPECT_TRUE(b.held());
    EXPECT_EQ(other_process_takes(dir.string()), 1);
    a = FolderLock();
    EXPECT_EQ(other_process_takes(dir.string()), 1);  // b still holds it
  }
  EXPECT_EQ(other_process_takes(dir.string()), 0);  // released with the last copy
  EXPECT_THROW(FolderLock::take((dir / "missing").string()), std::runtime_error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ipg
