// Convolutions on cuDNN, plus the two bias kernels (bias add and bias gradient).
//
// cuDNN 9 marks its legacy convolution API (descriptors, Find/Get algorithm queries,
// cudnnConvolution*) deprecated in favour of the graph API. This file is its only user,
// so the deprecation warning is silenced here and nowhere else; moving to the graph API
// (which also fuses conv+bias+ReLU) changes this file only.
//
// Precision: every convolution descriptor is set to CUDNN_FMA_MATH and only algorithms
// that report FMA math are accepted. TF32 (cuDNN's default on Ampere and later) has
// ~1e-3 relative error, enough to flip labels of fingerprints that sit at the decision
// boundary. FFT and Winograd algorithms are excluded too (see transform_domain).
//
// Algorithm: chosen once per (device, pass, shape) by timing the candidates (cudnnFind)
// and cached. Excluded: algorithms needing more than kConvWorkspaceCap of workspace, and
// non-deterministic ones (the atomic-based backward-data/backward-filter ALGO_0) whenever
// a deterministic one fits, so the same inputs give the same gradients on every run.
// (cuDNN emits the warning only when CUDNN_WARN_DEPRECATED is defined; the host compiler
// is the one that reports it.)
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#include <cudnn.h>
#include <limits.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/runtime.h"

namespace ipg::kernels::cuda {

namespace {

// ---------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------

__global__ void add_bias_kernel(float* y, const float* bias, int64_t total, int64_t c_out,
                                int64_t plane) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] += bias[(i / plane) % c_out];
}

constexpr int kBiasGradThreads = 256;

// One block per channel. Each thread sums a fixed strided slice in double, then a
// fixed-shape tree combines the slices: no atomics, so the bits do not depend on
// scheduling.
__global__ void bias_grad_kernel(const float* dy, float* dbias, int64_t n, int64_t c_out,
                                 int64_t plane) {
  __shared__ double partial[kBiasGradThreads];
  const int64_t c = blockIdx.x;
  const int64_t count = n * plane;
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kBiasGradThreads) {
    const int64_t b = i / plane;
    acc += dy[(b * c_out + c) * plane + (i - b * plane)];
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = kBiasGradThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) dbias[c] += static_cast<float>(partial[0]);
}

void launch_bias_grad(const Conv2dShape& s, const float* dy, float* dbias, cudaStream_t stream) {
  if (s.c_out == 0) return;
  bias_grad_kernel<<<static_cast<unsigned>(s.c_out), kBiasGradThreads, 0, stream>>>(
      dy, dbias, s.n, s.c_out, s.h_out() * s.w_out());
  IPG_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------
// cuDNN plumbing: RAII descriptors, one handle per stream, cached plans
// ---------------------------------------------------------------------------------------

template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class Descriptor {
 public:
  Descriptor() { IPG_CUDNN_CHECK(Create(&desc_)); }
  ~Descriptor() { Destroy(desc_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  T get() const { return desc_; }

 private:
  T desc_ = nullptr;
};

using TensorDesc =
    Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc =
    Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc = Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                            cudnnDestroyConvolutionDescriptor>;

// One handle per stream (a handle is bound to the device current at its creation, and a
// stream to one device), created on first use and kept for the process.
cudnnHandle_t handle_for(cudaStream_t stream) {
  static std::mutex mu;
  static std::unordered_map<cudaStream_t, cudnnHandle_t> handles;
  std::lock_guard<std::mutex> lock(mu);
  auto it = handles.find(stream);
  if (it != handles.end()) return it->second;
  cudnnHandle_t h = nullptr;
  IPG_CUDNN_CHECK(cudnnCreate(&h));
  IPG_CUDNN_CHECK(cudnnSetStream(h, stream));
  handles.emplace(stream, h);
  return h;
}

using Pass = ConvPass;

struct Plan {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  int algo = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t, by pass
  size_t workspace_bytes = 0;
};

// Transform-domain algorithms (FFT, Winograd) report FMA math but round in the transform:
// on the H200 the FFT backward passes of a 5x5 single-channel layer were 1e-2 off in
// relative terms (first GPU check, bench/results/2026-11-28_1902_nvidia-h200). Input
// gradients are the product here, so only direct/GEMM-style algorithms are accepted.
bool transform_domain(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool transform_domain(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool transform_domain(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// The first usable result; Find and the heuristic both rank the best first.
template <typename Perf>
int first_usable(const std::vector<Perf>& perf, int count) {
  for (const bool need_deterministic : {true, false})
    for (int i = 0; i < count; ++i) {
      const Perf& p = perf[i];
      if (p.status == CUDNN_STATUS_SUCCESS && p.memory <= kConvWorkspaceCap &&
          p.mathType == CUDNN_FMA_MATH && !transform_domain(p.algo) &&
          (!need_deterministic || p.determinism == CUDNN_DETERMINISTIC))
        return static_cast<int>(p.algo);
    }
  return -1;
}

// Timing (Find) picks the fastest. Find allocates its own scratch buffers, so when memory
// is short it can fail; the heuristic ranking (no allocation, no timing) is the fallback.
template <typename Perf, typename Find, typename Heuristic>
int choose_algo(int max_algos, Find find, Heuristic heuristic, const std::string& what) {
  std::vector<Perf> perf(max_algos);
  int count = 0;
  if (find(max_algos, &count, perf.data()) == CUDNN_STATUS_SUCCESS) {
    const int algo = first_usable(perf, count);
    if (algo >= 0) return algo;
  }
  IPG_CUDNN_CHECK(heuristic(max_algos, &count, perf.data()));
  const int algo = first_usable(perf, count);
  if (algo < 0)
    throw CudaError(what + ": cuDNN offers no FP32 (FMA) algorithm within a " +
                    std::to_string(kConvWorkspaceCap >> 20) + " MiB workspace");
  return algo;
}

int to_int(int64_t v, const std::string& what) {
  if (v > INT_MAX) throw CudaError(what + ": a dimension exceeds cuDNN's int range");
  return static_cast<int>(v);
}

std::unique_ptr<Plan> make_plan(Pass pass, const Conv2dShape& s, cudnnHandle_t h) {
  const std::string what = describe(pass, s);
  auto p = std::make_unique<Plan>();
  IPG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                             to_int(s.n, what), to_int(s.c_in, what),
                                             to_int(s.h, what), to_int(s.w, what)));
  IPG_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w.get(), CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                             to_int(s.c_out, what), to_int(s.c_in, what),
                                             to_int(s.kh, what), to_int(s.kw, what)));
  IPG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                             to_int(s.n, what), to_int(s.c_out, what),
                                             to_int(s.h_out(), what), to_int(s.w_out(), what)));
  const int pad = to_int(s.padding, what), stride = to_int(s.stride, what);
  IPG_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv.get(), pad, pad, stride, stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  IPG_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv.get(), CUDNN_FMA_MATH));

  const auto x = p->x.get(), y = p->y.get();
  const auto w = p->w.get();
  const auto conv = p->conv.get();
  if (pass == Pass::Forward) {
    p->algo = choose_algo<cudnnConvolutionFwdAlgoPerf_t>(
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
        [&](int max, int* count, cudnnConvolutionFwdAlgoPerf_t* perf) {
          return cudnnFindConvolutionForwardAlgorithm(h, x, w, conv, y, max, count, perf);
        },
        [&](int max, int* count, cudnnConvolutionFwdAlgoPerf_t* perf) {
          return cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, conv, y, max, count, perf);
        },
        what);
    IPG_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
        h, x, w, conv, y, static_cast<cudnnConvolutionFwdAlgo_t>(p->algo), &p->workspace_bytes));
  } else if (pass == Pass::BackwardData) {
    p->algo = choose_algo<cudnnConvolutionBwdDataAlgoPerf_t>(
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        [&](int max, int* count, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
          return cudnnFindConvolutionBackwardDataAlgorithm(h, w, y, conv, x, max, count, perf);
        },
        [&](int max, int* count, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
          return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w, y, conv, x, max, count, perf);
        },
        what);
    IPG_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        h, w, y, conv, x, static_cast<cudnnConvolutionBwdDataAlgo_t>(p->algo),
        &p->workspace_bytes));
  } else {
    p->algo = choose_algo<cudnnConvolutionBwdFilterAlgoPerf_t>(
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        [&](int max, int* count, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
          return cudnnFindConvolutionBackwardFilterAlgorithm(h, x, y, conv, w, max, count, perf);
        },
        [&](int max, int* count, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
          return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, y, conv, w, max, count, perf);
        },
        what);
    IPG_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, x, y, conv, w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(p->algo),
        &p->workspace_bytes));
  }
  return p;
}

// Plans live for the process; the map never erases, so returned references stay valid.
// The lock is held while a new plan is timed: concurrent first calls wait instead of
// timing the same shape twice on a busy device.
const Plan& plan_for(Pass pass, const Conv2dShape& s, cudaStream_t stream) {
  static std::mutex mu;
  static std::map<std::array<int64_t, 11>, std::unique_ptr<Plan>> plans;
  int device = 0;
  IPG_CUDA_CHECK(cudaGetDevice(&device));
  std::array<int64_t, 11> key{};
  const auto geometry = s.key();
  std::copy(geometry.begin(), geometry.end(), key.begin());
  key[9] = static_cast<int64_t>(pass);
  key[10] = device;
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_plan(pass, s, handle_for(stream))).first;
  return *it->second;
}

void check_workspace(const Plan& plan, Pass pass, const Conv2dShape& s, size_t bytes) {
  if (bytes < plan.workspace_bytes)
    throw std::invalid_argument(describe(pass, s) + ": workspace of " + std::to_string(bytes) +
                                " bytes, needs " + std::to_string(plan.workspace_bytes));
}

const float kOne = 1.f, kZero = 0.f;

}  // namespace

// ---------------------------------------------------------------------------------------
// Launchers
// ---------------------------------------------------------------------------------------

size_t conv2d_forward_workspace(const Conv2dShape& s, bool /*with_bias*/, cudaStream_t stream) {
  return plan_for(Pass::Forward, s, stream).workspace_bytes;
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, const float* bias,
                    float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const Plan& p = plan_for(Pass::Forward, s, stream);
  check_workspace(p, Pass::Forward, s, workspace_bytes);
  IPG_CUDNN_CHECK(cudnnConvolutionForward(handle_for(stream), &kOne, p.x.get(), x, p.w.get(),
                                          weight, p.conv.get(),
                                          static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), workspace,
                                          workspace_bytes, &kZero, p.y.get(), y));
  if (bias) {
    const int64_t plane = s.h_out() * s.w_out(), total = s.n * s.c_out * plane;
    add_bias_kernel<<<blocks_for(total), kThreads, 0, stream>>>(y, bias, total, s.c_out, plane);
    IPG_CUDA_CHECK_LAUNCH();
  }
}

size_t conv2d_backward_data_workspace(const Conv2dShape& s, cudaStream_t stream) {
  return plan_for(Pass::BackwardData, s, stream).workspace_bytes;
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, float* dx,
                          void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const Plan& p = plan_for(Pass::BackwardData, s, stream);
  check_workspace(p, Pass::BackwardData, s, workspace_bytes);
  // beta = 1: accumulate into dx, as every backward kernel does.
  IPG_CUDNN_CHECK(cudnnConvolutionBackwardData(handle_for(stream), &kOne, p.w.get(), weight,
                                               p.y.get(), dy, p.conv.get(),
                                               static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo),
                                               workspace, workspace_bytes, &kOne, p.x.get(), dx));
}

size_t conv2d_backward_weights_workspace(const Conv2dShape& s, bool /*with_bias*/,
                                         cudaStream_t stream) {
  return plan_for(Pass::BackwardWeights, s, stream).workspace_bytes;
}

void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dweight,
                             float* dbias, void* workspace, size_t workspace_bytes,
                             cudaStream_t stream) {
  const Plan& p = plan_for(Pass::BackwardWeights, s, stream);
  check_workspace(p, Pass::BackwardWeights, s, workspace_bytes);
  IPG_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      handle_for(stream), &kOne, p.x.get(), x, p.y.get(), dy, p.conv.get(),
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo), workspace, workspace_bytes, &kOne,
      p.w.get(), dweight));
  if (dbias) launch_bias_grad(s, dy, dbias, stream);
}

void conv2d_backward_bias(const Conv2dShape& s, const float* dy, float* dbias,
                          cudaStream_t stream) {
  launch_bias_grad(s, dy, dbias, stream);
}

}  // namespace ipg::kernels::cuda
