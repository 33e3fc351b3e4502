// A work queue over the ranks of a run (docs/mpi.md, "Balance"): rank 0 hands out items one
// at a time, in the given order, to whichever rank asks next, and works on items itself
// between requests (its serving runs on a second thread that alone calls MPI). Each item's
// result is bytes; rank 0 receives every result. Alone, the same calls run every item in
// order on the calling thread.
#pragma once

#include <stdint.h>

#include <functional>
#include <string>
#include <vector>

#include "tools/ipguard/mpi_comm.h"

namespace ipg::cli {

struct QueueCallbacks {
  // Runs one item on this rank; returns its result. An exception ends the whole run (the
  // message names the rank and the item).
  std::function<std::string(int64_t item)> work;
  // Rank 0 only: an item's result, from rank `rank`. Calls are serialized (never two at
  // once) but may come from rank 0's serving thread.
  std::function<void(int64_t item, int rank, const std::string& result)> done;
  // A few words naming an item ("setting cwl2 k=1 TL"), for reports.
  std::function<std::string(int64_t item)> describe;
  // Rank 0 only, optional: whether an item not yet handed out is no longer needed (the
  // results so far made it moot); it is then never run. Called with no done() running.
  std::function<bool(int64_t item)> skip;
};

// Every rank calls this with the same items (rank 0's list is the one used). Returns when
// every item's result reached rank 0 (on rank 0) or no item is left to take (elsewhere).
// Test hook, for the report of a rank that dies and --resume: IPG_MPI_TEST_EXIT_AFTER=K
// (K >= 1) makes rank 0 serve without taking items itself and every other rank exit (code
// 3, without a word) when it is handed its (K+1)-th item: with 2 ranks exactly K results
// reach rank 0 and one item is in flight when the run stops, whatever the machine's speed.
void run_queue(Communicator& comm, const std::vector<int64_t>& items, const QueueCallbacks& cb);

}  // namespace ipg::cli
