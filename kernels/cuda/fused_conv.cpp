// The fused convolution on cuDNN (fused_conv.h). Host code only: the work is cuDNN's.
//
// Forward algorithm: with the ReLU, the one cuDNN's search picks for the plain convolution
// of this shape (conv_plan: timed, FMA math, no transform-domain algorithm); without it,
// CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, the only algorithm
// cudnnConvolutionBiasActivationForward accepts with CUDNN_ACTIVATION_IDENTITY (and the
// one for which cuDNN runs bias, residual and activation in the convolution's own
// kernel; with the others it adds them in further kernels of its own).
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // see cudnn_conv.cpp
#endif

#include "kernels/cuda/fused_conv.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/cudnn_graph_conv.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

const float kOne = 1.f, kZero = 0.f;

}  // namespace

struct FusedConv::Impl {
  Conv2dShape s;
  bool residual = false;
  cudnnHandle_t handle = nullptr;
  const ConvPlan* fwd = nullptr;  // descriptors of x, w, y and the convolution
  const ConvPlan* bwd = nullptr;  // the same, and the backward-data algorithm
  cudnnConvolutionFwdAlgo_t fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  size_t fwd_workspace = 0;
  TensorDesc bias_desc;
  ActivationDesc activation;
  std::unique_ptr<DeviceBuffer> weight, bias;  // freed with the conv
  std::unique_ptr<GraphConvForward> graph;  // ConvEngine::Graph's forward

  Impl(const Conv2dShape& shape, const float* w, const float* b, bool with_residual, bool relu,
       cudaStream_t stream, ConvEngine engine)
      : s(shape), residual(with_residual) {
    // The planner lowers only convolutions with one stride and one padding for both axes
    // (engine/plan_layers.cpp refuses the others); groups and dilation are the descriptor's
    // (cudnn_conv.cpp), as for the unfused op.
    if (!s.uniform())
      throw std::invalid_argument(describe(ConvPass::Forward, s) +
                                  ": a fused convolution needs one stride and one padding");
    handle = cudnn_handle(stream);
    fwd = &conv_plan(ConvPass::Forward, s, stream);
    bwd = &conv_plan(ConvPass::BackwardData, s, stream);
    if (relu) {
      fwd_algo = static_cast<cudnnConvolutionFwdAlgo_t>(fwd->algo);
      fwd_workspace = fwd->workspace_bytes;
    } else {
      const cudnnStatus_t st = cudnnGetConvolutionForwardWorkspaceSize(
          handle, fwd->x.get(), fwd->w.get(), fwd->conv.get(), fwd->y.get(), fwd_algo,
          &fwd_workspace);
      if (st != CUDNN_STATUS_SUCCESS || fwd_workspace > kConvWorkspaceCap)
        throw CudaError(describe(ConvPass::Forward, s) + ": cuDNN cannot fuse a bias without a " +
                        "ReLU here (implicit precomputed GEMM: " + cudnnGetErrorString(st) + ")");
    }
    IPG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias_desc.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                               1, static_cast<int>(s.c_out), 1, 1));
    // CUDNN_NOT_PROPAGATE_NAN: the setting other users of the fused call run it with. A NaN
    // pre-activation comes out as 0 here and as NaN on the CPU; the images a frozen
    // network takes are finite.
    IPG_CUDNN_CHECK(cudnnSetActivationDescriptor(
        activation.get(), relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
        CUDNN_NOT_PROPAGATE_NAN, 0.0));
    // The fused call always adds a bias: zeros when the conv has none.
    const size_t w_count = static_cast<size_t>(s.c_out * s.c_in_group() * s.kh * s.kw);
    const std::vector<float> zeros(b ? 0 : static_cast<size_t>(s.c_out), 0.f);
    weight = std::make_unique<DeviceBuffer>(w_count * sizeof(float));
    bias = std::make_unique<DeviceBuffer>(static_cast<size_t>(s.c_out) * sizeof(float));
    copy_host_to_device(weight->p, w, w_count * sizeof(float), stream);
    copy_host_to_device(bias->p, b ? b : zeros.data(), static_cast<size_t>(s.c_out) * sizeof(float),
                        stream);
    if (engine == ConvEngine::Graph)
      graph = std::make_unique<GraphConvForward>(s, residual, relu, stream);
  }

  void check(size_t need, size_t have, ConvPass pass) const {
    if (have < need)
      throw std::invalid_argument(describe(pass, s) + ": workspace of " + std::to_string(have) +
                                  " bytes, needs " + std::to_string(need));
  }
};

FusedConv::FusedConv(const Conv2dShape& s, const float* weight, const float* bias, bool residual,
                     bool relu, cudaStream_t stream, ConvEngine engine)
    : impl_(std::make_unique<Impl>(s, weight, bias, residual, relu, stream, engine)) {}

FusedConv::~FusedConv() = default;

const Conv2dShape& FusedConv::shape() const { return impl_->s; }

std::string FusedConv::forward_engine() const {
  if (impl_->graph) return impl_->graph->engine();
  return "legacy fused call, algorithm " + std::to_string(static_cast<int>(impl_->fwd_algo));
}

size_t FusedConv::workspace_bytes() const {
  const size_t fwd = impl_->graph ? impl_->graph->workspace_bytes() : impl_->fwd_workspace;
  return std::max(fwd, impl_->bwd->workspace_bytes);
}

void FusedConv::forward(const float* x, const float* residual, float* y, void* workspace,
                        size_t workspace_bytes) const {
  const Impl& m = *impl_;
  if ((residual != nullptr) != m.residual)
    throw std::invalid_argument(
        describe(ConvPass::Forward, m.s) +
        (m.residual ? ": needs its residual" : ": made without a residual"));
  if (m.graph) {
    m.graph->forward(x, m.weight->f(), m.bias->f(), residual, y, workspace, workspace_bytes);
    return;
  }
  m.check(m.fwd_workspace, workspace_bytes, ConvPass::Forward);
  // y = act(1 * conv(x) + alpha2 * z + bias): z is the residual (alpha2 = 1), or y itself
  // with alpha2 = 0 (cuDNN wants a valid z either way, and with alpha2 = 0 it is not read).
  IPG_CUDNN_CHECK(cudnnConvolutionBiasActivationForward(
      m.handle, &kOne, m.fwd->x.get(), x, m.fwd->w.get(), m.weight->f(), m.fwd->conv.get(),
      m.fwd_algo, workspace, workspace_bytes, residual ? &kOne : &kZero, m.fwd->y.get(),
      residual ? residual : y, m.bias_desc.get(), m.bias->f(), m.activation.get(), m.fwd->y.get(),
      y));
}

void FusedConv::backward_data(const float* dz, float* dx, void* workspace,
                              size_t workspace_bytes) const {
  const Impl& m = *impl_;
  m.check(m.bwd->workspace_bytes, workspace_bytes, ConvPass::BackwardData);
  // beta = 0: dx is overwritten (and not read).
  IPG_CUDNN_CHECK(cudnnConvolutionBackwardData(
      m.handle, &kOne, m.bwd->w.get(), m.weight->f(), m.bwd->y.get(), dz, m.bwd->conv.get(),
      static_cast<cudnnConvolutionBwdDataAlgo_t>(m.bwd->algo), workspace, workspace_bytes, &kZero,
      m.bwd->x.get(), dx));
}

}  // namespace ipg::kernels::cuda
