// The interface every suspect model shares. Networks give logits (and gradients through
// them); label-only models (random forests, black-box APIs) give labels alone.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace ipg {

class Classifier {
 public:
  virtual ~Classifier() = default;
  virtual std::string arch() const = 0;
  virtual int num_classes() const = 0;
  // Predicted class per row of a [n, C, H, W] batch of [0,1] pixels: int32 [n].
  virtual Tensor labels(const Tensor& batch) = 0;
  // Whether logits() is available (differentiable models).
  virtual bool has_logits() const { return false; }
  // [n, classes] logits, differentiable with respect to the batch.
  virtual Tensor logits(const Tensor& batch);
};

}  // namespace ipg
