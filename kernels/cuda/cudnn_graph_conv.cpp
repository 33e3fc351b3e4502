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
#include <map>
#include <memory>
#include <mutex>
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

  // Errors name the attribute by its number in cudnn_graph_v9.h (cuDNN has no names).
  Desc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
            const void* values) {
    const cudnnStatus_t st = cudnnBackendSetAttribute(d_, name, type, count, values);
    if (st != CUDNN_STATUS_SUCCESS)
      throw CudaError(std::string("cuDNN graph API: setting attribute ") +
                      std::to_string(static_cast<int>(name)) + " failed: " +
                      cudnnGetErrorString(st));
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

// How errors name the convolution.
std::string graph_what(const Conv2dShape& s) {
  return describe(ConvPass::Forward, s) + " (cuDNN graph API)";
}

// The operation graph of y = relu?(conv(x, w) + bias + r?) and every descriptor it refers
// to (kept alive with it). handle may be null: cuDNN 9 builds and checks the graph, and
// ranks engines for it, without a device (GraphConvGraphCheck's use).
struct OpGraph {
  std::vector<Desc> parts;
  Desc graph{CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR};
};

OpGraph build_graph(const Conv2dShape& s, bool residual, bool relu, cudnnHandle_t handle,
                    const std::string& what) {
  OpGraph g;
  std::vector<Desc>& descs = g.parts;
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
  g.graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
              static_cast<int64_t>(op_ptrs.size()), op_ptrs.data());
  if (handle) g.graph.set_handle(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, handle);
  const cudnnStatus_t graph_status = g.graph.try_finalize();
  if (graph_status != CUDNN_STATUS_SUCCESS)
    throw CudaError(what + ": cuDNN refuses the operation graph (" +
                    cudnnGetErrorString(graph_status) + ")");
  for (Desc& o : ops) descs.push_back(std::move(o));
  return g;
}

// The engine configurations cuDNN's heuristics rank for a graph: mode A, then the
// fallback list (which holds engines the heuristics leave out). A mode that fails adds
// nothing. *ranked: how many the heuristics said they rank; without a device cuDNN still
// says so but hands none over (graph_conv_offered_engines).
std::vector<Desc> heuristic_configs(const Desc& graph, int64_t* ranked = nullptr) {
  std::vector<Desc> configs;
  if (ranked) *ranked = 0;
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
    if (ranked) *ranked += count;
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
    for (int64_t i = 0; i < returned && i < count; ++i) configs.push_back(std::move(got[i]));
  }
  return configs;
}

// A chosen plan and the graph it was built from. Plans are cached per (device, stream's
// handle, shape, epilogue) like the legacy algorithms (cudnn_conv.h): a ResNet repeats
// each shape several times, and finalizing and timing candidates (some compiled at run
// time) is far too slow to repeat per layer.
struct ChosenPlan {
  OpGraph op_graph;
  Desc plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  size_t workspace = 0;
  std::string engine;
};

// At most this many accepted candidates are finalized and timed, in the heuristics' order.
constexpr size_t kMaxCandidates = 8;

Desc variant_pack(bool residual, const void* x, const void* w, const void* b, const void* r,
                  void* y, void* ws) {
  std::vector<int64_t> uids = {kX, kW, kBias, kY};
  std::vector<void*> ptrs = {const_cast<void*>(x), const_cast<void*>(w), const_cast<void*>(b), y};
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

// One warm-up run, then three timed; synchronizes the stream.
cudnnStatus_t time_plan(cudnnHandle_t handle, cudaStream_t stream, const Desc& plan,
                        const Desc& pack, float* ms) {
  cudnnStatus_t st = cudnnBackendExecute(handle, plan.get(), pack.get());
  if (st != CUDNN_STATUS_SUCCESS) return st;
  cudaEvent_t start = nullptr, stop = nullptr;
  IPG_CUDA_CHECK(cudaEventCreate(&start));
  IPG_CUDA_CHECK(cudaEventCreate(&stop));
  cudaEventRecord(start, stream);
  for (int i = 0; i < 3 && st == CUDNN_STATUS_SUCCESS; ++i)
    st = cudnnBackendExecute(handle, plan.get(), pack.get());
  cudaEventRecord(stop, stream);
  const cudaError_t waited = cudaEventSynchronize(stop);
  if (waited == cudaSuccess) cudaEventElapsedTime(ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  IPG_CUDA_CHECK(waited);
  return st;
}

std::shared_ptr<ChosenPlan> choose_plan(const Conv2dShape& s, bool residual, bool relu,
                                        cudnnHandle_t handle, cudaStream_t stream,
                                        const std::string& what) {
  auto chosen = std::make_shared<ChosenPlan>();
  chosen->op_graph = build_graph(s, residual, relu, handle, what);
  const std::vector<Desc> configs = heuristic_configs(chosen->op_graph.graph);

  // Accepted: FMA-only, deterministic, finalizes into a plan within the workspace cap.
  struct Candidate {
    Desc plan;
    size_t workspace;
    int64_t engine_index;
  };
  std::vector<Candidate> accepted;
  std::vector<int64_t> seen;
  for (const Desc& cfg : configs) {
    if (accepted.size() == kMaxCandidates) break;
    Desc engine_desc(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    cudnnBackendDescriptor_t e = engine_desc.get();
    int64_t n = 0;
    if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e) != CUDNN_STATUS_SUCCESS)
      continue;
    int64_t index = -1;
    cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index);
    if (std::find(seen.begin(), seen.end(), index) != seen.end()) continue;
    seen.push_back(index);
    std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
    int64_t note_count = 0;
    if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &note_count,
                                 notes.data()) != CUDNN_STATUS_SUCCESS)
      continue;
    if (std::any_of(notes.begin(), notes.begin() + note_count, refused)) continue;
    Desc p(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    p.set_handle(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, handle)
        .set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
    if (p.try_finalize() != CUDNN_STATUS_SUCCESS) continue;
    int64_t ws = 0;
    if (cudnnBackendGetAttribute(p.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                 CUDNN_TYPE_INT64, 1, &n, &ws) != CUDNN_STATUS_SUCCESS ||
        ws < 0 || static_cast<size_t>(ws) > kConvWorkspaceCap)
      continue;
    accepted.push_back({std::move(p), static_cast<size_t>(ws), index});
  }
  if (accepted.empty())
    throw CudaError(what + ": none of the " + std::to_string(configs.size()) +
                    " engine configurations cuDNN offers runs it in FP32 FMA math, "
                    "deterministically, within the workspace cap");

  // Timed on zeroed inputs (these kernels' time does not depend on the values).
  size_t max_ws = 0;
  for (const Candidate& c : accepted) max_ws = std::max(max_ws, c.workspace);
  const size_t fx = static_cast<size_t>(s.n * s.c_in * s.h * s.w) * sizeof(float);
  const size_t fw = static_cast<size_t>(s.c_out * s.c_in_group() * s.kh * s.kw) * sizeof(float);
  const size_t fy = static_cast<size_t>(s.n * s.c_out * s.h_out() * s.w_out()) * sizeof(float);
  const size_t fb = static_cast<size_t>(s.c_out) * sizeof(float);
  DeviceBuffer x(fx), w(fw), b(fb), r(residual ? fy : 0), y(fy), ws(max_ws);
  memset_async(x.p, 0, fx, stream);
  memset_async(w.p, 0, fw, stream);
  memset_async(b.p, 0, fb, stream);
  if (residual) memset_async(r.p, 0, fy, stream);
  const Desc pack = variant_pack(residual, x.p, w.p, b.p, r.p, y.p, ws.p);
  float best_ms = -1.f;
  size_t best = 0;
  std::string failures;
  for (size_t i = 0; i < accepted.size(); ++i) {
    float ms = 0.f;
    const cudnnStatus_t st = time_plan(handle, stream, accepted[i].plan, pack, &ms);
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
  if (best_ms < 0.f) throw CudaError(what + ": every accepted engine failed to run:" + failures);
  chosen->plan = std::move(accepted[best].plan);
  chosen->workspace = accepted[best].workspace;
  chosen->engine = "graph engine " + std::to_string(accepted[best].engine_index) +
                   " (fastest of " + std::to_string(accepted.size()) + " accepted, " +
                   std::to_string(configs.size()) + " offered)";
  return chosen;
}

// The plan of (device, handle, shape, epilogue), chosen on first use and kept for the
// process. The lock is held while one is chosen, so concurrent first uses wait rather
// than time the same shape twice. A shape no engine accepts is not cached: it throws
// every time (callers build it once per network).
std::shared_ptr<const ChosenPlan> cached_plan(const Conv2dShape& s, bool residual, bool relu,
                                              cudnnHandle_t handle, cudaStream_t stream,
                                              const std::string& what) {
  static std::mutex mu;
  using Key = std::array<int64_t, Conv2dShape::kKeySize + 4>;
  static std::map<Key, std::shared_ptr<const ChosenPlan>> plans;
  int device = 0;
  IPG_CUDA_CHECK(cudaGetDevice(&device));
  Key key{};
  const auto geometry = s.key();
  std::copy(geometry.begin(), geometry.end(), key.begin());
  key[Conv2dShape::kKeySize] = residual;
  key[Conv2dShape::kKeySize + 1] = relu;
  key[Conv2dShape::kKeySize + 2] = device;
  key[Conv2dShape::kKeySize + 3] = static_cast<int64_t>(reinterpret_cast<uintptr_t>(handle));
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans.find(key);
  if (it == plans.end())
    it = plans.emplace(key, choose_plan(s, residual, relu, handle, stream, what)).first;
  return it->second;
}

}  // namespace

struct GraphConvForward::Impl {
  Conv2dShape s;
  bool residual = false;
  cudnnHandle_t handle = nullptr;
  std::shared_ptr<const ChosenPlan> chosen;
  // The variant pack of the last pointers forward() saw.
  mutable Desc pack{CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR};
  mutable std::array<const void*, 6> pack_ptrs{};
  mutable bool pack_ready = false;

  Impl(const Conv2dShape& shape, bool with_residual, bool relu, cudaStream_t stream)
      : s(shape), residual(with_residual) {
    const std::string what = graph_what(s);
    if (!s.uniform())
      throw std::invalid_argument(what + ": a fused convolution needs one stride and one padding");
    handle = cudnn_handle(stream);
    chosen = cached_plan(s, residual, relu, handle, stream, what);
  }
};

int graph_conv_offered_engines(const Conv2dShape& s, bool residual, bool relu) {
  const std::string what = graph_what(s);
  const OpGraph g = build_graph(s, residual, relu, nullptr, what);
  int64_t ranked = 0;
  heuristic_configs(g.graph, &ranked);
  return static_cast<int>(ranked);
}

GraphConvForward::GraphConvForward(const Conv2dShape& s, bool residual, bool relu,
                                   cudaStream_t stream)
    : impl_(std::make_unique<Impl>(s, residual, relu, stream)) {}

GraphConvForward::~GraphConvForward() = default;

size_t GraphConvForward::workspace_bytes() const { return impl_->chosen->workspace; }

const std::string& GraphConvForward::engine() const { return impl_->chosen->engine; }

void GraphConvForward::forward(const float* x, const float* w, const float* bias,
                               const float* residual, float* y, void* workspace,
                               size_t workspace_bytes) const {
  const Impl& m = *impl_;
  // Named only on error: the call itself allocates nothing on the host.
  auto what = [&m] { return graph_what(m.s); };
  if ((residual != nullptr) != m.residual)
    throw std::invalid_argument(what() + (m.residual ? ": needs its residual"
                                                     : ": made without a residual"));
  if (workspace_bytes < m.chosen->workspace)
    throw std::invalid_argument(what() + ": workspace of " + std::to_string(workspace_bytes) +
                                " bytes, needs " + std::to_string(m.chosen->workspace));
  const std::array<const void*, 6> ptrs = {x, w, bias, residual, y, workspace};
  for (size_t i = 0; i < 5; ++i)
    if (ptrs[i] && reinterpret_cast<uintptr_t>(ptrs[i]) % kAlignment != 0)
      throw std::invalid_argument(what() + ": a tensor is not " + std::to_string(kAlignment) +
                                  "-byte aligned, as its plan was built for");
  if (!m.pack_ready || ptrs != m.pack_ptrs) {
    m.pack = variant_pack(m.residual, x, w, bias, residual, y, workspace);
    m.pack_ptrs = ptrs;
    m.pack_ready = true;
  }
  IPG_CUDNN_CHECK(cudnnBackendExecute(m.handle, m.chosen->plan.get(), m.pack.get()));
}

}  // namespace ipg::kernels::cuda
