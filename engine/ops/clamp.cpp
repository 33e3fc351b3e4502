// Clamp and HardSigmoid: dispatch to kernels/{cpu,cuda}/clamp.
#include "engine/ops/clamp.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/trace.h"
#include "kernels/cpu/clamp.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/clamp.h"
#endif

namespace ipg::ops {

Tensor clamp(const Tensor& x, float lo, float hi) {
  detail::check_dtype("clamp", x, DType::F32);
  if (!(lo <= hi))
    throw std::invalid_argument("clamp: lower bound " + std::to_string(lo) +
                                " is above upper bound " + std::to_string(hi));
  Tensor y = Tensor::empty(x.shape(), x.device());
  const int64_t n = x.numel();
  IPG_ON_DEVICE("clamp", x.device(), kernels::cpu::clamp_forward(x.data(), y.data(), lo, hi, n),
                kernels::cuda::clamp_forward(x.data(), y.data(), lo, hi, n, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, "clamp", {x}, [x = x.detach(), lo, hi](const Tensor& gout, GradSink& sink) {
      float* dx = sink.at(0).data();
      const int64_t n = gout.numel();
      IPG_ON_DEVICE("clamp_backward", gout.device(),
                    kernels::cpu::clamp_backward(x.data(), gout.data(), dx, lo, hi, n),
                    kernels::cuda::clamp_backward(x.data(), gout.data(), dx, lo, hi, n, stream));
    });
    if (trace::active()) {
      trace::Attrs a;
      a.lo = lo, a.hi = hi;
      trace::describe(y, trace::Op::Clamp, a);
    }
  }
  return y;
}

Tensor hard_sigmoid(const Tensor& x, float alpha, float beta) {
  detail::check_dtype("hard_sigmoid", x, DType::F32);
  Tensor y = Tensor::empty(x.shape(), x.device());
  const int64_t n = x.numel();
  IPG_ON_DEVICE("hard_sigmoid", x.device(),
                kernels::cpu::hard_sigmoid_forward(x.data(), y.data(), alpha, beta, n),
                kernels::cuda::hard_sigmoid_forward(x.data(), y.data(), alpha, beta, n, stream));
  if (autograd::needs_graph({x})) {
    autograd::attach(y, "hard_sigmoid", {x},
                     [x = x.detach(), alpha, beta](const Tensor& gout, GradSink& sink) {
                       float* dx = sink.at(0).data();
                       const int64_t n = gout.numel();
                       IPG_ON_DEVICE("hard_sigmoid_backward", gout.device(),
                                     kernels::cpu::hard_sigmoid_backward(x.data(), gout.data(), dx,
                                                                         alpha, beta, n),
                                     kernels::cuda::hard_sigmoid_backward(
                                         x.data(), gout.data(), dx, alpha, beta, n, stream));
                     });
    if (trace::active()) {
      trace::Attrs a;
      a.a = alpha, a.b = beta;
      trace::describe(y, trace::Op::HardSigmoid, a);
    }
  }
  return y;
}

}  // namespace ipg::ops
