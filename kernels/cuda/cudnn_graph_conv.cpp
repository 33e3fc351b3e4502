// A fused convolution's forward through cuDNN's backend (graph) API
// (cudnn_graph_conv.h). Host code only: the work is cuDNN's.
//
// The backend API is a set of opaque descriptors whose attributes are set one by one and
// then finalized; Desc below owns one and names its calls. The graph is
//   x, w --conv--> v1 --add bias--> v2 [--add r--> v3] [--relu--> y]
// with the intermediate tensors virtual (never in memory), the last one y.
#if defined(__GNUC__)
// CUDNN_ATTR_OPERATIONGRAPH_HANDLE and CUDNN_ATTR_EXECUTION_PLAN_HANDLE are marked
// deprecated in cuDNN 9.x, but engines of this release still read them (cudnn-frontend
// sets both), so they are set and the warning silenced here.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#include "kernels/cuda/cudnn_graph_conv.h"

#include <cudnn.h>
#include <stdint.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"  // kConvWorkspaceCap
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

// One backend descriptor, destroyed with its owner.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type) {
    IPG_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_));
  }
  ~Desc() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  Desc(Desc&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
  Desc& operator=(Desc&& o) noexcept {
    std::swap(d_, o.d_);
    return *this;
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return d_; }

  Desc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
            const void* values) {
    IPG_CUDNN_CHECK(cudnnBackendSetAttribute(d_, name, type, count, values));
    return *this;
  }
  Desc& set_i64(cudnnBackendAttributeName_t name, std::vector<int64_t> v) {
    return set(name, CUDNN_TYPE_INT64, static_cast<int64_t>(v.size()), v.data());
  }
  Desc& set_desc(cudnnBackendAttributeName_t name, const Desc& other) {
    cudnnBackendDescriptor_t o = other.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &o);
  }
  Desc& set_float_type(cudnnBackendAttributeName_t name) {
    const cudnnDataType_t t = CUDNN_DATA_FLOAT;
    return set(name, CUDNN_TYPE_DATA_TYPE, 1, &t);
  }
  Desc& set_handle(cudnnBackendAttributeName_t name, cudnnHandle_t h) {
    return set(name, CUDNN_TYPE_HANDLE, 1, &h);
  }
  Desc& finalize() {
    IPG_CUDNN_CHECK(cudnnBackendFinalize(d_));
    return *this;
  }
  // Finalize without throwing: cuDNN's status (an engine may refuse a configuration).
  cudnnStatus_t try_finalize() { return cudnnBackendFinalize(d_); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

enum Uid : int64_t { kX = 1, kW, kBias, kResidual, kY, kVirtual = 100 };
constexpr int64_t kAlignment = 16;

// A dense NCHW float tensor (virtual: an intermediate cuDNN may keep out of memory).
Desc tensor(int64_t uid, const std::array<int64_t, 4>& dims, bool is_virtual) {
  const std::vector<int64_t> d(dims.begin(), dims.end());
  const std::vector<int64_t> strides = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  const bool v = is_virtual;
  Desc t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.set_float_type(CUDNN_ATTR_TENSOR_DATA_TYPE)
      .set_i64(CUDNN_ATTR_TENSOR_DIMENSIONS, d)
      .set_i64(CUDNN_ATTR_TENSOR_STRIDES, strides)
      .set_i64(CUDNN_ATTR_TENSOR_UNIQUE_ID, {uid})
      .set_i64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, {kAlignment})
      .set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v)
      .finalize();
  return t;
}

// y = a <mode> b (b null: unary), float math.
Desc pointwise(cudnnPointwiseMode_t mode, const Desc& a, const Desc* b, const Desc& y,
               std::vector<Desc>* keep) {
  Desc pw(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode)
      .set_float_type(CUDNN_ATTR_POINTWISE_MATH_PREC)
      .finalize();
  Desc op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw)
      .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, a)
      .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
  if (b) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
  op.finalize();
  keep->push_back(std::move(pw));
  return op;
}

// The numerical notes that break the legacy path's rules (cudnn_conv.h).
bool refused(cudnnBackendNumericalNote_t note) {
  switch (note) {
    case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
    case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
    case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
    case CUDNN_NUMERICAL_NOTE_FFT:
    case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
    case CUDNN_NUMERICAL_NOTE_WINOGRAD:
    case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
    case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
    case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13:
      return true;
    default:
      return false;
  }
}

// Device memory for timing the candidates, freed on every path out.
struct Scratch {
  void* p = nullptr;
  explicit Scratch(size_t bytes) : p(bytes ? device_malloc(bytes) : nullptr) {}
  ~Scratch() { device_free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

}  // namespace

struct GraphConvForward::Impl {
  Conv2dShape s;
  bool residual = false;
  cudnnHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  std::vector<Desc> descs;  // what the plan was built from, kept alive with it
  Desc plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  size_t workspace = 0;
  std::string engine;
  // The variant pack of the last pointers forward() saw.
  mutable Desc pack{CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR};
  mutable std::array<const void*, 6> pack_ptrs{};
  mutable bool pack_ready = false;

  Impl(const Conv2dShape& shape, bool with_residual, bool relu, cudaStream_t st)
      : s(shape), residual(with_residual), stream(st) {
    const std::string what = describe(ConvPass::Forward, s) + " (cuDNN graph API)";
    if (!s.uniform())
      throw std::invalid_argument(what + ": a fused convolution needs one stride and one padding");
    handle = cudnn_handle(stream);
    const std::array<int64_t, 4> xd = {s.n, s.c_in, s.h, s.w};
    const std::array<int64_t, 4> wd = {s.c_out, s.c_in_group(), s.kh, s.kw};
    const std::array<int64_t, 4> yd = {s.n, s.c_out, s.h_out(), s.w_out()};
    const std::array<int64_t, 4> bd = {1, s.c_out, 1, 1};

    // Which intermediates are virtual: everything before the last op's output.
    const int ops_after_conv = 1 + (residual ? 1 : 0) + (relu ? 1 : 0);
    descs.push_back(tensor(kX, xd, false));
    descs.push_back(tensor(kW, wd, false));
    descs.push_back(tensor(kBias, bd, false));
    const size_t x_i = 0, w_i = 1, b_i = 2;
    size_t r_i = 0;
    if (residual) {
      descs.push_back(tensor(kResidual, yd, false));
      r_i = descs.size() - 1;
    }
    std::vector<size_t> outs;  // conv output, then each pointwise output
    for (int i = 0; i < ops_after_conv; ++i) {
      descs.push_back(tensor(kVirtual + i, yd, true));
      outs.push_back(descs.size() - 1);
    }
    descs.push_back(tensor(kY, yd, false));
    outs.push_back(descs.size() - 1);

    Desc conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    conv.set_float_type(CUDNN_ATTR_CONVOLUTION_COMP_TYPE)
        .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)
        .set_i64(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, {2})
        .set_i64(CUDNN_ATTR_CONVOLUTION_DILATIONS, {s.dilation_h, s.dilation_w})
        .set_i64(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {s.sh(), s.sw()})
        .set_i64(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {s.ph(), s.pw()})
        .set_i64(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, {s.ph(), s.pw()})
        .finalize();
    const float one = 1.f, zero = 0.f;
    Desc conv_op(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    conv_op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, descs[x_i])
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, descs[w_i])
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, descs[outs[0]])
        .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &one)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &zero)
        .finalize();
    // The pointwise descriptors go to `aux`, not `descs`: a push_back there would move
    // the tensors the next op refers to.
    std::vector<Desc> ops, aux;
    ops.push_back(std::move(conv_op));
    size_t step = 0;
    ops.push_back(pointwise(CUDNN_POINTWISE_ADD, descs[outs[step]], &descs[b_i],
                            descs[outs[step + 1]], &aux));
    ++step;
    if (residual) {
      ops.push_back(pointwise(CUDNN_POINTWISE_ADD, descs[outs[step]], &descs[r_i],
                              descs[outs[step + 1]], &aux));
      ++step;
    }
    if (relu) {
      ops.push_back(pointwise(CUDNN_POINTWISE_RELU_FWD, descs[outs[step]], nullptr,
                              descs[outs[step + 1]], &aux));
      ++step;
    }
    for (Desc& a : aux) descs.push_back(std::move(a));
    descs.push_back(std::move(conv));

    std::vector<cudnnBackendDescriptor_t> op_ptrs;
    for (const Desc& o : ops) op_ptrs.push_back(o.get());
    Desc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
              static_cast<int64_t>(op_ptrs.size()), op_ptrs.data())
        .set_handle(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, handle);
    const cudnnStatus_t graph_status = graph.try_finalize();
    if (graph_status != CUDNN_STATUS_SUCCESS)
      throw CudaError(what + ": cuDNN refuses the operation graph (" +
                      cudnnGetErrorString(graph_status) + ")");
    for (Desc& o : ops) descs.push_back(std::move(o));

    // Candidates: heuristic mode A, then the fallback list (which holds the engines the
    // heuristics leave out); duplicates are timed once.
    std::vector<Desc> configs;
    int offered = 0;
    for (const cudnnBackendHeurMode_t heur_mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
      heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
          .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &heur_mode);
      if (heur.try_finalize() != CUDNN_STATUS_SUCCESS) continue;
      int64_t count = 0;
      if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr) !=
              CUDNN_STATUS_SUCCESS ||
          count <= 0)
        continue;
      std::vector<Desc> got;
      std::vector<cudnnBackendDescriptor_t> raw;
      for (int64_t i = 0; i < count; ++i) {
        got.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
        raw.push_back(got.back().get());
      }
      int64_t returned = 0;
      if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned,
                                   raw.data()) != CUDNN_STATUS_SUCCESS)
        continue;
      offered += static_cast<int>(returned);
      for (int64_t i = 0; i < returned; ++i) configs.push_back(std::move(got[i]));
    }

    // Accepted: FMA-only, deterministic, finalizes into a plan within the workspace cap.
    struct Candidate {
      Desc plan;
      size_t workspace;
      int64_t engine_index;
    };
    std::vector<Candidate> accepted;
    std::vector<int64_t> seen;
    for (const Desc& cfg : configs) {
      Desc engine_desc(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      cudnnBackendDescriptor_t e = engine_desc.get();
      int64_t n = 0;
      if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e) !=
          CUDNN_STATUS_SUCCESS)
        continue;
      int64_t index = -1;
      cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index);
      if (std::find(seen.begin(), seen.end(), index) != seen.end()) continue;
      seen.push_back(index);
      std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
      int64_t note_count = 0;
      if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                   CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                                   &note_count, notes.data()) != CUDNN_STATUS_SUCCESS)
        continue;
      if (std::any_of(notes.begin(), notes.begin() + note_count, refused)) continue;
      Desc p(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      p.set_handle(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, handle)
          .set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
      if (p.try_finalize() != CUDNN_STATUS_SUCCESS) continue;
      int64_t ws = 0;
      IPG_CUDNN_CHECK(cudnnBackendGetAttribute(p.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                               CUDNN_TYPE_INT64, 1, &n, &ws));
      if (ws < 0 || static_cast<size_t>(ws) > kConvWorkspaceCap) continue;
      accepted.push_back({std::move(p), static_cast<size_t>(ws), index});
    }
    if (accepted.empty())
      throw CudaError(what + ": none of the " + std::to_string(offered) +
                      " engines cuDNN offers runs it in FP32 FMA math, deterministically, "
                      "within the workspace cap");

    // Timed once each on zeroed inputs (the time of these kernels does not depend on the
    // values), the fastest kept.
    size_t max_ws = 0;
    for (const Candidate& c : accepted) max_ws = std::max(max_ws, c.workspace);
    const size_t fx = static_cast<size_t>(s.n * s.c_in * s.h * s.w) * sizeof(float);
    const size_t fw = static_cast<size_t>(s.c_out * s.c_in_group() * s.kh * s.kw) * sizeof(float);
    const size_t fy = static_cast<size_t>(s.n * s.c_out * s.h_out() * s.w_out()) * sizeof(float);
    const size_t fb = static_cast<size_t>(s.c_out) * sizeof(float);
    Scratch x(fx), w(fw), b(fb), r(residual ? fy : 0), y(fy), ws(max_ws);
    memset_async(x.p, 0, fx, stream);
    memset_async(w.p, 0, fw, stream);
    memset_async(b.p, 0, fb, stream);
    if (residual) memset_async(r.p, 0, fy, stream);
    cudaEvent_t start = nullptr, stop = nullptr;
    IPG_CUDA_CHECK(cudaEventCreate(&start));
    IPG_CUDA_CHECK(cudaEventCreate(&stop));
    float best_ms = -1.f;
    size_t best = 0;
    std::string failures;
    for (size_t i = 0; i < accepted.size(); ++i) {
      float ms = 0.f;
      const cudnnStatus_t st = time_plan(accepted[i].plan, x.p, w.p, b.p, r.p, y.p, ws.p, start,
                                         stop, &ms);
      if (st != CUDNN_STATUS_SUCCESS) {
        failures += " engine " + std::to_string(accepted[i].engine_index) + ": " +
                    cudnnGetErrorString(st) + ";";
        continue;
      }
      if (best_ms < 0.f || ms < best_ms) {
        best_ms = ms;
        best = i;
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (best_ms < 0.f)
      throw CudaError(what + ": every accepted engine failed to run:" + failures);
    plan = std::move(accepted[best].plan);
    workspace = accepted[best].workspace;
    engine = "graph engine " + std::to_string(accepted[best].engine_index) + " (fastest of " +
             std::to_string(accepted.size()) + " accepted, " + std::to_string(offered) +
             " offered)";
  }

  // One warm-up run, then the mean of three; synchronizes the stream.
  cudnnStatus_t time_plan(const Desc& p, void* x, void* w, void* b, void* r, void* y, void* ws,
                          cudaEvent_t start, cudaEvent_t stop, float* ms) const {
    Desc vp = variant_pack(x, w, b, r, y, ws);
    cudnnStatus_t st = cudnnBackendExecute(handle, p.get(), vp.get());
    if (st != CUDNN_STATUS_SUCCESS) return st;
    IPG_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < 3 && st == CUDNN_STATUS_SUCCESS; ++i)
      st = cudnnBackendExecute(handle, p.get(), vp.get());
    IPG_CUDA_CHECK(cudaEventRecord(stop, stream));
    IPG_CUDA_CHECK(cudaEventSynchronize(stop));
    IPG_CUDA_CHECK(cudaEventElapsedTime(ms, start, stop));
    return st;
  }

  Desc variant_pack(const void* x, const void* w, const void* b, const void* r, void* y,
                    void* ws) const {
    std::vector<int64_t> uids = {kX, kW, kBias, kY};
    std::vector<void*> ptrs = {const_cast<void*>(x), const_cast<void*>(w), const_cast<void*>(b),
                               y};
    if (residual) {
      uids.push_back(kResidual);
      ptrs.push_back(const_cast<void*>(r));
    }
    Desc vp(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    vp.set_i64(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, uids)
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
             static_cast<int64_t>(ptrs.size()), ptrs.data())
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws)
        .finalize();
    return vp;
  }
};

GraphConvForward::GraphConvForward(const Conv2dShape& s, bool residual, bool relu,
                                   cudaStream_t stream)
    : impl_(std::make_unique<Impl>(s, residual, relu, stream)) {}

GraphConvForward::~GraphConvForward() = default;

size_t GraphConvForward::workspace_bytes() const { return impl_->workspace; }

const std::string& GraphConvForward::engine() const { return impl_->engine; }

void GraphConvForward::forward(const float* x, const float* w, const float* bias,
                               const float* residual, float* y, void* workspace,
                               size_t workspace_bytes) const {
  const Impl& m = *impl_;
  const std::string what = describe(ConvPass::Forward, m.s) + " (cuDNN graph API)";
  if ((residual != nullptr) != m.residual)
    throw std::invalid_argument(what + (m.residual ? ": needs its residual"
                                                   : ": made without a residual"));
  if (workspace_bytes < m.workspace)
    throw std::invalid_argument(what + ": workspace of " + std::to_string(workspace_bytes) +
                                " bytes, needs " + std::to_string(m.workspace));
  const std::array<const void*, 6> ptrs = {x, w, bias, residual, y, workspace};
  for (size_t i = 0; i < 5; ++i)
    if (ptrs[i] && reinterpret_cast<uintptr_t>(ptrs[i]) % kAlignment != 0)
      throw std::invalid_argument(what + ": a tensor is not " + std::to_string(kAlignment) +
                                  "-byte aligned, as its plan was built for");
  if (!m.pack_ready || ptrs != m.pack_ptrs) {
    m.pack = m.variant_pack(x, w, bias, residual, y, workspace);
    m.pack_ptrs = ptrs;
    m.pack_ready = true;
  }
  IPG_CUDNN_CHECK(cudnnBackendExecute(m.handle, m.plan.get(), m.pack.get()));
}

}  // namespace ipg::kernels::cuda
