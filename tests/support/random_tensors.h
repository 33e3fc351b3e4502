// Seeded random test inputs: each tensor draws from its own Generator(seed), so a test's
// inputs do not depend on the order other tensors were made in.
#pragma once

#include <stdint.h>

#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"

namespace ipg::testing {

// Uniform in [lo, hi) on the CPU; a leaf that requires a gradient when asked.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f,
                            bool requires_grad = false) {
  Generator g(seed);
  Tensor t = Tensor::uniform(shape, lo, hi, g);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

inline Tensor random_leaf(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  return random_tensor(shape, seed, lo, hi, true);
}

// n values uniform in [lo, hi) as a host vector (weights and inputs of kernel-level tests).
inline std::vector<float> random_values(int64_t n, uint64_t seed, float lo = -1.f,
                                        float hi = 1.f) {
  return random_tensor({n}, seed, lo, hi).to_vector();
}

}  // namespace ipg::testing
