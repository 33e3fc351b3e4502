// Training-time data augmentation on the batch's device.
#pragma once

#include <stdint.h>

#include "engine/tensor.h"

namespace ipg::ops {

// Each image of x [n, c, h, w] cropped at a random offset from its copy zero-padded by
// `pad` on every side (same size out), then mirrored left-right with probability 1/2
// when `flip`. Sample i draws with Philox counter first + i under `seed`: the same batch
// on CPU and CUDA, whatever the thread count. Not differentiable (input data only).
Tensor random_crop_flip(const Tensor& x, int pad, bool flip, uint64_t seed, uint64_t first);

}  // namespace ipg::ops
