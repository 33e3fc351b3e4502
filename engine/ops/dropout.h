// Inverted dropout with a counter-based mask: the same seed gives the same mask on CPU
// and CUDA, whatever the thread count.
#pragma once

#include "engine/random.h"
#include "engine/tensor.h"

namespace ipg::ops {

// training: zero each element with probability p (Philox stream drawn from gen: same seed,
// same mask on CPU and CUDA) and scale survivors by 1/(1-p); not training or p == 0: identity
// (x itself is returned and gen is not advanced). p must lie in [0, 1].
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);

}  // namespace ipg::ops
