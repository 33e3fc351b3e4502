// A float's bit pattern and back, for tests that compare results bit for bit or walk the
// floats in order of their bits.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace ipg::testing {

inline uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

inline float float_of(uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// Every stride-th non-negative finite float, from +0 to the largest; an odd stride reaches
// every exponent and a spread of mantissas.
inline std::vector<float> float_sweep(uint32_t stride) {
  std::vector<float> xs;
  for (uint64_t b = 0; b < 0x7f800000u; b += stride) xs.push_back(float_of(static_cast<uint32_t>(b)));
  return xs;
}

// Both signs, NaN and infinities, in one vector whose length is not a multiple of any vector
// width: for checking that an op's loop (vectorized on the CPU) and its tail give a scalar
// formula's bits.
inline std::vector<float> mixed_float_inputs() {
  std::vector<float> v = float_sweep(0x10001);
  const size_t n = v.size();
  for (size_t i = 0; i < n; i += 2) v.push_back(-v[i]);
  v.push_back(std::numeric_limits<float>::quiet_NaN());
  v.push_back(std::numeric_limits<float>::infinity());
  v.push_back(-std::numeric_limits<float>::infinity());
  if (v.size() % 2 == 0) v.push_back(0.3f);
  return v;
}

}  // namespace ipg::testing
