// Dropout: dispatch to kernels/{cpu,cuda}/dropout. The mask is a function of (seed,
// offset), so the backward closure keeps those two numbers instead of a mask tensor.
#include "engine/ops/dropout.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "kernels/common/dropout_math.h"
#include "kernels/cpu/dropout.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/dropout.h"
#endif

namespace ipg::ops {

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  detail::check_dtype("dropout", x, DType::F32);
  if (!(p >= 0.f && p <= 1.f))
    throw std::invalid_argument("dropout: p must lie in [0, 1], got " + std::to_string(p));
  if (!training || p == 0.f) return x;
  const int64_t n = x.numel();
  const uint64_t seed = gen.seed(), offset = gen.advance(kernels::dropout_counters(n));
  Tensor y = Tensor::empty(x.shape(), x.device());
  IPG_ON_DEVICE("dropout", x.device(),
                kernels::cpu::dropout_forward(x.data(), y.data(), n, p, seed, offset),
                kernels::cuda::dropout_forward(x.data(), y.data(), n, p, seed, offset, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, "dropout", {x}, [n, p, seed, offset](const Tensor& gy, GradSink& sink) {
      float* dx = sink.at(0).data();
      IPG_ON_DEVICE("dropout_backward", gy.device(),
                    kernels::cpu::dropout_backward(gy.data(), dx, n, p, seed, offset),
                    kernels::cuda::dropout_backward(gy.data(), dx, n, p, seed, offset, stream));
    });
  }
  return y;
}

}  // namespace ipg::ops
