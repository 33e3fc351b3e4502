// Augmentation: dispatch to kernels/{cpu,cuda}/augment.
#include "engine/ops/augment.h"

#include "engine/dispatch.h"
#include "kernels/cpu/augment.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/augment.h"
#endif

namespace ipg::ops {

Tensor random_crop_flip(const Tensor& x, int pad, bool flip, uint64_t seed, uint64_t first) {
  detail::check_dtype("random_crop_flip", x, DType::F32);
  if (x.ndim() != 4)
    throw ShapeError("random_crop_flip: expected [n, c, h, w], got " + shape_str(x.shape()));
  const int64_t n = x.dim(0), c = x.dim(1);
  const int h = static_cast<int>(x.dim(2)), w = static_cast<int>(x.dim(3));
  if (pad < 0 || pad >= h || pad >= w)
    throw std::invalid_argument("random_crop_flip: padding " + std::to_string(pad) +
                                " must be in [0, image side) for " + shape_str(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.device());
  IPG_ON_DEVICE(
      "random_crop_flip", x.device(),
      kernels::cpu::random_crop_flip(x.data(), y.data(), n, c, h, w, pad, flip, seed, first),
      kernels::cuda::random_crop_flip(x.data(), y.data(), n, c, h, w, pad, flip, seed, first,
                                      stream));
  return y;
}

}  // namespace ipg::ops
