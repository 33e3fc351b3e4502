// Convolution on oneDNN primitives, each created once per shape and cached.
//
// Memory formats. Our tensors are plain NCHW/OIHW, but oneDNN's fast direct kernels
// (jit:avx512_core) want channel-blocked layouts (nChw16c, OIhw16i16o); given plain
// layouts it falls back to im2col + GEMM (gemm:jit). So every primitive is created with
// format_tag::any, and a cached reorder converts each operand into the primitive's layout
// inside the workspace (and back for outputs). Measured at batch 100 on 2 AVX-512 cores,
// reorders included: ResNet20's 3x3 shapes (16..64 channels, 32x32..8x8) run 2-4x faster
// this way (e.g. 32->32 at 16x16: forward 97 -> 288 GFLOP/s, backward-weights 89 -> 261).
// The exception is an input with only a few channels (RGB/grey first layers): a 16-channel
// block pads 1-3 channels to 16, and oneDNN has direct kernels that read plain NCHW there,
// so x/dx stay NCHW when c_in <= kPlainInputChannels (LeNet 1->6 5x5 backward-data:
// 7 -> 14 GFLOP/s; ResNet20 3->16 backward-weights: 91 -> 129).
//
// Algorithm: convolution_direct. Winograd (convolution_auto) is 1.3-1.6x faster on 3x3
// stride-1 shapes but rounds differently (its transforms add ~1e-5 relative error), and
// this twin is the reference the CUDA backend is checked against.
//
// Accumulation: when the backward passes add to the caller's buffer, their outputs are
// computed into the workspace and added by a reorder with a sum post-op, which also
// converts the layout (dnnl_plan.h: staging, scratchpad in the caller's workspace); when
// they write it, a plain output is written in place and a blocked one reordered out. The plan cache is the only
// shared state (plan_cache.h: bounded, guarded by a mutex).
#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/dnnl_plan.h"
#include "kernels/cpu/plan_cache.h"

namespace ipg::kernels::cpu {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

constexpr int64_t kPlainInputChannels = 4;

using dnnl_plan::cpu_engine;
using dnnl_plan::Plan;
using dnnl_plan::Role;
using dnnl_plan::user_scratchpad;
using Pass = ConvPass;

struct Descs {
  memory::dims strides, dilates, padding_l, padding_r;
  memory::desc x_user, w_user, b_user, y_user;  // the caller's plain layouts
  memory::desc x_any, w_any, b_any, y_any;      // what the primitive may choose from
};

Descs make_descs(const Conv2dShape& s, bool with_bias) {
  const auto f32 = memory::data_type::f32;
  const memory::dims xd{s.n, s.c_in, s.h, s.w}, yd{s.n, s.c_out, s.h_out(), s.w_out()},
      bd{s.c_out};
  // Grouped weights are [groups, c_out/groups, c_in/groups, kh, kw] to oneDNN: the same
  // bytes as our [c_out, c_in/groups, kh, kw].
  const bool grouped = s.groups > 1;
  const memory::dims wd = grouped ? memory::dims{s.groups, s.c_out / s.groups, s.c_in_group(),
                                                 s.kh, s.kw}
                                  : memory::dims{s.c_out, s.c_in, s.kh, s.kw};
  Descs d;
  d.strides = {s.sh(), s.sw()};
  d.dilates = {s.dilation_h - 1, s.dilation_w - 1};  // oneDNN counts the gaps: 0 is none
  d.padding_l = d.padding_r = {s.ph(), s.pw()};
  d.x_user = memory::desc(xd, f32, Tag::nchw);
  d.w_user = memory::desc(wd, f32, grouped ? Tag::goihw : Tag::oihw);
  d.y_user = memory::desc(yd, f32, Tag::nchw);
  d.x_any = memory::desc(xd, f32, s.c_in <= kPlainInputChannels ? Tag::nchw : Tag::any);
  d.w_any = memory::desc(wd, f32, Tag::any);
  d.y_any = memory::desc(yd, f32, Tag::any);
  if (with_bias) d.b_user = d.b_any = memory::desc(bd, f32, Tag::x);
  return d;
}

// The backward primitives take a forward primitive descriptor as a hint for layouts.
dnnl::convolution_forward::primitive_desc forward_pd(const Descs& d, bool with_bias) {
  const auto desc =
      with_bias
          ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                            dnnl::algorithm::convolution_direct, d.x_any, d.w_any,
                                            d.b_any, d.y_any, d.strides, d.dilates, d.padding_l, d.padding_r)
          : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                            dnnl::algorithm::convolution_direct, d.x_any, d.w_any,
                                            d.y_any, d.strides, d.dilates, d.padding_l, d.padding_r);
  return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad(), cpu_engine());
}

std::unique_ptr<Plan> make_plan(Pass pass, const Conv2dShape& s, bool with_bias,
                                bool accumulate) {
  const Role out = accumulate ? Role::Accumulate : Role::Output;
  const Descs d = make_descs(s, with_bias);
  auto plan = std::make_unique<Plan>();
  const auto fwd = forward_pd(d, with_bias);
  if (pass == Pass::Forward) {
    plan->primitive = dnnl::convolution_forward(fwd);
    plan->scratchpad = fwd.scratchpad_desc();
    plan->add(DNNL_ARG_SRC, Role::Input, d.x_user, fwd.src_desc());
    plan->add(DNNL_ARG_WEIGHTS, Role::Input, d.w_user, fwd.weights_desc());
    if (with_bias) plan->add(DNNL_ARG_BIAS, Role::Input, d.b_user, fwd.bias_desc());
    plan->add(DNNL_ARG_DST, Role::Output, d.y_user, fwd.dst_desc());
  } else if (pass == Pass::BackwardData) {
    const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.x_any,
                                                     d.w_any, d.y_any, d.strides, d.dilates,
                                                     d.padding_l, d.padding_r);
    const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), cpu_engine(),
                                                             fwd);
    plan->primitive = dnnl::convolution_backward_data(pd);
    plan->scratchpad = pd.scratchpad_desc();
    plan->add(DNNL_ARG_DIFF_DST, Role::Input, d.y_user, pd.diff_dst_desc());
    plan->add(DNNL_ARG_WEIGHTS, Role::Input, d.w_user, pd.weights_desc());
    plan->add(DNNL_ARG_DIFF_SRC, out, d.x_user, pd.diff_src_desc());
  } else {
    const auto desc = with_bias ? dnnl::convolution_backward_weights::desc(
                                      dnnl::algorithm::convolution_direct, d.x_any, d.w_any,
                                      d.b_any, d.y_any, d.strides, d.dilates, d.padding_l, d.padding_r)
                                : dnnl::convolution_backward_weights::desc(
                                      dnnl::algorithm::convolution_direct, d.x_any, d.w_any,
                                      d.y_any, d.strides, d.dilates, d.padding_l, d.padding_r);
    const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(),
                                                                cpu_engine(), fwd);
    plan->primitive = dnnl::convolution_backward_weights(pd);
    plan->scratchpad = pd.scratchpad_desc();
    plan->add(DNNL_ARG_SRC, Role::Input, d.x_user, pd.src_desc());
    plan->add(DNNL_ARG_DIFF_DST, Role::Input, d.y_user, pd.diff_dst_desc());
    plan->add(DNNL_ARG_DIFF_WEIGHTS, out, d.w_user, pd.diff_weights_desc());
    if (with_bias) plan->add(DNNL_ARG_DIFF_BIAS, out, d.b_user, pd.diff_bias_desc());
  }
  return plan;
}

// Plans are cached per (geometry, pass, bias, accumulation): oneDNN's JIT compilation costs
// far more than a run. 1024 plans cover every layer of the zoo's networks at a few hundred
// batch sizes; plan_cache.h says why the cache is bounded.
using PlanKey = std::array<int64_t, Conv2dShape::kKeySize + 3>;
PlanCache<PlanKey, Plan>& plans() {
  static PlanCache<PlanKey, Plan> cache(1024);
  return cache;
}

// accumulate: a backward pass adds to its outputs (the forward pass always writes).
std::shared_ptr<const Plan> plan_for(Pass pass, const Conv2dShape& s, bool with_bias,
                                     bool accumulate = false) {
  constexpr size_t kGeometry = Conv2dShape::kKeySize;
  PlanKey key{};
  const auto geometry = s.key();
  std::copy(geometry.begin(), geometry.end(), key.begin());
  key[kGeometry] = static_cast<int64_t>(pass);
  key[kGeometry + 1] = with_bias;
  key[kGeometry + 2] = accumulate;
  return plans().get(key, [&] {
    try {
      return make_plan(pass, s, with_bias, accumulate);
    } catch (const dnnl::error& e) {
      throw std::runtime_error(describe(pass, s) + ": oneDNN could not create it: " + e.what());
    }
  });
}

void execute(const Plan& plan, Pass pass, const Conv2dShape& s,
             std::initializer_list<const void*> buffers, void* workspace, size_t workspace_bytes) {
  dnnl_plan::execute(plan, buffers, workspace, workspace_bytes, describe(pass, s));
}

}  // namespace

size_t conv2d_cached_plans() { return plans().size(); }
void set_conv2d_plan_capacity(size_t plans_held) { plans().set_capacity(plans_held); }

size_t conv2d_forward_workspace(const Conv2dShape& s, bool with_bias) {
  return plan_for(Pass::Forward, s, with_bias)->workspace_bytes;
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y, void* workspace, size_t workspace_bytes) {
  const auto plan = plan_for(Pass::Forward, s, bias != nullptr);
  if (bias)
    execute(*plan, Pass::Forward, s, {x, weight, bias, y}, workspace, workspace_bytes);
  else
    execute(*plan, Pass::Forward, s, {x, weight, y}, workspace, workspace_bytes);
}

namespace {

// Backward-data of a convolution with few input channels (the first layer: grey or RGB
// images) is computed here, not by oneDNN: it has no direct kernel for a 1-3 channel
// diff_src and runs im2col + GEMM + a scalar col2im there (LeNet-5's first layer: 22% of
// the whole forward+backward-to-input iteration at batch 100). Two forms, both summing
// in a fixed order, so any thread count gives the same bits: the gather form below for
// stride 1 (the common case, fastest), and this scatter form for any geometry, where
// each thread owns whole dx planes (sample, input channel) and adds every dy row into
// them (output channel, kernel row, kernel column, output row).
// Square geometry only (no groups, no dilation): grouped or dilated first layers go to
// oneDNN.
bool direct_backward_data(const Conv2dShape& s) {
  return s.c_in <= kPlainInputChannels && s.square();
}

// Integer division rounding down / up (b > 0), for negative numerators too.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

void backward_data_direct(const Conv2dShape& s, const float* dy, const float* weight, float* dx) {
  const int64_t oh = s.h_out(), ow = s.w_out(), st = s.stride, pad = s.padding;
  const int64_t planes = s.n * s.c_in, in_plane = s.h * s.w, out_plane = oh * ow;
#pragma omp parallel for schedule(static) if (planes * s.c_out * out_plane * s.kh * s.kw >= \
                                              (1 << 16))
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / s.c_in, ci = p % s.c_in;
    float* d = dx + p * in_plane;
    for (int64_t co = 0; co < s.c_out; ++co) {
      const float* g = dy + (n * s.c_out + co) * out_plane;
      const float* wk = weight + (co * s.c_in + ci) * s.kh * s.kw;
      for (int64_t a = 0; a < s.kh; ++a)
        for (int64_t b = 0; b < s.kw; ++b) {
          const float wv = wk[a * s.kw + b];
          // Output columns whose input column ow*st + b - pad lies inside the row.
          const int64_t x_lo = std::max<int64_t>(0, ceil_div(pad - b, st));
          const int64_t x_hi = std::min<int64_t>(ow, floor_div(s.w - 1 + pad - b, st) + 1);
          if (x_lo >= x_hi) continue;
          for (int64_t y = 0; y < oh; ++y) {
            const int64_t iy = y * st + a - pad;
            if (iy < 0 || iy >= s.h) continue;
            const float* grow = g + y * ow;
            float* drow = d + iy * s.w;
            const int64_t shift = b - pad;  // input column of output column x: x*st + shift
            if (st == 1) {
#pragma omp simd
              for (int64_t x = x_lo; x < x_hi; ++x) drow[x + shift] += wv * grow[x];
            } else {
              for (int64_t x = x_lo; x < x_hi; ++x) drow[x * st + shift] += wv * grow[x];
            }
          }
        }
    }
  }
}

// Stride 1, rows up to WMAX wide: the gather form. Each dx row is summed in a WMAX-float
// accumulator the compiler keeps in vector registers, over every (output channel, kernel
// row, kernel column) term, reading the dy row through a zero-padded copy so every term
// is one full-width multiply-add with no bounds; dx is then touched once per row instead
// of once per term (with the scatter form's row loads and stores, 4.9 ns per 24-float
// row, LeNet-5's first layer was 27% of its iteration; 9% this way). Parallel over samples; each dx
// row's terms are summed in one fixed order.
template <int WMAX>
void backward_data_gather(const Conv2dShape& s, const float* dy, const float* weight, float* dx,
                          bool accumulate) {
  const int64_t oh = s.h_out(), ow = s.w_out(), kh = s.kh, kw = s.kw, pad = s.padding;
  const int64_t off = kw - 1 - pad;       // padded column of dy column 0
  const int64_t row_len = WMAX + kw - 1;  // every read src[0..WMAX) stays inside
#pragma omp parallel if (s.n * s.c_out * oh * ow * kh * kw >= (1 << 16))
  {
    std::vector<float> padded(static_cast<size_t>(s.c_out * oh * row_len));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.n; ++n) {
      std::fill(padded.begin(), padded.end(), 0.f);
      for (int64_t co = 0; co < s.c_out; ++co)
        for (int64_t y = 0; y < oh; ++y)
          std::copy_n(dy + ((n * s.c_out + co) * oh + y) * ow, ow,
                      padded.data() + (co * oh + y) * row_len + off);
      for (int64_t ci = 0; ci < s.c_in; ++ci) {
        float* d = dx + (n * s.c_in + ci) * s.h * s.w;
        for (int64_t iy = 0; iy < s.h; ++iy) {
          float acc[WMAX] = {};
          for (int64_t co = 0; co < s.c_out; ++co)
            for (int64_t a = 0; a < kh; ++a) {
              const int64_t y = iy + pad - a;
              if (y < 0 || y >= oh) continue;
              const float* prow = padded.data() + (co * oh + y) * row_len;
              const float* wk = weight + ((co * s.c_in + ci) * kh + a) * kw;
              for (int64_t b = 0; b < kw; ++b) {
                // dx column ix takes dy column ix + pad - b: padded column ix + kw-1 - b.
                const float wv = wk[b];
                const float* src = prow + (kw - 1 - b);
#pragma omp simd
                for (int i = 0; i < WMAX; ++i) acc[i] += wv * src[i];
              }
            }
          float* drow = d + iy * s.w;
          if (accumulate)
            for (int64_t ix = 0; ix < s.w; ++ix) drow[ix] += acc[ix];
          else
            std::copy_n(acc, s.w, drow);
        }
      }
    }
  }
}

void backward_data_small_channels(const Conv2dShape& s, const float* dy, const float* weight,
                                  float* dx, bool accumulate) {
  // The gather form needs stride 1, padding below the kernel (so dy never starts left of
  // padded column 0) and dy rows as wide as dx rows at most.
  if (s.stride == 1 && s.padding <= s.kw - 1 && s.w_out() <= s.w) {
    if (s.w <= 16) return backward_data_gather<16>(s, dy, weight, dx, accumulate);
    if (s.w <= 32) return backward_data_gather<32>(s, dy, weight, dx, accumulate);
    if (s.w <= 64) return backward_data_gather<64>(s, dy, weight, dx, accumulate);
  }
  // The scatter form adds every term into dx.
  if (!accumulate) std::fill_n(dx, s.n * s.c_in * s.h * s.w, 0.f);
  backward_data_direct(s, dy, weight, dx);
}

}  // namespace

size_t conv2d_backward_data_workspace(const Conv2dShape& s, bool accumulate) {
  return direct_backward_data(s)
             ? 0
             : plan_for(Pass::BackwardData, s, false, accumulate)->workspace_bytes;
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx,
                          bool accumulate, void* workspace, size_t workspace_bytes) {
  if (direct_backward_data(s)) return backward_data_small_channels(s, dy, weight, dx, accumulate);
  execute(*plan_for(Pass::BackwardData, s, false, accumulate), Pass::BackwardData, s,
          {dy, weight, dx}, workspace, workspace_bytes);
}

size_t conv2d_backward_weights_workspace(const Conv2dShape& s, bool with_bias, bool accumulate) {
  return plan_for(Pass::BackwardWeights, s, with_bias, accumulate)->workspace_bytes;
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dweight,
                             float* dbias, bool accumulate, void* workspace,
                             size_t workspace_bytes) {
  const auto plan = plan_for(Pass::BackwardWeights, s, dbias != nullptr, accumulate);
  if (dbias)
    execute(*plan, Pass::BackwardWeights, s, {x, dy, dweight, dbias}, workspace, workspace_bytes);
  else
    execute(*plan, Pass::BackwardWeights, s, {x, dy, dweight}, workspace, workspace_bytes);
}

namespace {

// Where conv2d_backward keeps dy in the primitives' layout: ahead of the passes' own
// workspace, when both passes stage dy into the same layout (else each stages its own).
struct SharedDy {
  const dnnl_plan::Operand* op = nullptr;  // backward-data's dy operand (its reorder)
  size_t bytes = 0;                        // dy's staged copy, 64-byte aligned
};

SharedDy shared_dy(const Plan& data, const Plan& weights) {
  const auto* a = dnnl_plan::find_operand(data, DNNL_ARG_DIFF_DST);
  const auto* b = dnnl_plan::find_operand(weights, DNNL_ARG_DIFF_DST);
  if (!a || !b || !a->staged || !b->staged || a->inner != b->inner) return {};
  return {a, (a->inner.get_size() + 63) / 64 * 64};
}

}  // namespace

size_t conv2d_backward_workspace(const Conv2dShape& s, bool with_bias, bool acc_dx, bool acc_w) {
  const size_t w_bytes = conv2d_backward_weights_workspace(s, with_bias, acc_w);
  if (direct_backward_data(s)) return w_bytes;
  const auto data = plan_for(Pass::BackwardData, s, false, acc_dx);
  const auto weights = plan_for(Pass::BackwardWeights, s, with_bias, acc_w);
  return shared_dy(*data, *weights).bytes + std::max(data->workspace_bytes, w_bytes);
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* dy, const float* weight,
                     float* dx, bool acc_dx, float* dweight, float* dbias, bool acc_w,
                     void* workspace, size_t workspace_bytes) {
  const bool with_bias = dbias != nullptr;
  if (direct_backward_data(s)) {
    backward_data_small_channels(s, dy, weight, dx, acc_dx);
    return conv2d_backward_weights(s, x, dy, dweight, dbias, acc_w, workspace, workspace_bytes);
  }
  const auto data = plan_for(Pass::BackwardData, s, false, acc_dx);
  const auto weights = plan_for(Pass::BackwardWeights, s, with_bias, acc_w);
  const SharedDy shared = shared_dy(*data, *weights);
  if (workspace_bytes < conv2d_backward_workspace(s, with_bias, acc_dx, acc_w))
    throw std::invalid_argument(describe(Pass::BackwardData, s) +
                                ": workspace too small for both backward passes");
  dnnl_plan::Prestaged pre;
  const dnnl_plan::Prestaged* use = nullptr;
  if (shared.op) {
    dnnl::engine& eng = cpu_engine();
    dnnl::stream& strm = dnnl_plan::cpu_stream();
    memory user(shared.op->user, eng, const_cast<float*>(dy)), inner(shared.op->inner, eng, workspace);
    shared.op->in.execute(strm, user, inner);
    strm.wait();
    pre = {DNNL_ARG_DIFF_DST, workspace};
    use = &pre;
  }
  void* rest = static_cast<char*>(workspace) + shared.bytes;
  const size_t rest_bytes = workspace_bytes - shared.bytes;
  dnnl_plan::execute(*data, {dy, weight, dx}, rest, rest_bytes, describe(Pass::BackwardData, s),
                     use);
  if (with_bias)
    dnnl_plan::execute(*weights, {x, dy, dweight, dbias}, rest, rest_bytes,
                       describe(Pass::BackwardWeights, s), use);
  else
    dnnl_plan::execute(*weights, {x, dy, dweight}, rest, rest_bytes,
                       describe(Pass::BackwardWeights, s), use);
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias) {
  const int64_t plane = s.h_out() * s.w_out();
#pragma omp parallel for schedule(static) if (s.n * s.c_out * plane >= (1 << 16))
  for (int64_t c = 0; c < s.c_out; ++c) {
    double acc = 0.0;
    for (int64_t n = 0; n < s.n; ++n) {
      const float* row = dy + (n * s.c_out + c) * plane;
      for (int64_t p = 0; p < plane; ++p) acc += row[p];
    }
    dbias[c] += static_cast<float>(acc);
  }
}

}  // namespace ipg::kernels::cpu
