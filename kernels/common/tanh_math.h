// tanh in float, one formula for the CPU twins and the CUDA kernels, written without calls
// or branches so that a CPU loop over it vectorizes. glibc's tanhf is a scalar call (through
// expm1f): it was a quarter of a LeNet-5 CW-L2 extraction, whose step takes one tanh per
// element and iteration. Every product goes through mul_rn, so nvcc fuses nothing and both
// devices give the same bits. Within 1.33 ulp of the exact tanh over every float (TanhHd.*
// checks a dense sweep; glibc's tanhf is within 2.19 ulp by the same measure).
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

// 2^k for k in [-126, 127], built from its exponent bits.
IPG_HD float pow2_of_int(int k) {
  const uint32_t bits = static_cast<uint32_t>(k + 127) << 23;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  return __builtin_bit_cast(float, bits);  // GCC and Clang; memcpy here stops vectorization
#endif
}

// e^y = 2^k e^r for k = round(y / ln 2), found by the caller (which knows y's sign: a float
// to int conversion truncates), and r = y - k ln 2 (Cody-Waite: ln 2's high part ends in 9
// zero bits, so k * hi is exact); e^r = 1 + r + r^2 Q(r), Q of degree 4 on |r| <= ln 2 / 2.
// k must lie in [-126, 127] (2^k a normal float).
IPG_HD float exp_of_reduced(float y, int k) {
  const float kf = static_cast<float>(k);
  const float r = (y - mul_rn(kf, 0.693145751953125f)) - mul_rn(kf, 1.428606765330187045e-06f);
  float q = 0.0013750663492828608f;
  q = mul_rn(q, r) + 0.00836912076920271f;
  q = mul_rn(q, r) + 0.0416695661842823f;
  q = mul_rn(q, r) + 0.16666516661643982f;
  q = mul_rn(q, r) + 0.49999988079071045f;
  return mul_rn(1.f + (r + mul_rn(mul_rn(r, r), q)), pow2_of_int(k));
}

// Both branches are computed and one is selected (no divergence on a GPU, vector selects on
// the CPU):
//   |x| < 0.625: tanh(a) = a + a^3 P(a^2), P of degree 5 (a minimax-style fit of
//                (tanh(a) - a) / a^3);
//   otherwise:   tanh(a) = 1 - 2 / (e^(2a) + 1), e^y by exp_of_reduced. y is clamped to 18.5,
//                where tanh is 1 to within half an ulp, so 2^k stays finite; a NaN meets
//                the clamp too (no float-to-int conversion of a NaN) and is returned as it came.
IPG_HD float tanhf_hd(float x) {
  const float a = fabsf(x);
  const float s = mul_rn(a, a);
  float p = 0.002138226293027401f;
  p = mul_rn(p, s) + -0.008171788416802883f;
  p = mul_rn(p, s) + 0.021698210388422012f;
  p = mul_rn(p, s) + -0.053946252912282944f;
  p = mul_rn(p, s) + 0.1333320140838623f;
  p = mul_rn(p, s) + -0.3333333134651184f;
  const float small = a + mul_rn(mul_rn(a, s), p);

  float y = 2.f * a;
  y = y < 18.5f ? y : 18.5f;
  const int k = static_cast<int>(mul_rn(y, 1.4426950408889634f) + 0.5f);  // y >= 0: a floor
  const float e = exp_of_reduced(y, k);
  const float big = 1.f - 2.f / (e + 1.f);

  const float t = copysignf(a < 0.625f ? small : big, x);
  return x != x ? x : t;
}

}  // namespace ipg::kernels
