// Distillation and label-only extraction: the teacher's outputs on the attacker's images,
// and the soft-target loss the trainer uses (models/train.cpp, TrainOptions::soft_targets).
#include "models/extraction.h"

#include <cmath>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "engine/ops/view.h"
#include "models/train.h"

namespace ipg {

std::string extraction_name(Extraction e) {
  return e == Extraction::Distill ? "distill" : "label-only";
}

Extraction parse_extraction(const std::string& name) {
  if (name == "distill") return Extraction::Distill;
  if (name == "label-only") return Extraction::LabelOnly;
  throw std::invalid_argument("unknown extraction '" + name + "' (distill, label-only)");
}

Dataset teacher_labelled(Classifier& teacher, const Dataset& images, Device device) {
  Dataset d = images;
  const std::vector<int32_t> y = predict(teacher, images.images, device);
  d.labels = Tensor::from_vector_i32(y, {static_cast<int64_t>(y.size())});
  d.num_classes = teacher.num_classes();
  return d;
}

Tensor soft_targets(Network& teacher, const Tensor& images, float temperature, Device device,
                    int batch) {
  if (!(temperature > 0)) throw std::invalid_argument("soft_targets: temperature must be > 0");
  if (batch < 1) throw std::invalid_argument("soft_targets: batch must be >= 1");
  const bool was_training = teacher.is_training();
  teacher.to(device);
  teacher.eval();
  NoGradGuard no_grad;
  const int64_t n = images.dim(0), k = teacher.num_classes();
  Tensor out = Tensor::empty({n, k});
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t e = std::min(n, b + batch);
    const Tensor z = teacher.logits(images.narrow0(b, e - b).to(device));
    out.narrow0(b, e - b).copy_from(ops::softmax(ops::mul_scalar(z, 1.f / temperature)));
  }
  teacher.train(was_training);
  return out;
}

Tensor distillation_loss(const Tensor& logits, const Tensor& targets, float temperature) {
  if (!(temperature > 0))
    throw std::invalid_argument("distillation_loss: temperature must be > 0");
  if (logits.ndim() != 2 || targets.shape() != logits.shape())
    throw std::invalid_argument("distillation_loss: logits " + shape_str(logits.shape()) +
                                " and targets " + shape_str(targets.shape()) +
                                " must both be [n, k]");
  const int64_t n = logits.dim(0);
  const Tensor s = ops::mul_scalar(logits, 1.f / temperature);
  // log softmax(s) = (s - m) - log(sum exp(s - m)) with m the row max, a constant: every
  // exponent <= 0 and the sum >= 1, so neither overflows nor takes the log of 0.
  const Tensor m = ops::reshape(
      ops::max_excluding(s.detach(), Tensor::from_vector_i32(std::vector<int32_t>(n, -1), {n},
                                                             logits.device())),
      {n, 1});
  const Tensor shifted = ops::sub(s, m);
  const Tensor lse = ops::log(ops::sum(ops::exp(shifted), 1, true));  // [n, 1]
  const Tensor log_p = ops::sub(shifted, lse);
  // Cross-entropy of each row: -sum_k p_k log_p_k; mean over rows, times T^2 (the
  // gradients of soft targets scale as 1/T^2: Hinton et al., section 2).
  const Tensor ce = ops::neg(ops::sum(ops::mul(targets, log_p), 1));
  return ops::mul_scalar(ops::mean(ce), temperature * temperature);
}

}  // namespace ipg
