// Test support: run a function with a given OpenMP thread count, the previous count
// restored after, for the tests that results are the same bits for any thread count.
#pragma once

#include <omp.h>

namespace ipg::testing {

template <typename F>
auto with_threads(int threads, F f) {
  const int prev = omp_get_max_threads();
  omp_set_num_threads(threads);
  struct Restore {
    int prev;
    ~Restore() { omp_set_num_threads(prev); }
  } restore{prev};
  return f();
}

}  // namespace ipg::testing
