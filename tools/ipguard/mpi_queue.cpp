// The work queue of mpi_queue.h. Messages: a worker sends Ready once, then Result (item +
// bytes) or Failed (item + message); rank 0 answers each with Assign (an item, or -1: no
// more). Rank 0's serving thread is the only one of its threads that calls MPI while the
// queue runs (MPI_THREAD_SERIALIZED).
#include "tools/ipguard/mpi_queue.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ipg::cli {

namespace {

std::string encode_item(int64_t item) {
  std::string s(sizeof item, '\0');
  std::memcpy(s.data(), &item, sizeof item);
  return s;
}

int64_t decode_item(const std::string& s) {
  if (s.size() < sizeof(int64_t)) throw std::runtime_error("MPI: a queue message without its item");
  int64_t item = 0;
  std::memcpy(&item, s.data(), sizeof item);
  return item;
}

// Rank 0's side: the next item to hand out and what every rank is working on.
class Server {
 public:
  Server(Communicator& comm, const std::vector<int64_t>& items, const QueueCallbacks& cb)
      : comm_(comm),
        items_(items),
        cb_(cb),
        working_(static_cast<size_t>(comm.size())),
        did_(static_cast<size_t>(comm.size()), 0) {}

  // The next item for `rank` (-1: none left).
  int64_t take(int rank) {
    std::lock_guard<std::mutex> lock(mu_);
    working_[static_cast<size_t>(rank)].clear();
    if (cb_.skip) {
      std::lock_guard<std::mutex> results(done_mu_);
      for (; next_ < items_.size() && cb_.skip(items_[next_]); ++next_) ++skipped_;
    }
    if (next_ >= items_.size()) {
      publish();
      return -1;
    }
    const int64_t item = items_[next_++];
    working_[static_cast<size_t>(rank)] = cb_.describe ? cb_.describe(item) : std::to_string(item);
    publish();
    return item;
  }

  void done(int64_t item, int rank, const std::string& result) {
    std::lock_guard<std::mutex> lock(done_mu_);
    cb_.done(item, rank, result);
    ++did_[static_cast<size_t>(rank)];
  }

  // "rank 0 did 3, rank 1 did 2": how the queue balanced the items (read after serving).
  std::string shares() const {
    std::string text;
    for (size_t r = 0; r < did_.size(); ++r)
      text += (r ? ", rank " : "rank ") + std::to_string(r) + " did " + std::to_string(did_[r]);
    if (skipped_) text += ", " + std::to_string(skipped_) + " not needed";
    return text;
  }

  // Serves the other ranks until each was told there is nothing left (or `stop_`).
  void serve() {
    int finished = 0;
    int source = 0, tag = 0;
    std::string bytes;
    int idle_us = 50;
    while (finished < comm_.size() - 1 && !stop_.load()) {
      if (!comm_.poll(-1, -1, source, tag, bytes)) {
        std::this_thread::sleep_for(std::chrono::microseconds(idle_us));
        idle_us = std::min(idle_us * 2, 5000);
        continue;
      }
      idle_us = 50;
      try {
        if (tag == kTagFailed) {
          const int64_t item = decode_item(bytes);
          comm_.abort("rank " + std::to_string(source) + " failed on " + name(item) + ": " +
                          bytes.substr(sizeof(int64_t)),
                      1);
        }
        if (tag == kTagResult) done(decode_item(bytes), source, bytes.substr(sizeof(int64_t)));
        if (tag != kTagResult && tag != kTagReady) continue;
        const int64_t item = take(source);
        comm_.send(source, kTagAssign, encode_item(item));
        if (item < 0) ++finished;
      } catch (const std::exception& e) {
        comm_.abort(std::string("while receiving the results: ") + e.what(), 1);
      }
    }
  }

  void stop() { stop_.store(true); }
  std::string name(int64_t item) const {
    return cb_.describe ? cb_.describe(item) : "item " + std::to_string(item);
  }

 private:
  // The text rank 0's stop handler writes: what each rank had taken and not returned.
  void publish() {
    std::string text;
    for (size_t r = 0; r < working_.size(); ++r)
      if (!working_[r].empty()) text += "\n  rank " + std::to_string(r) + " was working on " + working_[r];
    text = text.empty() ? "; every item handed out had come back"
                        : "; unfinished:" + text + "\n  (finished items are kept: --resume, where the "
                                                   "command has it, redoes only what is missing)";
    set_unfinished_report(text);
  }

  Communicator& comm_;
  const std::vector<int64_t>& items_;
  const QueueCallbacks& cb_;
  std::mutex mu_, done_mu_;
  size_t next_ = 0;
  int64_t skipped_ = 0;  // items skip() found moot
  std::vector<std::string> working_;
  std::vector<int64_t> did_;  // results received per rank
  std::atomic<bool> stop_{false};
};

// IPG_MPI_TEST_EXIT_AFTER (mpi_queue.h); 0 when unset.
int test_exit_after() {
  const char* v = std::getenv("IPG_MPI_TEST_EXIT_AFTER");
  return v ? std::max(0, std::atoi(v)) : 0;
}

void work_as_rank0(Communicator& comm, const std::vector<int64_t>& items, const QueueCallbacks& cb) {
  Server server(comm, items, cb);
  std::thread serving([&server] { server.serve(); });
  const bool serve_only = test_exit_after() > 0;
  try {
    for (int64_t item = serve_only ? -1 : server.take(0); item >= 0; item = server.take(0))
      server.done(item, 0, cb.work(item));
  } catch (const std::exception& e) {
    // The serving thread must leave MPI before this thread calls it.
    server.stop();
    serving.join();
    comm.abort(std::string("failed: ") + e.what(), 1);
  }
  serving.join();
  note(std::to_string(items.size()) + " work items over " + std::to_string(comm.size()) +
       " ranks: " + server.shares());
}

void work_as_worker(Communicator& comm, const QueueCallbacks& cb) {
  const int limit = test_exit_after();
  int handed = 0;
  comm.send(0, kTagReady, "");
  for (;;) {
    const int64_t item = decode_item(comm.receive(0, kTagAssign));
    if (item < 0) return;
    if (limit > 0 && ++handed > limit) _exit(3);  // the test of a rank that dies mid-item
    std::string result;
    try {
      result = cb.work(item);
    } catch (const std::exception& e) {
      comm.send(0, kTagFailed, encode_item(item) + e.what());
      comm.receive(0, kTagAssign);  // never comes: rank 0 ends the run
      std::_Exit(1);
    }
    comm.send(0, kTagResult, encode_item(item) + result);
  }
}

}  // namespace

void run_queue(Communicator& comm, const std::vector<int64_t>& items, const QueueCallbacks& cb) {
  if (!comm.distributed()) {
    for (int64_t item : items)
      if (!cb.skip || !cb.skip(item)) cb.done(item, 0, cb.work(item));
    return;
  }
  if (comm.rank() == 0)
    work_as_rank0(comm, items, cb);
  else
    work_as_worker(comm, cb);
}

}  // namespace ipg::cli
