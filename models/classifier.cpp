// Default behaviour of the Classifier interface.
#include "models/classifier.h"

#include <stdexcept>

namespace ipg {

Tensor Classifier::logits(const Tensor&) {
  throw std::logic_error(arch() + ": this model gives labels only, not logits");
}

}  // namespace ipg
