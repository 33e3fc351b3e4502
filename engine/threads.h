// CPU thread policy: how many OpenMP threads (and so oneDNN threads, which share
// OpenMP's pool here) a run uses, and how idle threads wait. On a machine whose cores
// other processes also want, OpenMP's default (one thread per core, spinning at every
// barrier) makes each parallel region wait for a descheduled thread: the default is the
// cores that are idle now, and waiting threads sleep after a short spin.
#pragma once

namespace ipg {

// The largest explicit thread count accepted: 4 per core this process may run on (more
// only adds barriers; libgomp's thread stacks overflow long before 100,000).
int max_threads_allowed();

// Cores this process may run on (its affinity mask).
int available_cores();

// Cores of the machine that are online (every process's, not only this one's).
int online_cores();

// Threads for one of `local_ranks` processes of a node, given its affinity mask's cores
// and the node's: its mask shared by the ranks estimated to have the same one, the ranks
// spread evenly (local_ranks x mask / online of them; at least 1). No binding (the mask is
// the node) shares the node among all ranks; a launcher's binding (mpirun's per core or
// per socket, srun's --cpus-per-task) already gave each rank its cores. At least 1.
int threads_per_rank(int mask_cores, int online, int local_ranks);

// Cores not busy with other runnable tasks right now, at least 1.
int idle_cores();

// OMP_NUM_THREADS's count (its first value: OpenMP allows a list, one per nesting level),
// as a job script or a launcher sets it; 0 when unset, not a number, or outside
// 1..max_threads_allowed().
int threads_from_environment();

// Sets the OpenMP thread count for the rest of the process: `requested` > 0 exactly
// (std::invalid_argument above max_threads_allowed()); 0: OMP_NUM_THREADS when it names a
// count, else the idle cores. Returns it.
int set_threads(int requested);

}  // namespace ipg
