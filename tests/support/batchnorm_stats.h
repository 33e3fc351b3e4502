// Batch-norm statistics and affine parameters moved away from their 0/1 defaults, so
// that a test notices a swapped, skipped or wrongly folded batch norm.
#pragma once

#include <stdint.h>

#include <string>

#include "engine/nn/module.h"
#include "engine/random.h"

namespace ipg::testing {

// running_var in [0.5, 1.5), running_mean in [-0.1, 0.1), BN gamma in [0.8, 1.2) (1-D
// "/weight" tensors); other 1-D tensors (BN beta, biases) untouched.
inline void randomize_batch_norm(nn::Module& net, uint64_t seed) {
  Generator gen(seed);
  for (auto list : {net.named_parameters(), net.named_buffers()})
    for (auto& [name, t] : list) {
      if (t->ndim() != 1) continue;
      const bool bn_weight = name.size() > 7 && name.substr(name.size() - 7) == "/weight";
      Tensor r = Tensor::uniform(t->shape(), 0.f, 1.f, gen);
      float* d = t->data();
      for (int64_t i = 0; i < t->numel(); ++i) {
        const float u = r.data()[i];
        if (name.find("running_var") != std::string::npos)
          d[i] = 0.5f + u;
        else if (name.find("running_mean") != std::string::npos)
          d[i] = 0.2f * (u - 0.5f);
        else if (bn_weight)
          d[i] = 0.8f + 0.4f * u;
      }
    }
}

}  // namespace ipg::testing
