// Per-row math of the boundary-search loop (the fingerprint loop of design.md: a fused
// loss kernel on the logits, then a fused update of the candidate images), shared by
// kernels/cpu/boundary.cpp and kernels/cuda/boundary.cu.
//
// Losses of one row of logits z, with i the label the target model gives the starting
// point and j the label the search aims for; every loss is scaled by the row's weight w
// (CW-L2's constant c; 1 otherwise):
//   IPGuard        relu(z_i - z_j + k) + relu(max_{t != i,j} z_t - z_i)   (the paper's Eq. 5)
//   CarliniWagner  relu(max_{t != j} z_t - z_j + k)      (targeted; k: the confidence kappa)
//   CrossEntropy   logsumexp(z) - z_j                    (targeted FGSM / IGSM: J(C, j; x))
// A max over the logits takes the first index among equals; a max over no logits (IPGuard
// with two classes) is -inf, so its term is 0.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/common/hd.h"
#include "kernels/common/optimizer_math.h"
#include "kernels/common/tanh_math.h"

namespace ipg::kernels {

enum class BoundaryLoss : int32_t { IPGuard = 0, CarliniWagner = 1, CrossEntropy = 2 };

// Index of the largest z_t over t != skip1, skip2 (-1 when there is none).
IPG_HD int boundary_argmax_except(const float* z, int classes, int skip1, int skip2) {
  int best = -1;
  for (int t = 0; t < classes; ++t) {
    if (t == skip1 || t == skip2) continue;
    if (best < 0 || z[t] > z[best]) best = t;
  }
  return best;
}

// Writes dL/dz for the row into dz[0, classes) and returns L.
IPG_HD float boundary_loss_row(BoundaryLoss kind, const float* z, int classes, int i, int j,
                               float k, float w, float* dz) {
  for (int t = 0; t < classes; ++t) dz[t] = 0.f;
  if (kind == BoundaryLoss::CrossEntropy) {
    float mx = z[0];
    for (int t = 1; t < classes; ++t) mx = z[t] > mx ? z[t] : mx;
    float sum = 0.f;
    for (int t = 0; t < classes; ++t) sum += expf(z[t] - mx);
    const float lse = mx + logf(sum);
    for (int t = 0; t < classes; ++t) dz[t] = w * expf(z[t] - lse);
    dz[j] -= w;
    return w * (lse - z[j]);
  }
  if (kind == BoundaryLoss::CarliniWagner) {
    const int o = boundary_argmax_except(z, classes, j, j);
    const float term = z[o] - z[j] + k;
    if (!(term > 0.f)) return 0.f;
    dz[o] += w;
    dz[j] -= w;
    return w * term;
  }
  float loss = 0.f;
  const float a = z[i] - z[j] + k;
  if (a > 0.f) {
    loss += a;
    dz[i] += w;
    dz[j] -= w;
  }
  const int o = boundary_argmax_except(z, classes, i, j);
  if (o >= 0) {
    const float b = z[o] - z[i];
    if (b > 0.f) {
      loss += b;
      dz[o] += w;
      dz[i] -= w;
    }
  }
  return w * loss;
}

IPG_HD float boundary_clamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// One Adam step of one candidate pixel, then into the box [lo, hi] (pixel space).
IPG_HD float boundary_adam_element(float x, float g, float* m, float* v, const AdamCoeffs& c,
                                   float lo, float hi) {
  return boundary_clamp(adam_element(x, g, m, v, c), lo, hi);
}

// One signed-gradient step (FGSM: alpha = eps, once; IGSM: alpha per iteration): descend
// the loss by alpha * sign(g) (sign(0) = 0), stay within eps of the starting pixel x0 and
// inside [lo, hi].
IPG_HD float boundary_sign_element(float x, float x0, float g, float alpha, float eps, float lo,
                                   float hi) {
  const float s = g > 0.f ? 1.f : (g < 0.f ? -1.f : 0.f);
  const float stepped = boundary_clamp(x - alpha * s, x0 - eps, x0 + eps);
  return boundary_clamp(stepped, lo, hi);
}

// CW-L2's change of variables for the box [0,1] (Carlini's boxmul = boxplus = 1/2): the
// search variable u maps to the pixel tanh(u) / 2 + 1/2, which never leaves the box.
// Lanes of the per-row squared-distance sum (CPU and CUDA sum in this one order).
constexpr int kCwLanes = 32;

// The pixel of t = tanh(u).
IPG_HD float boundary_cw_pixel_of_tanh(float t) { return 0.5f * t + 0.5f; }
IPG_HD float boundary_cw_pixel(float u) { return boundary_cw_pixel_of_tanh(tanhf_hd(u)); }

// One Adam step of u for ||x - x0s||^2 + (the classification term, whose gradient at the
// pixel x = boundary_cw_pixel(u) is g): d/du = (2 (x - x0s) + g) * (1 - tanh(u)^2) / 2,
// from t = tanh(u) (the step keeps it beside u: a tanh is most of the step's cost on the
// CPU, and the last step computed this one for its pixel).
IPG_HD float boundary_cw_grad_of_tanh(float t, float x0s, float g) {
  const float x = boundary_cw_pixel_of_tanh(t);
  return (2.f * (x - x0s) + g) * 0.5f * (1.f - t * t);
}
// The same from u alone (tanh computed here): what the kept-t step is held to, bit for bit.
IPG_HD float boundary_cw_grad(float u, float x0s, float g) {
  return boundary_cw_grad_of_tanh(tanhf_hd(u), x0s, g);
}

// One whole step of element e: u and t = tanh(u) advance together, x is the new pixel.
IPG_HD void boundary_cw_element(float* u, float* t, float* x, float x0s, float g, float* m,
                                float* v, const AdamCoeffs& c) {
  *u = adam_element(*u, boundary_cw_grad_of_tanh(*t, x0s, g), m, v, c);
  *t = tanhf_hd(*u);
  *x = boundary_cw_pixel_of_tanh(*t);
}

// CW-L2's success test (Carlini's compare() for a targeted attack): the target's logit,
// lowered by kappa, is the first largest.
IPG_HD bool boundary_cw_success(const float* z, int classes, int j, float kappa) {
  const float zj = z[j] - kappa;
  for (int t = 0; t < classes; ++t) {
    if (t == j) continue;
    if (t < j ? z[t] >= zj : z[t] > zj) return false;
  }
  return true;
}

}  // namespace ipg::kernels
