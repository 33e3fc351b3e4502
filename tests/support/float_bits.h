// A float's bit pattern and back, for tests that compare results bit for bit or walk the
// floats in order of their bits.
#pragma once

#include <cmath>
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

// |got - ref| in units of the last place of the float nearest ref: its spacing away from
// zero, or toward zero where that float is 1 (the largest value of tanh and erf).
inline double ulp_distance(double ref, float got) {
  const float near = std::fabs(static_cast<float>(ref));
  const double ulp = near == 1.f ? 1.0 - std::nextafter(1.f, 0.f)
                                 : std::nextafter(near, 2.f) - static_cast<double>(near);
  return std::fabs(static_cast<double>(got) - ref) / ulp;
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
