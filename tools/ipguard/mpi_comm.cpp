// The run's communicator (mpi_comm.h): MPI's world when built with MPI (IPG_HAS_MPI) and
// started by a launcher, else a single process; the per-rank defaults; rank 0's report of
// unfinished work when the run is stopped from outside.
#include "tools/ipguard/mpi_comm.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>

#include "engine/device.h"
#include "engine/temp_files.h"
#include "engine/threads.h"
#include "tools/ipguard/cli.h"

#if IPG_HAS_MPI
#include <mpi.h>
#endif
#if IPG_HAS_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace ipg::cli {

namespace {

// Sleeps between polls: short at first (a reply is usually on its way), at most 5 ms
// (a waiting rank then costs well under 1% of a core).
class Backoff {
 public:
  void wait() {
    std::this_thread::sleep_for(std::chrono::microseconds(us_));
    us_ = std::min(us_ * 2, 5000);
  }

 private:
  int us_ = 50;
};

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* n : names)
    if (const char* v = env(n)) return std::atoi(v);
  return fallback;
}

// A launcher started this process as one rank of several (Open MPI, PMIx / srun, MPICH).
bool launched_by_mpi() {
  return env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK") || env("PMI_RANK");
}

class Alone final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  int local_rank() const override { return 0; }
  void send(int, int, const std::string&) override {
    throw std::logic_error("a single process has no other rank to send to");
  }
  bool poll(int, int, int&, int&, std::string&) override { return false; }
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::cerr << "ipguard: " << message << "\n";
    std::exit(code);
  }
};

// Rank 0's report for SIGTERM / SIGINT: two buffers, the one to read named atomically.
char g_report[2][8192];
std::atomic<int> g_report_current{-1};

extern "C" void on_stop_signal(int sig) {
  const int i = g_report_current.load();
  static const char head[] = "\nipguard: the run was stopped (a rank died or the job was ended)";
  ssize_t ignored = ::write(2, head, sizeof head - 1);
  if (i >= 0) ignored = ::write(2, g_report[i], std::strlen(g_report[i]));
  ignored = ::write(2, "\n", 1);
  (void)ignored;
  remove_temp_files_now();  // an output being written when the job was ended
  _exit(128 + sig);
}

#if IPG_HAS_MPI
void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error("MPI: " + what + " failed: " + std::string(text, len));
}

class Mpi final : public Communicator {
 public:
  Mpi() {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    // Errors come back as codes (turned into messages), not as an abort inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (provided < MPI_THREAD_SERIALIZED && size_ > 1)
      abort("this MPI library cannot run rank 0's queue beside its own work "
            "(MPI_THREAD_SERIALIZED not provided)",
            1);
    // The ranks of this node, from MPI itself (MPI-3 shared-memory split): right under any
    // launcher (mpirun, srun's direct launch), where the launchers' variables differ.
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
      MPI_Comm_size(node, &local_size_);
      MPI_Comm_rank(node, &local_rank_);
      MPI_Comm_free(&node);
    } else {
      local_size_ = env_int({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"}, 1);
      local_rank_ = env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}, 0);
    }
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  int local_rank() const override { return local_rank_; }
  void send(int to, int tag, const std::string& bytes) override {
    if (bytes.size() > static_cast<size_t>(INT_MAX))
      throw std::runtime_error("MPI: a message of " + std::to_string(bytes.size()) +
                               " bytes is over MPI's 2 GiB count limit");
    check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD),
          "MPI_Send to rank " + std::to_string(to));
  }
  bool poll(int from, int tag, int& source, int& got_tag, std::string& bytes) override {
    int flag = 0;
    MPI_Status st;
    check(MPI_Iprobe(from < 0 ? MPI_ANY_SOURCE : from, tag < 0 ? MPI_ANY_TAG : tag, MPI_COMM_WORLD,
                     &flag, &st),
          "MPI_Iprobe");
    if (!flag) return false;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    bytes.assign(static_cast<size_t>(count), '\0');
    check(MPI_Recv(bytes.data(), count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE),
          "MPI_Recv from rank " + std::to_string(st.MPI_SOURCE));
    source = st.MPI_SOURCE;
    got_tag = st.MPI_TAG;
    return true;
  }
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::cerr << "ipguard: rank " << rank_ << ": " << message << "\n" << std::flush;
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1, local_rank_ = 0;
};
#endif

}  // namespace

std::string Communicator::receive(int from, int tag) {
  Backoff b;
  int source = 0, got = 0;
  std::string bytes;
  while (!poll(from, tag, source, got, bytes)) b.wait();
  return bytes;
}

std::string Communicator::broadcast(const std::string& bytes, int tag) {
  if (rank() != 0) return receive(0, tag);
  for (int r = 1; r < size(); ++r) send(r, tag, bytes);
  return bytes;
}

void Communicator::barrier(int tag) {
  if (rank() == 0) {
    for (int r = 1; r < size(); ++r) receive(r, tag);
    for (int r = 1; r < size(); ++r) send(r, tag, "");
  } else {
    send(0, tag, "");
    receive(0, tag);
  }
}

bool mpi_built() { return IPG_HAS_MPI != 0; }

namespace {
std::atomic<Communicator*> g_world{nullptr};  // set once world() made it
}  // namespace

void end_run_after_error(int code) {
  Communicator* w = g_world.load();
  if (!w || !w->distributed()) return;
#if IPG_HAS_MPI
  MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

Communicator& world() {
  static std::unique_ptr<Communicator> w = []() -> std::unique_ptr<Communicator> {
#if IPG_HAS_MPI
    if (launched_by_mpi()) {
      auto m = std::make_unique<Mpi>();
      if (m->rank() == 0 && m->size() > 1) {
        ::signal(SIGTERM, on_stop_signal);
        ::signal(SIGINT, on_stop_signal);
      }
      return m;
    }
#endif
    return std::make_unique<Alone>();
  }();
  g_world.store(w.get());
  return *w;
}

void configure_rank(GlobalOptions& g) {
  if (!mpi_built() || !launched_by_mpi()) return;
  const Communicator& w = world();
  const int local_size = w.local_size(), local_rank = w.local_rank();
  if (g.threads == 0 && local_size > 1)
    g.threads = threads_per_rank(available_cores(), online_cores(), local_size);
#if IPG_HAS_CUDA
  if ((g.device == "auto" || g.device == "cuda") && cuda_available()) {
    const int gpus = kernels::cuda::device_count();
    if (gpus > 0) g.device = "cuda:" + std::to_string(local_rank % gpus);
  }
#else
  (void)local_rank;
#endif
}

void set_unfinished_report(const std::string& text) {
  const int next = g_report_current.load() == 0 ? 1 : 0;
  const size_t n = std::min(text.size(), sizeof g_report[next] - 1);
  std::memcpy(g_report[next], text.data(), n);
  g_report[next][n] = '\0';
  g_report_current.store(next);
}

void note(const std::string& line) {
  if (world().rank() == 0) std::cerr << "ipguard: " << line << "\n";
}

}  // namespace ipg::cli
