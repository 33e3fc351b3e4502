// zoo over the ranks (mpi_run.h): the unit is one model. Any rank can make any planned
// model (models/zoo_work.h); the work queue hands them out in build_zoo's order, and rank 0
// stages each file as it arrives (<out>/.staged, under its command's name; an interrupted
// run leaves it for --resume) and skips the values of a sweep after one that already
// stopped it. Then build_zoo runs on rank 0 over the staged files and decides as one
// process does (sweep stops, duplicates, the manifest), so the zoo is the same, byte for
// byte, for the same thread count.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/atomic_file.h"
#include "engine/folder_lock.h"
#include "engine/hdf5.h"
#include "models/forest_file.h"
#include "models/model_file.h"
#include "models/zoo_work.h"
#include "tools/ipguard/mpi_codec.h"
#include "tools/ipguard/mpi_queue.h"
#include "tools/ipguard/mpi_run.h"

namespace ipg::cli {

namespace {

namespace fs = std::filesystem;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) throw FileError(path + ": cannot read it back");
  return bytes;
}

// The test accuracy a staged model file records; -1 when it does not load with every
// check (a damaged file is made again).
double staged_accuracy(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return -1;
  try {
    Provenance p;
    if (is_forest_file(path))
      load_forest(path, &p);
    else
      load_model(path, &p);
    return p.accuracy;
  } catch (const FileError&) {
    return -1;
  }
}

}  // namespace

ZooResult build_zoo_on_ranks(Communicator& comm, const ZooPlan& plan, const ZooOptions& options,
                             const ZooProgress& progress, bool quiet) {
  if (!comm.distributed()) return build_zoo(plan, options, progress);
  ZooOptions o = options;
  const std::string staging = (fs::path(o.out) / ".staged").string();
  ZooMaker maker(plan, o);
  const bool lead = comm.rank() == 0;

  std::vector<ZooWork> work;
  std::vector<double> accuracy;  // of the models staged in this run or an interrupted one
  std::vector<int64_t> items;
  double target_accuracy = 0;
  FolderLock lock;  // rank 0's, from staging to the end of build_zoo (which shares it)
  if (lead) {
    work = zoo_work(plan, o);
    accuracy.assign(work.size(), -1);
    fs::create_directories(staging);
    lock = FolderLock::take(o.out);
    bool sweeps = false;
    for (size_t i = 0; i < work.size(); ++i) {
      sweeps = sweeps || !work[i].sweep.empty();
      if (work[i].known_accuracy >= 0) continue;  // in the old manifest
      accuracy[i] = staged_accuracy(staged_model_path(staging, work[i].command));
      if (accuracy[i] < 0) items.push_back(static_cast<int64_t>(i));
    }
    if (sweeps) target_accuracy = maker.target_accuracy();
  }

  size_t arrived = 0;
  QueueCallbacks cb;
  cb.work = [&](int64_t item) {
    // A private file on this rank's machine (rank 0's folder may not be shared).
    const fs::path tmp = fs::temp_directory_path() / ("ipguard-zoo-" + std::to_string(::getpid()) +
                                                      "-" + std::to_string(item) + ".h5");
    const auto t0 = std::chrono::steady_clock::now();
    ByteWriter w;
    try {
      w.put(maker.make(static_cast<size_t>(item), tmp.string()));
      w.put(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      w.put_string(read_bytes(tmp.string()));
    } catch (...) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw;
    }
    std::error_code ec;
    fs::remove(tmp, ec);
    return w.bytes();
  };
  cb.done = [&](int64_t item, int rank, const std::string& bytes) {
    const size_t i = static_cast<size_t>(item);
    ByteReader r(bytes);
    const double acc = r.get<double>();
    const double seconds = r.get<double>();
    write_file_atomically(staged_model_path(staging, work[i].command), r.get_string());
    accuracy[i] = acc;
    ++arrived;
    if (!quiet)
      std::fprintf(stderr, "zoo: [%zu/%zu] %s made on rank %d in %.1f s (test accuracy %.4f)\n",
                   arrived, items.size(), work[i].file.c_str(), rank, seconds, acc);
  };
  cb.describe = [&](int64_t item) { return "model " + work[static_cast<size_t>(item)].file; };
  cb.skip = [&](int64_t item) {
    return sweep_stopped_before(work, accuracy, static_cast<size_t>(item), target_accuracy,
                                o.max_accuracy_loss);
  };
  run_queue(comm, items, cb);
  if (!lead) return {};

  o.staged = staging;
  ZooResult result = build_zoo(plan, o, progress);
  std::error_code ec;
  fs::remove_all(staging, ec);  // every staged model is in the zoo now, or was not needed
  return result;
}

}  // namespace ipg::cli
