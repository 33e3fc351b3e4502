// Softmax and cross-entropy math shared by kernels/cpu/softmax_xent.cpp and
// kernels/cuda/softmax_xent.cu. A row is summarized by its maximum and
// sum = sum_c exp(z_c - max) >= 1; shifting by the maximum keeps every exponent <= 0, so
// logits of any magnitude neither overflow nor lose the largest term.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

// fmaxf drops a NaN operand; a NaN logit must poison its row's softmax (as in PyTorch),
// not vanish from it.
IPG_HD float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }

IPG_HD float softmax_value(float z, float row_max, float row_sum) {
  return expf(z - row_max) / row_sum;
}

// -log softmax(z)_label. The difference is taken before log(sum) is added: at |z| ~ 1e4,
// max + log(sum) would round to ulp(1e4) ~ 1e-3 and the small losses near a decision
// boundary would vanish in it.
IPG_HD float xent_row_loss(float z_label, float row_max, float row_sum) {
  return (row_max - z_label) + logf(row_sum);
}

// d(loss)/dz for one logit: (softmax - onehot) * scale, scale = upstream gradient / rows.
IPG_HD float xent_grad(float z, bool is_label, float row_max, float row_sum, float scale) {
  return (softmax_value(z, row_max, row_sum) - (is_label ? 1.f : 0.f)) * scale;
}

}  // namespace ipg::kernels
