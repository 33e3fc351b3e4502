// The processes of one run (docs/mpi.md): under `mpirun -np N` (or srun) with a build that
// has MPI (IPG_MPI), N ranks of MPI_COMM_WORLD; otherwise one process alone, through the
// same API, so the commands have one code path. MPI stays in this layer (tools/): the
// libraries below never see it.
#pragma once

#include <stdint.h>

#include <string>

namespace ipg::cli {

struct GlobalOptions;

// Point-to-point messages of bytes with a tag. Every wait polls and sleeps (a blocking MPI
// call spins a core, which a rank computing on the same node wants).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks on this node and this rank among them (1 and 0 alone).
  virtual int local_size() const = 0;
  virtual int local_rank() const = 0;
  bool distributed() const { return size() > 1; }
  virtual void send(int to, int tag, const std::string& bytes) = 0;
  // A waiting message from `from` (-1: any rank) with `tag` (-1: any tag): true and the
  // message in the out-parameters, or false at once when none is waiting.
  virtual bool poll(int from, int tag, int& source, int& got_tag, std::string& bytes) = 0;
  // Waits (polling) for a message from `from` with `tag`.
  std::string receive(int from, int tag);
  // Rank 0's bytes on every rank.
  std::string broadcast(const std::string& bytes_on_rank0, int tag);
  // Every rank waits here for the others (polling, not spinning).
  void barrier(int tag);
  // Ends every rank of the run with exit code `code` after `message` (one line on stderr):
  // a failure one rank found that the others cannot finish without.
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
};

// The run's communicator: MPI's world when this build has MPI and the process was started
// by mpirun / srun (their environment says so), else one process. Initialized on first use;
// MPI is finalized at exit.
Communicator& world();

// Whether this build links MPI (IPG_MPI).
bool mpi_built();

// Per-rank defaults, called once after parsing: with several ranks, --threads 0 becomes the
// cores of the node shared by its ranks (available cores / ranks on the node, at least 1),
// and --device auto|cuda becomes cuda:(local rank mod GPUs) when GPUs exist. Alone: nothing.
void configure_rank(GlobalOptions& g);

// After a command failed on this rank (its message already written): when MPI runs with
// other ranks, ends them all with `code` (they may be waiting for this one); else nothing.
void end_run_after_error(int code);

// What each rank of the run is working on, for the report when the run is stopped from
// outside (a rank died and mpirun ended the others with SIGTERM): rank 0 keeps this text
// and its SIGTERM / SIGINT handler writes it to stderr before exiting.
void set_unfinished_report(const std::string& text);

// Rank 0's notes on stderr, one line, prefixed "ipguard: "; other ranks stay quiet except
// for errors.
void note(const std::string& line);

// Tags of the messages of this layer.
enum MpiTag : int { kTagReady = 1, kTagAssign, kTagResult, kTagFailed, kTagBroadcast, kTagBarrier };

}  // namespace ipg::cli
