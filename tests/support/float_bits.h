// A float's bit pattern and back, for tests that compare results bit for bit or walk the
// floats in order of their bits.
#pragma once

#include <cstdint>
#include <cstring>

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

}  // namespace ipg::testing
