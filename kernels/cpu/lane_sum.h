// A sum in double whose order depends on its length alone, for the CPU twins' reductions
// (batch norm's channel sums, layer norm's row sums): the same bits for any thread count,
// and 8 independent partial sums the compiler can vectorize.
#pragma once

#include <stdint.h>

namespace ipg::kernels::cpu {

constexpr int kLanes = 8;

// sum over i < len of term(i), in double: lane j sums the i with i % kLanes == j, in
// order; the lanes are added as ((0+4)+(2+6))+((1+5)+(3+7)).
template <typename Term>
double lane_sum(int64_t len, Term term) {
  double lane[kLanes] = {};
  const int64_t body = len - len % kLanes;
  for (int64_t i = 0; i < body; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += term(i + j);
  for (int64_t i = body; i < len; ++i) lane[i - body] += term(i);
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lane[j] += lane[j + w];
  return lane[0];
}

}  // namespace ipg::kernels::cpu
