// Outputs in progress when things go wrong: a stopping signal removes the temporary file
// (temp_files.h), and a write that fails (a full disk; here a file-size limit) is one clear
// error after which the process still exits normally (libhdf5's exit handler once crashed
// on the file it could not close). Both run in a child process (gtest death tests).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/atomic_file.h"
#include "engine/hdf5.h"
#include "engine/temp_files.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

// The test process's pid, handed to the death tests' children through the environment.
constexpr const char* kOwnerPid = "IPG_TEST_TEMP_FILES_OWNER";

class TempFiles : public ::testing::Test {
 protected:
  // A "threadsafe" death test's child re-executes the binary and runs the test again from
  // its start, SetUp included, in a process with another pid. It must work in its parent's
  // folder: a folder of its own would leave the parent checking one the child never touched
  // (a check that cannot fail) and would be left behind, since the child never tears down.
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child re-executes: no forked threads
    const char* owner = std::getenv(kOwnerPid);
    in_child_ = owner != nullptr;
    const std::string pid = in_child_ ? owner : std::to_string(getpid());
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("ipg_temp_files_" + pid + "_" + info->name());
    if (in_child_) return;
    ::setenv(kOwnerPid, pid.c_str(), 1);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (in_child_) return;
    ::unsetenv(kOwnerPid);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  bool empty_dir() const { return fs::is_empty(dir_); }

  fs::path dir_;
  bool in_child_ = false;
};

// A large tensor, so that the write cannot fit under a small file-size limit.
Tensor big_tensor() { return Tensor::zeros({256, 1024}); }

TEST_F(TempFiles, ASignalRemovesAnHdf5FileBeingWritten) {
  const std::string out = path("fp.h5");
  EXPECT_EXIT(
      {
        h5::FileWriter w(out);
        w.write("x", big_tensor());
        if (!fs::exists(w.temp_path())) std::_Exit(3);  // nothing to remove: the test is void
        ::raise(SIGTERM);
        std::_Exit(4);  // not reached: the handler ends the process by the signal
      },
      ::testing::KilledBySignal(SIGTERM), "");
  EXPECT_TRUE(empty_dir()) << "a temporary file was left in " << dir_;
}

TEST_F(TempFiles, ASignalRemovesRegisteredFilesThenTheirFolder) {
  const std::string folder = path("points"), file = folder + "/points.npy";
  EXPECT_EXIT(
      {
        fs::create_directories(folder);
        const TempFileGuard keep_folder(folder);
        std::FILE* f = std::fopen(file.c_str(), "w");
        if (!f) std::_Exit(3);
        std::fclose(f);
        const TempFileGuard keep_file(file);
        ::raise(SIGINT);
        std::_Exit(4);
      },
      ::testing::KilledBySignal(SIGINT), "");
  EXPECT_TRUE(empty_dir()) << "the folder or its file was left in " << dir_;
}

TEST_F(TempFiles, AGuardRegistersUntilDestroyedAndRemovesNothingItself) {
  const std::string file = path("kept");
  { std::FILE* f = std::fopen(file.c_str(), "w"); ASSERT_TRUE(f); std::fclose(f); }
  const int before = registered_temp_files();
  {
    const TempFileGuard guard(file);
    EXPECT_EQ(registered_temp_files(), before + 1);
  }
  EXPECT_EQ(registered_temp_files(), before);
  EXPECT_TRUE(fs::exists(file));  // its owner renames or removes it, not the guard
  // A committed HDF5 file leaves no registration behind.
  {
    h5::FileWriter w(path("done.h5"));
    w.write("x", Tensor::zeros({2}));
    w.commit();
  }
  EXPECT_EQ(registered_temp_files(), before);
}

// Runs in the child: a file-size limit (SIGXFSZ ignored, so writes fail with EFBIG).
void limit_file_size() {
  ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim {};
  lim.rlim_cur = lim.rlim_max = 64 * 1024;
  if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) std::_Exit(3);
}

TEST_F(TempFiles, AFailedHdf5WriteIsOneClearErrorAndANormalExit) {
  const std::string out = path("m.h5");
  const std::string reason = std::strerror(EFBIG);
  EXPECT_EXIT(
      {
        limit_file_size();
        try {
          h5::FileWriter w(out);
          w.write("x", big_tensor());
          w.commit();
        } catch (const FileError& e) {
          std::fprintf(stderr, "caught: %s\n", e.what());
          std::exit(0);  // through the exit handlers, as the CLI ends
        }
        std::_Exit(5);
      },
      ::testing::ExitedWithCode(0), "caught: .*m\\.h5.*\\(" + reason + "\\)");
  EXPECT_TRUE(empty_dir()) << "a partial output was left in " << dir_;
}

TEST_F(TempFiles, AFailedAtomicWriteLeavesNothing) {
  const std::string out = path("report.json");
  EXPECT_EXIT(
      {
        limit_file_size();
        try {
          write_file_atomically(out, std::string(1 << 20, 'x'));
        } catch (const FileError& e) {
          std::fprintf(stderr, "caught: %s\n", e.what());
          std::exit(0);
        }
        std::_Exit(5);
      },
      ::testing::ExitedWithCode(0), "caught: .*report\\.json: cannot write \\(" + std::string(std::strerror(EFBIG)) + "\\)");
  EXPECT_TRUE(empty_dir()) << "a partial output was left in " << dir_;
}

TEST_F(TempFiles, ACopyIsWholeOrNothing) {
  const std::string from = path("src.bin"), to = path("dst.bin");
  std::string bytes(3 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  write_file_atomically(from, bytes);
  copy_file_atomically(from, to);
  {
    std::ifstream in(to, std::ios::binary);
    const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(got == bytes) << "the copy differs from its source";
  }
  fs::remove(to);
  EXPECT_EXIT(
      {
        limit_file_size();
        try {
          copy_file_atomically(from, to);
        } catch (const FileError& e) {
          std::fprintf(stderr, "caught: %s\n", e.what());
          std::exit(0);
        }
        std::_Exit(5);
      },
      ::testing::ExitedWithCode(0),
      "caught: .*dst\\.bin: cannot write \\(" + std::string(std::strerror(EFBIG)) + "\\)");
  fs::remove(from);
  EXPECT_TRUE(empty_dir()) << "a partial copy was left in " << dir_;
  EXPECT_THROW(copy_file_atomically(path("missing"), to), FileError);
  EXPECT_TRUE(empty_dir());
}

}  // namespace
}  // namespace ipg
