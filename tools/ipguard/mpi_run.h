// The commands' work shared over the ranks of a run (docs/mpi.md). Each function gives
// rank 0 what one process would compute, bit for bit; alone, it is the plain library call.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "fingerprint/experiment_folder.h"
#include "fingerprint/extract.h"
#include "models/zoo.h"
#include "tools/ipguard/mpi_comm.h"

namespace ipg::cli {

// extract_fingerprint with its chunks (o.batch candidates; batch 0 resolved by rank 0 for
// all) handed out by the work queue. Rank 0 returns the whole fingerprint, the others one
// holding only their chunks.
Fingerprint extract_on_ranks(Communicator& comm, Network& net, const ExtractOptions& o,
                             const Tensor* train_images,
                             const std::function<void(const ExtractProgress&)>& progress);

// run_recorded with the settings still to do handed out one at a time: the other ranks
// send each result and its fingerprint to rank 0, which saves the fingerprint and rewrites
// results.json (settings in planned order) after each. Returns what run_recorded returns
// (on rank 0; empty elsewhere).
std::vector<std::string> run_recorded_on_ranks(
    Communicator& comm, ExperimentRecord& rec, LoadedZoo& zoo, const Tensor* train_images,
    Device device, const ResultsFolder* folder,
    const std::function<void(const ExperimentProgress&)>& progress);

// build_zoo with the models shared out one at a time (any rank makes any model; rank 0
// stages the files in <out>/.staged and skips sweep values past a stop), then build_zoo on
// rank 0 over the staged files: the zoo one process makes, byte for byte. quiet: no line
// per model made. Returns build_zoo's result on rank 0, an empty one elsewhere.
ZooResult build_zoo_on_ranks(Communicator& comm, const ZooPlan& plan, const ZooOptions& o,
                             const ZooProgress& progress, bool quiet);

}  // namespace ipg::cli
