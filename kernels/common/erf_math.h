// erf in float and its derivative, one formula for the CPU twins and the CUDA kernels (ONNX
// Erf: the exact GELU of vision transformers and ConvNeXt). Like tanhf_hd, written without
// calls or branches so that a CPU loop over it vectorizes (glibc's erff and expf are scalar
// calls: they were 8% of a ViT's extraction on the CPU), every product through mul_rn so
// nvcc fuses nothing and both devices give the same bits. Within 1.30 ulp of the exact erf
// over every float (ErfHd.* checks a dense sweep).
#pragma once

#include <math.h>

#include "kernels/common/hd.h"
#include "kernels/common/tanh_math.h"

namespace ipg::kernels {

// Both branches are computed and one is selected:
//   |x| < 1: erf(a) = a + a P(a^2), P of degree 6 (a least-squares fit reweighted toward
//            minimax, Lawson's method, of erf(a) / a - 1, weighted by a);
//   |x| >= 1: erf(a) = 1 - e^L(a), L of degree 6 in a fit to log erfc(a) on [1, 3.93],
//            weighted by erfc(a) (the error that reaches 1 - erfc). a is clamped to 3.93,
//            above which erf rounds to 1; a NaN meets the clamp too and is returned as it came.
IPG_HD float erff_hd(float x) {
  const float a = fabsf(x);
  const float s = mul_rn(a, a);
  float p = 7.647117308806628e-05f;
  p = mul_rn(p, s) + -0.0007942356169223785f;
  p = mul_rn(p, s) + 0.005179749336093664f;
  p = mul_rn(p, s) + -0.02684859186410904f;
  p = mul_rn(p, s) + 0.11283430457115173f;
  p = mul_rn(p, s) + -0.3761260509490967f;
  p = mul_rn(p, s) + 0.12837915122509003f;
  const float small = a + mul_rn(a, p);

  float t = a < 3.93f ? a : 3.93f;
  t = t > 1.f ? t : 1.f;
  float l = 0.00018557421572040766f;
  l = mul_rn(l, t) + -0.002939609345048666f;
  l = mul_rn(l, t) + 0.021805327385663986f;
  l = mul_rn(l, t) + -0.10303738713264465f;
  l = mul_rn(l, t) + -0.6382256746292114f;
  l = mul_rn(l, t) + -1.1270400285720825f;
  l = mul_rn(l, t) + -0.0003537161974236369f;
  // l lies in [-17.8, -1.85]: k = round(l / ln 2) by truncating toward zero from l - 1/2.
  const int k = static_cast<int>(mul_rn(l, 1.4426950408889634f) - 0.5f);
  const float big = 1.f - exp_of_reduced(l, k);

  const float e = copysignf(a < 1.f ? small : big, x);
  return x != x ? x : e;
}

// d erf / dx = 2 / sqrt(pi) e^(-x^2), e^y by exp_of_reduced, whose 2^k must stay a normal
// float: for -x^2 below -87 it is 0 (the exact value is under 2e-38 there).
IPG_HD float erff_hd_derivative(float x) {
  const float y = -mul_rn(x, x);
  const float yc = y > -87.f ? y : -87.f;
  const int k = static_cast<int>(mul_rn(yc, 1.4426950408889634f) - 0.5f);  // yc <= 0
  const float d = mul_rn(1.1283791670955126f, exp_of_reduced(yc, k));
  return x != x ? x : (y > -87.f ? d : 0.f);
}

// GELU, exact form: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (ONNX Gelu with approximate
// "none", PyTorch's nn.GELU(), the 5-node Div/Erf/Add/Mul/Mul pattern exporters write, which
// the ONNX reader fuses into this one op: one tensor kept for backward instead of five).
IPG_HD float gelu_hd(float x) {
  return mul_rn(mul_rn(0.5f, x), 1.f + erff_hd(mul_rn(x, 0.70710678118654752f)));
}

// d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi), which is
// erf'(x / sqrt 2) / (2 sqrt 2).
IPG_HD float gelu_hd_derivative(float x) {
  const float u = mul_rn(x, 0.70710678118654752f);
  return mul_rn(0.5f, 1.f + erff_hd(u)) +
         mul_rn(mul_rn(x, 0.35355339059327376f), erff_hd_derivative(u));
}

}  // namespace ipg::kernels
