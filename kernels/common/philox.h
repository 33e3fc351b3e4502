// Philox4x32-10 counter-based generator (Salmon et al., SC'11). Number i of a stream
// depends only on (seed, i), so CPU threads and CUDA threads produce the same values
// whatever the partitioning: the basis of "same seed -> same numbers".
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

struct Philox4 {
  uint32_t v[4];
};

IPG_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Four 32-bit random words for counter `ctr` under key `seed`.
IPG_HD Philox4 philox4x32_10(uint64_t seed, uint64_t ctr) {
  uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32), c2 = 0u, c3 = 0u;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    const uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  Philox4 out;
  out.v[0] = c0;
  out.v[1] = c1;
  out.v[2] = c2;
  out.v[3] = c3;
  return out;
}

// Uniform float in [0, 1) from the top 24 bits of a word.
IPG_HD float uint_to_unit_float(uint32_t x) { return (x >> 8) * (1.0f / 16777216.0f); }

// Element i of the uniform stream (seed, offset): U[lo, hi), the same bits on both
// devices (mul_rn: an FMA would round lo + (hi - lo) * u once, the CPU twice, for any
// range whose width is not a power of two).
IPG_HD float philox_uniform(uint64_t seed, uint64_t i, float lo, float hi) {
  const Philox4 r = philox4x32_10(seed, i);
  return lo + mul_rn(hi - lo, uint_to_unit_float(r.v[0]));
}

// Element i of the normal stream: Box-Muller on two words of counter i.
IPG_HD float philox_normal(uint64_t seed, uint64_t i, float mean, float stddev) {
  const Philox4 r = philox4x32_10(seed, i);
  const float u1 = (static_cast<float>(r.v[0] >> 8) + 1.0f) * (1.0f / 16777217.0f);  // (0,1]
  const float u2 = uint_to_unit_float(r.v[1]);
  const float radius = sqrtf(-2.0f * logf(u1));
  return mean + stddev * radius * cosf(6.2831853071795864f * u2);
}

}  // namespace ipg::kernels
