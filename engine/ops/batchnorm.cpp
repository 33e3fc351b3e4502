// Batch norm: dispatch to kernels/{cpu,cuda}/batchnorm. The backward closure keeps the
// statistics the forward normalized with and only what the requested gradients need.
#include "engine/ops/batchnorm.h"

#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/trace.h"
#include "kernels/cpu/batchnorm.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/batchnorm.h"
#endif

namespace ipg::ops {

namespace {

// x viewed as [n, c, s].
struct BnDims {
  int64_t n, c, s;
};

void check_channel_vector(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined())
    throw std::invalid_argument(std::string("batch_norm: ") + what + " is undefined");
  detail::check_dtype("batch_norm", t, DType::F32);
  detail::check_same_device("batch_norm", x, t);
  if (t.shape() != Shape{x.dim(1)})
    throw ShapeError(std::string("batch_norm: ") + what + " " + shape_str(t.shape()) +
                     " does not match input " + shape_str(x.shape()) + " (expected [" +
                     std::to_string(x.dim(1)) + "])");
}

BnDims check_inputs(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    const Tensor& running_mean, const Tensor& running_var) {
  detail::check_dtype("batch_norm", x, DType::F32);
  if (x.ndim() != 2 && x.ndim() != 4)
    throw ShapeError("batch_norm: input must be [n, c] or [n, c, h, w], got " +
                     shape_str(x.shape()));
  check_channel_vector(x, gamma, "gamma");
  check_channel_vector(x, beta, "beta");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  return {x.dim(0), x.dim(1), x.ndim() == 4 ? x.dim(2) * x.dim(3) : 1};
}

void normalize(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& gamma,
               const Tensor& beta, Tensor& y, BnDims d, float eps) {
  IPG_ON_DEVICE(
      "batch_norm", x.device(),
      kernels::cpu::batch_norm_forward(x.data(), mean.data(), var.data(), gamma.data(), beta.data(),
                                       y.data(), d.n, d.c, d.s, eps),
      kernels::cuda::batch_norm_forward(x.data(), mean.data(), var.data(), gamma.data(),
                                        beta.data(), y.data(), d.n, d.c, d.s, eps, stream));
}

// What the backward closure holds. x is kept only when a gradient needs it (training-mode
// input gradient, or gamma's): in eval mode with frozen parameters, the common case when
// differentiating a trained network with respect to its input, it is not kept alive.
struct BnSaved {
  Tensor x, gamma, mean, var;
  BnDims d;
  float eps;
  bool training;
};

void batch_norm_backward(const BnSaved& sv, const Tensor& gy, GradSink& sink) {
  const Device dev = gy.device();
  const BnDims d = sv.d;
  const bool want_x = sink.wants(0), want_gamma = sink.wants(1), want_beta = sink.wants(2);
  // In training mode the input gradient runs through the batch statistics, which needs
  // both per-channel sums; in eval mode only the parameter gradients need them.
  const bool need_sum_dy = want_beta || (sv.training && want_x);
  const bool need_sum_dy_xhat = want_gamma || (sv.training && want_x);
  Tensor sum_dy, sum_dy_xhat;
  if (need_sum_dy) sum_dy = Tensor::empty({d.c}, dev);
  if (need_sum_dy_xhat) sum_dy_xhat = Tensor::empty({d.c}, dev);
  if (need_sum_dy || need_sum_dy_xhat) {
    const float* x = need_sum_dy_xhat ? sv.x.data() : nullptr;
    float* sdy = need_sum_dy ? sum_dy.data() : nullptr;
    float* sdx = need_sum_dy_xhat ? sum_dy_xhat.data() : nullptr;
    IPG_ON_DEVICE(
        "batch_norm_backward", dev,
        kernels::cpu::batch_norm_backward_reduce(x, gy.data(), sv.mean.data(), sv.var.data(), sdy,
                                                 sdx, d.n, d.c, d.s, sv.eps),
        kernels::cuda::batch_norm_backward_reduce(x, gy.data(), sv.mean.data(), sv.var.data(), sdy,
                                                  sdx, d.n, d.c, d.s, sv.eps, stream));
  }
  if (want_x) {
    bool acc = false;
    float* dx = sink.target(0, acc).data();
    if (sv.training) {
      IPG_ON_DEVICE("batch_norm_backward", dev,
                    kernels::cpu::batch_norm_backward_input_train(
                        sv.x.data(), gy.data(), sv.mean.data(), sv.var.data(), sv.gamma.data(),
                        sum_dy.data(), sum_dy_xhat.data(), dx, d.n, d.c, d.s, sv.eps, acc),
                    kernels::cuda::batch_norm_backward_input_train(
                        sv.x.data(), gy.data(), sv.mean.data(), sv.var.data(), sv.gamma.data(),
                        sum_dy.data(), sum_dy_xhat.data(), dx, d.n, d.c, d.s, sv.eps, acc,
                        stream));
    } else {
      IPG_ON_DEVICE("batch_norm_backward", dev,
                    kernels::cpu::batch_norm_backward_input_eval(
                        gy.data(), sv.var.data(), sv.gamma.data(), dx, d.n, d.c, d.s, sv.eps, acc),
                    kernels::cuda::batch_norm_backward_input_eval(gy.data(), sv.var.data(),
                                                                  sv.gamma.data(), dx, d.n, d.c,
                                                                  d.s, sv.eps, acc, stream));
    }
  }
  if (want_gamma) add_(sink.at(1), sum_dy_xhat);
  if (want_beta) add_(sink.at(2), sum_dy);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum, float eps) {
  const BnDims d = check_inputs(x, gamma, beta, running_mean, running_var);
  const Device dev = x.device();
  Tensor y = Tensor::empty(x.shape(), dev);
  Tensor mean, var;
  if (training) {
    const int64_t count = d.n * d.s;
    // PyTorch refuses this too: the unbiased variance of one value is undefined.
    if (count < 2)
      throw ShapeError("batch_norm: training needs more than one value per channel, got input " +
                       shape_str(x.shape()));
    mean = Tensor::empty({d.c}, dev);
    var = Tensor::empty({d.c}, dev);
    IPG_ON_DEVICE(
        "batch_norm", dev,
        {
          kernels::cpu::batch_norm_stats(x.data(), mean.data(), var.data(), d.n, d.c, d.s);
          kernels::cpu::batch_norm_update_running(mean.data(), var.data(), running_mean.data(),
                                                  running_var.data(), d.c, count, momentum);
        },
        {
          kernels::cuda::batch_norm_stats(x.data(), mean.data(), var.data(), d.n, d.c, d.s, stream);
          kernels::cuda::batch_norm_update_running(mean.data(), var.data(), running_mean.data(),
                                                   running_var.data(), d.c, count, momentum,
                                                   stream);
        });
    normalize(x, mean, var, gamma, beta, y, d, eps);
  } else {
    normalize(x, running_mean, running_var, gamma, beta, y, d, eps);
  }
  if (autograd::needs_graph({x, gamma, beta})) {
    BnSaved sv;
    sv.d = d;
    sv.eps = eps;
    sv.training = training;
    sv.gamma = gamma.detach();
    if (training || gamma.requires_grad()) sv.x = x.detach();
    // Eval mode shares the running buffers rather than copying them, as gamma is shared:
    // they change only in a training-mode call, which does not come between an eval-mode
    // forward and its backward.
    sv.mean = training ? mean : running_mean.detach();
    sv.var = training ? var : running_var.detach();
    autograd::attach(y, "batch_norm", {x, gamma, beta},
                     [sv = std::move(sv)](const Tensor& gy, GradSink& sink) {
                       batch_norm_backward(sv, gy, sink);
                     });
    if (trace::active()) {
      trace::Attrs a;
      a.eps = eps;
      a.training = training;
      a.running_mean = running_mean;
      a.running_var = running_var;
      trace::describe(y, trace::Op::BatchNorm, a);
    }
  }
  return y;
}

}  // namespace ipg::ops
