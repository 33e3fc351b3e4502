// FusedConv on oneDNN (see fused_conv.h). Post-ops carry the epilogue: a sum post-op adds
// the residual (oneDNN sums into the destination, so the residual is first copied into y:
// one pass over y, cheaper than a separate add that reads three maps), then the ReLU.
// Algorithm: convolution_direct, as in conv2d.cpp (Winograd rounds differently).
#include "kernels/cpu/fused_conv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/blocked.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/dnnl_plan.h"

namespace ipg::kernels::cpu {

namespace {

using dnnl::memory;
using dnnl_plan::cpu_engine;
using dnnl_plan::Plan;
using dnnl_plan::Role;
using Tag = memory::format_tag;

// Input channels up to which backward-data runs conv2d.cpp's own loops on a plain dz
// (oneDNN has no direct kernel for a 1-4 channel diff_src); as in conv2d.cpp.
constexpr int64_t kSmallInput = 4;

Tag layout_of(int64_t channels) { return channel_block(channels) == 16 ? Tag::nChw16c : Tag::nchw; }

void copy(const float* src, float* dst, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
  for (int64_t chunk = 0; chunk < (n + 8191) / 8192; ++chunk) {
    const int64_t lo = chunk * 8192, len = std::min<int64_t>(8192, n - lo);
    std::memcpy(dst + lo, src + lo, sizeof(float) * static_cast<size_t>(len));
  }
}

}  // namespace

struct FusedConv::Impl {
  Conv2dShape s;
  bool residual = false;
  Plan fwd, bwd;  // bwd unused when small_input
  bool small_input = false;
  memory w_fwd, w_bwd, bias;   // weights in each primitive's layout, owned
  std::vector<float> w_plain;  // OIHW, for the small-input backward
  dnnl::reorder dz_to_plain;   // small input with a blocked dz
  memory::desc dz_user, dz_plain;
  size_t workspace = 0;
};

FusedConv::FusedConv(const Conv2dShape& s, const float* weight, const float* bias, bool residual,
                     bool relu, float relu_max)
    : impl_(std::make_unique<Impl>()) {
  // The planner lowers only convolutions with one stride and one padding for both axes
  // (engine/plan_layers.cpp refuses the others).
  if (!s.uniform())
    throw std::invalid_argument(describe(ConvPass::Forward, s) +
                                ": a fused convolution needs one stride and one padding");
  Impl& m = *impl_;
  m.s = s;
  m.residual = residual;
  // conv2d.cpp's own backward-data loops take no groups and no dilation.
  m.small_input = s.c_in <= kSmallInput && s.square();
  const auto f32 = memory::data_type::f32;
  // Grouped weights are [groups, c_out/groups, c_in/groups, kh, kw] to oneDNN: the same
  // bytes as our [c_out, c_in/groups, kh, kw]. Depthwise (groups == channels) on nChw16c
  // runs oneDNN's depthwise kernels; oneDNN counts dilation as the gaps (0: none).
  const bool grouped = s.groups > 1;
  const memory::dims xd{s.n, s.c_in, s.h, s.w},
      wd = grouped ? memory::dims{s.groups, s.c_out / s.groups, s.c_in_group(), s.kh, s.kw}
                   : memory::dims{s.c_out, s.c_in, s.kh, s.kw},
      yd{s.n, s.c_out, s.h_out(), s.w_out()}, bd{s.c_out}, strides{s.stride, s.stride},
      dil{s.dilation_h - 1, s.dilation_w - 1}, pad{s.padding, s.padding};
  const memory::desc x_user(xd, f32, layout_of(s.c_in)), y_user(yd, f32, layout_of(s.c_out)),
      w_user(wd, f32, grouped ? Tag::goihw : Tag::oihw), b_desc(bd, f32, Tag::x);
  // The primitives are asked for the activations' own layouts, so that nothing is staged
  // between layers: left a free choice (format any) for forward_inference, oneDNN 2.6
  // picks its brgconv kernel on NHWC and every map would be reordered there and back
  // (measured on ResNet20 at batch 100: 12 ms of reorders, and brgconv itself 30% slower
  // than the nChw16c direct kernel). Only a plain map of 5-15 channels is left to oneDNN.
  auto pick = [&](const memory::desc& user, int64_t c, const memory::dims& d) {
    return (c % 16 == 0 || c <= kSmallInput) ? user : memory::desc(d, f32, Tag::any);
  };
  const memory::desc x_any = pick(x_user, s.c_in, xd), y_any = pick(y_user, s.c_out, yd);
  const memory::desc w_any(wd, f32, Tag::any), x_free(xd, f32, Tag::any), y_free(yd, f32, Tag::any);
  // Where only oneDNN's reference kernel takes the activations' own layouts (a grouped
  // convolution whose groups are not 16-channel multiples on nChw16c, a dilated depthwise
  // backward-data there: 10-100x slower than its jit kernels), the layouts are left to
  // oneDNN and the plan stages the maps through the workspace.
  auto is_ref = [](const auto& pd) { return std::string(pd.impl_info_str()).rfind("ref", 0) == 0; };
  dnnl::engine& eng = cpu_engine();
  dnnl::stream& strm = dnnl_plan::cpu_stream();
  auto own = [&](const memory::desc& inner, const float* src, const memory::desc& user) {
    memory dst(inner, eng);
    memory from(user, eng, const_cast<float*>(src));
    dnnl::reorder(from, dst).execute(strm, from, dst);
    return dst;
  };
  try {
    dnnl::post_ops ops;
    if (residual) ops.append_sum(1.f);
    if (relu && std::isfinite(relu_max))
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, 0.f, relu_max);
    else if (relu)
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr = dnnl_plan::user_scratchpad();
    attr.set_post_ops(ops);
    auto forward_pd = [&](const memory::desc& x, const memory::desc& y) {
      const auto fdesc =
          bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                 dnnl::algorithm::convolution_direct, x, w_any,
                                                 b_desc, y, strides, dil, pad, pad)
               : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                 dnnl::algorithm::convolution_direct, x, w_any, y,
                                                 strides, dil, pad, pad);
      return dnnl::convolution_forward::primitive_desc(fdesc, attr, eng);
    };
    auto fpd = forward_pd(x_any, y_any);
    if (is_ref(fpd)) fpd = forward_pd(x_free, y_free);
    m.fwd.primitive = dnnl::convolution_forward(fpd);
    m.fwd.scratchpad = fpd.scratchpad_desc();
    m.fwd.add(DNNL_ARG_SRC, Role::Input, x_user, fpd.src_desc());
    m.fwd.add(DNNL_ARG_WEIGHTS, Role::Input, fpd.weights_desc(), fpd.weights_desc());
    if (bias) m.fwd.add(DNNL_ARG_BIAS, Role::Input, b_desc, b_desc);
    m.fwd.add(DNNL_ARG_DST, residual ? Role::Update : Role::Output, y_user, fpd.dst_desc());
    m.w_fwd = own(fpd.weights_desc(), weight, w_user);
    if (bias) m.bias = own(b_desc, bias, b_desc);
    m.workspace = m.fwd.workspace_bytes;

    if (m.small_input) {
      m.w_plain.assign(weight, weight + s.c_out * s.c_in_group() * s.kh * s.kw);
      m.dz_user = y_user;
      m.dz_plain = memory::desc(yd, f32, Tag::nchw);
      if (y_user != m.dz_plain)
        m.dz_to_plain = dnnl::reorder(dnnl::reorder::primitive_desc(eng, y_user, eng, m.dz_plain));
      m.workspace = std::max(m.workspace, m.dz_plain.get_size());
    } else {
      // The backward primitive takes a forward one as a hint for its layouts.
      auto backward_pd = [&](const memory::desc& x, const memory::desc& y) {
        const dnnl::convolution_forward::primitive_desc hint(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                            dnnl::algorithm::convolution_direct, x, w_any, y,
                                            strides, dil, pad, pad),
            eng);
        return dnnl::convolution_backward_data::primitive_desc(
            dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, x, w_any,
                                                  y, strides, dil, pad, pad),
            dnnl_plan::user_scratchpad(), eng, hint);
      };
      auto bpd = backward_pd(x_any, y_any);
      if (is_ref(bpd)) bpd = backward_pd(x_free, y_free);
      m.bwd.primitive = dnnl::convolution_backward_data(bpd);
      m.bwd.scratchpad = bpd.scratchpad_desc();
      m.bwd.add(DNNL_ARG_DIFF_DST, Role::Input, y_user, bpd.diff_dst_desc());
      m.bwd.add(DNNL_ARG_WEIGHTS, Role::Input, bpd.weights_desc(), bpd.weights_desc());
      m.bwd.add(DNNL_ARG_DIFF_SRC, Role::Output, x_user, bpd.diff_src_desc());
      m.w_bwd = own(bpd.weights_desc(), weight, w_user);
      m.workspace = std::max(m.workspace, m.bwd.workspace_bytes);
    }
    strm.wait();
  } catch (const dnnl::error& e) {
    throw std::runtime_error(describe(ConvPass::Forward, s) +
                             " (frozen, fused): oneDNN could not create it: " + e.what());
  }
}

FusedConv::~FusedConv() = default;

const Conv2dShape& FusedConv::shape() const { return impl_->s; }

size_t FusedConv::workspace_bytes() const { return impl_->workspace; }

void FusedConv::forward(const float* x, const float* residual, float* y, void* workspace,
                        size_t workspace_bytes) const {
  const Impl& m = *impl_;
  if ((residual != nullptr) != m.residual)
    throw std::logic_error(
        "FusedConv::forward: residual given to a conv made without one, "
        "or missing");
  if (residual && residual != y) copy(residual, y, m.s.n * m.s.c_out * m.s.h_out() * m.s.w_out());
  const void* b = m.bias ? m.bias.get_data_handle() : nullptr;
  const std::string what = describe(ConvPass::Forward, m.s);
  if (b)
    dnnl_plan::execute(m.fwd, {x, m.w_fwd.get_data_handle(), b, y}, workspace, workspace_bytes,
                       what);
  else
    dnnl_plan::execute(m.fwd, {x, m.w_fwd.get_data_handle(), y}, workspace, workspace_bytes, what);
}

void FusedConv::backward_data(const float* dz, float* dx, void* workspace,
                              size_t workspace_bytes) const {
  const Impl& m = *impl_;
  if (!m.small_input) {
    dnnl_plan::execute(m.bwd, {dz, m.w_bwd.get_data_handle(), dx}, workspace, workspace_bytes,
                       describe(ConvPass::BackwardData, m.s));
    return;
  }
  const float* plain = dz;
  if (m.dz_to_plain) {
    if (workspace_bytes < m.dz_plain.get_size())
      throw std::invalid_argument(describe(ConvPass::BackwardData, m.s) + ": workspace too small");
    dnnl::engine& eng = cpu_engine();
    dnnl::stream& strm = dnnl_plan::cpu_stream();
    memory from(m.dz_user, eng, const_cast<float*>(dz)), to(m.dz_plain, eng, workspace);
    m.dz_to_plain.execute(strm, from, to);
    strm.wait();
    plain = static_cast<const float*>(workspace);
  }
  conv2d_backward_data(m.s, plain, m.w_plain.data(), dx, /*accumulate=*/false, nullptr, 0);
}

}  // namespace ipg::kernels::cpu
