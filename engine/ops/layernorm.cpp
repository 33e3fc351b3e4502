// Layer normalization: dispatch to kernels/{cpu,cuda}/layernorm. The forward pass keeps each
// row's mean and 1 / sqrt(var + eps), so the backward pass needs no second reduction over x.
#include "engine/ops/layernorm.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/cpu/layernorm.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/layernorm.h"
#endif

namespace ipg::ops {

namespace {

void check_param(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  detail::check_dtype("layer_norm", t, DType::F32);
  detail::check_same_device("layer_norm", x, t);
  const int64_t cols = x.dim(x.ndim() - 1);
  if (t.shape() != Shape{cols})
    throw ShapeError(std::string("layer_norm: ") + what + " " + shape_str(t.shape()) +
                     " does not match input " + shape_str(x.shape()) + " (expected [" +
                     std::to_string(cols) + "])");
}

const float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

struct LnSaved {
  Tensor x, gamma, mean, rstd;
  int64_t rows, cols;
};

void layer_norm_backward(const LnSaved& sv, const Tensor& gy, GradSink& sink) {
  const Device dev = gy.device();
  const int64_t rows = sv.rows, cols = sv.cols;
  if (sink.wants(0)) {
    bool acc = false;
    float* dx = sink.target(0, acc).data();
    IPG_ON_DEVICE("layer_norm_backward", dev,
                  kernels::cpu::layer_norm_backward_input(sv.x.data(), sv.mean.data(),
                                                          sv.rstd.data(), data_or_null(sv.gamma),
                                                          gy.data(), dx, rows, cols, acc),
                  kernels::cuda::layer_norm_backward_input(
                      sv.x.data(), sv.mean.data(), sv.rstd.data(), data_or_null(sv.gamma),
                      gy.data(), dx, rows, cols, acc, stream));
  }
  float* dgamma = sink.wants(1) ? sink.at(1).data() : nullptr;
  float* dbeta = sink.wants(2) ? sink.at(2).data() : nullptr;
  if (dgamma || dbeta)
    IPG_ON_DEVICE("layer_norm_backward", dev,
                  kernels::cpu::layer_norm_backward_params(sv.x.data(), sv.mean.data(),
                                                           sv.rstd.data(), gy.data(), dgamma,
                                                           dbeta, rows, cols),
                  kernels::cuda::layer_norm_backward_params(sv.x.data(), sv.mean.data(),
                                                            sv.rstd.data(), gy.data(), dgamma,
                                                            dbeta, rows, cols, stream));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  detail::check_dtype("layer_norm", x, DType::F32);
  if (x.ndim() < 1 || x.dim(x.ndim() - 1) == 0)
    throw ShapeError("layer_norm: expected an input with a non-empty last axis, got " +
                     shape_str(x.shape()));
  if (!(eps > 0)) throw std::invalid_argument("layer_norm: eps must be positive");
  check_param(x, gamma, "gamma");
  check_param(x, beta, "beta");
  const Device dev = x.device();
  const int64_t cols = x.dim(x.ndim() - 1), rows = x.numel() / cols;
  Tensor y = Tensor::empty(x.shape(), dev);
  Tensor mean = Tensor::empty({rows}, dev), rstd = Tensor::empty({rows}, dev);
  IPG_ON_DEVICE("layer_norm", dev,
                kernels::cpu::layer_norm_forward(x.data(), data_or_null(gamma),
                                                 data_or_null(beta), y.data(), mean.data(),
                                                 rstd.data(), rows, cols, eps),
                kernels::cuda::layer_norm_forward(x.data(), data_or_null(gamma),
                                                  data_or_null(beta), y.data(), mean.data(),
                                                  rstd.data(), rows, cols, eps, stream));
  if (autograd::needs_graph({x, gamma, beta})) {
    LnSaved sv{x.detach(), gamma.defined() ? gamma.detach() : Tensor(), mean, rstd, rows, cols};
    autograd::attach(y, "layer_norm", {x, gamma, beta},
                     [sv = std::move(sv)](const Tensor& gy, GradSink& sink) {
                       layer_norm_backward(sv, gy, sink);
                     });
  }
  return y;
}

}  // namespace ipg::ops
