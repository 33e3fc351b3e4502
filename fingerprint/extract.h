// Fingerprint extraction (paper section 4.2; baselines of section 2.2): n points near the
// target network's classification boundary, with the labels the target gives them. All
// candidates of a chunk (--batch, default 100: the paper's whole fingerprint) run as one
// batch through FrozenNetwork (models/frozen_network.h) and the fused steps of
// engine/ops/boundary.h: forward, per-row loss and dL/dlogits, backward to the images,
// per-row update; converged rows stay in the batch, frozen.
//
// Methods:
//   ipguard  Adam on Eq. 5, relu(Z_i - Z_j + k) + relu(max_{t != i,j} Z_t - Z_i), in [0,1]
//            pixel space; a row stops when its loss is 0 (converged) or after `iters`.
//   fgsm     one step x0 - eps * sign(grad of cross-entropy to j); converged: labeled j.
//   igsm     steps of alpha * sign(grad), kept within eps of x0; stops when labeled j
//            (a row caught in a cycle of points stops early with its budget's point).
//   cwl2     Carlini and Wagner's L2 attack as their reference code runs it (targeted,
//            tanh change of variables, Adam, binary search over the constant c with Adam
//            and the variables reset each step, abort early; box [0,1]); the point is
//            the closest success found; converged: any success. k is the confidence.
//   random   the initial points themselves (the paper's "Random" baseline).
// i is the label the target gives the initial point; j the target label: the least
// likely one at the initial point, or uniform among the others. Initial points: random
// training images (without replacement) or uniform in [0,1]^d.
#pragma once

#include <stdint.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "fingerprint/fingerprint_file.h"
#include "models/network.h"

namespace ipg {

// Whether the iterations between two reads back run as one recorded stretch
// (engine/replay.h: a CUDA graph on CUDA): IPGuard's and IGSM's between two reads of the
// converged flags (check_every), CW-L2's between two reads of its loss for the early
// abort (iters / 10). Auto: on CUDA, when check_every > 1 and the network runs fused; On:
// wherever possible, the CPU included (the CPU twin, which gives the same bits as Off: for
// tests); Off: never.
enum class ReplayMode { Auto, Off, On };

struct ExtractOptions {
  std::string method = "ipguard";       // ipguard | cwl2 | fgsm | igsm | random
  int64_t n = 100;                      // points
  std::string init = "train";           // train | random
  std::string target = "least-likely";  // least-likely | random
  double k = 1.0;                       // ipguard margin / cwl2 confidence, in logits
  double lr = 0.01;                     // ipguard / cwl2: Adam's learning rate
  int64_t iters = 1000;                 // ipguard / igsm / cwl2 (per binary step): budget
  int64_t binary_steps = 9;             // cwl2: binary search steps over c
  double c0 = 1e-3;                     // cwl2: initial constant
  bool abort_early = true;              // cwl2: stop a step when the loss stalls
  double eps = 0.03;                    // fgsm / igsm: L-inf bound around x0
  double alpha = 1.0 / 255;             // igsm: step size
  int64_t batch = 0;                    // candidates per chunk (0: auto_batch)
  // Iterations between reads of the converged flags (0: default_check_every of the
  // network's device).
  int64_t check_every = 0;
  // ipguard / igsm: the batch is compacted to the rows still searching when they are at
  // most this fraction of it (the finished ones would ride along through every remaining
  // iteration); 0: never, 1: whenever a row finished; unset: default_compact_at of the
  // network's device. Changes no point (to oneDNN's batch-size-dependent rounding). A batch
  // shared by G settings on the CPU compacts at 1 - (1 - compact_at) / G
  // (extract_fingerprints).
  std::optional<double> compact_at;
  ReplayMode replay = ReplayMode::Auto;
  // igsm: a row whose point comes back to one it held at an earlier check is in a cycle
  // and cannot succeed; it stops at the point the budget would end on, recorded as having
  // run the budget (extract_search.h, CycleWatch): the same fingerprint, sooner. false:
  // every such row runs the whole budget (for tests).
  bool stop_cycles = true;
  uint64_t seed = 0;
};

// An option of ExtractOptions that only some methods read. reads_option is the one table
// of which method reads which: the CLI refuses an option the chosen method would ignore
// (extract --method fgsm --k 5) and experiment --grid accepts a method's keys from it.
enum class MethodOption { K, Eps, Iters, BinarySteps, Lr, C0, Alpha, Target };
// Whether `method` (ipguard | cwl2 | fgsm | igsm | random) reads the option: k and lr
// ipguard and cwl2 (Adam, margin or confidence); iters those and igsm; eps fgsm and igsm;
// alpha igsm; binary_steps and c0 cwl2; target all but random (whose labels are the
// model's own).
bool reads_option(const std::string& method, MethodOption option);

// What batch 0 means for net (on its device) and n points: min(n, 100) on the CPU (the
// paper's fingerprint; larger batches gain little on a few cores); on CUDA as many
// candidates as fit in half the device's free memory, from the frozen graph's measured
// bytes per row, at most n (10,000 LeNet-5 or ResNet20 candidates fit an H200 easily).
int64_t auto_batch(Network& net, int64_t n);

// What check_every 0 means on a device: 1 on the CPU, 10 on CUDA.
int64_t default_check_every(Device device);

// What an unset compact_at means on a device: 0.75 on the CPU, where an iteration costs in
// proportion to its rows and a frozen network is cheap to build (ResNet20: ~75 ms, the cost
// of ~100 rows' iteration), so the batch follows its live rows closely, in steps of 4 rows;
// 0.25 on CUDA, where finished rows cost little until the device is full and each new
// batch size costs a cuDNN algorithm search, so batches shrink to powers of two.
double default_compact_at(Device device);

// Throws std::invalid_argument naming the first bad option.
void validate(const ExtractOptions& o);

struct ExtractProgress {
  int64_t done = 0;        // points finished in earlier chunks
  int64_t chunk_rows = 0;  // candidates in this chunk
  int64_t active = 0;      // of them still searching
  int64_t iteration = 0;
  int64_t batch_rows = 0;  // rows in the device batch now (fewer than chunk_rows once compacted)
  int64_t replays = 0;     // stretches of this chunk run as replays so far (ExtractOptions::replay)
  int64_t cycled = 0;      // igsm: rows of this chunk stopped in a cycle so far (stop_cycles)
  int64_t plans = 0;       // frozen networks built so far (one per batch size, shared by
                           // every chunk and compaction of that size while it is kept)
  double plan_seconds = 0;  // spent building the frozen networks so far (tracing, planning
                            // and checking them; on CUDA also cuDNN's algorithm searches)
  std::string replay_note;  // why stretches that were to be replayed ran directly (a
                            // recording refused, or the network unfused); empty otherwise
};

// net: on the device to run on (its weights are read once per chunk; evaluation mode is
// set). train_images: float32 [N, C, H, W] in [0,1] on the CPU, for init "train" (may be
// null otherwise). Returns the fingerprint with everything but model_sha256, which only
// the caller (who has the file) knows.
Fingerprint extract_fingerprint(Network& net, const ExtractOptions& o, const Tensor* train_images,
                                const std::function<void(const ExtractProgress&)>& progress = {});

// The same extraction, searching only the chunks (first candidate, rows: o.batch, resolved
// as above, at a time) for which run_chunk is true; the rows of the other chunks keep
// zeros. A chunk's rows depend on the seed and the chunk alone (CW-L2's early abort reads
// the whole chunk's loss: chunks, not rows, are the unit to share out), so chunks run
// apart and put together give the whole extraction's bits (tools/ipguard/mpi_extract.cpp).
Fingerprint extract_fingerprint(Network& net, const ExtractOptions& o, const Tensor* train_images,
                                const std::function<void(const ExtractProgress&)>& progress,
                                const std::function<bool(int64_t first, int64_t rows)>& run_chunk);

// Several extractions as one batch, to fill a device that one fingerprint leaves mostly
// idle (an experiment's settings: IPGuard at several k, a method under several modes).
// Every chunk of every setting (the same chunk boundaries for all) runs side by side in one
// batch, each row with its own setting's initial point, target rule and, for IPGuard and
// CW-L2, k. Settings may differ in seed, init, target and k; everything else must be equal
// (batch_share_mismatch). CW-L2's early abort stays each setting's own, read from its own
// rows' loss; on the CPU the settings that stopped a binary step leave the batch until the
// next (run_cwl2), so sharing costs no extra rows there.
// Each fingerprint is the one extract_fingerprint gives its options alone, row for row, up
// to the last bits a different batch size may change in the network's kernels (the same
// bits on the CPU in practice: tests/fingerprint/test_extract_group.cpp). batch 0: the device's
// rows (auto_batch for every setting's n together) shared out evenly.
std::vector<Fingerprint> extract_fingerprints(
    Network& net, const std::vector<ExtractOptions>& group, const Tensor* train_images,
    const std::function<void(const ExtractProgress&)>& progress = {});
// Why options b cannot share a batch with a ("" when they can).
std::string batch_share_mismatch(const ExtractOptions& a, const ExtractOptions& b);

}  // namespace ipg
