/* How idle OpenMP threads wait, set before libgomp reads it (engine/threads.h).
 *
 * libgomp spins 300,000 iterations at every barrier before it sleeps, and reads
 * GOMP_SPINCOUNT once, in its own library constructor. When the run has more threads than
 * free cores, a spinning thread burns the time slice the thread it waits for needs: 100
 * LeNet-5 points took 25-50 s instead of 8 s with two threads on a machine with two busy
 * loops (README, "A shared machine"). A short spin keeps the idle machine's latency and
 * sleeps soon when cores are shared. The user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
 *
 * Why a shared library of its own: the variable must be in the environment before
 * libgomp's constructor runs. The executable's constructors run after every library's,
 * and a .preinit_array entry runs before libc's initialization, which resets the
 * environment (its setenv is lost). A library that does not depend on libgomp, loaded
 * after it (ipg_engine links it after OpenMP, so it follows libgomp in the executable's
 * DT_NEEDED list), is initialized before it. The ctest wait_policy_reaches_libgomp
 * checks that libgomp really sees the value. */
#include <stdlib.h>

/* Spins before sleeping: ~10-30 us here, longer than most of our parallel regions' gaps
 * on an idle machine, far shorter than a scheduler time slice. */
static const char kSpinCount[] = "10000";

__attribute__((constructor)) static void ipg_set_wait_policy(void) {
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
    setenv("GOMP_SPINCOUNT", kSpinCount, 0);
}

/* Referenced by threads.cpp so that every executable using the thread policy needs it. */
int ipg_wait_policy_linked(void) { return 1; }
