// cuDNN handles and convolution plans (cudnn_conv.h). Host code only.
//
// cuDNN 9 marks its legacy convolution API (descriptors, Find/Get algorithm queries,
// cudnnConvolution*) deprecated in favour of the graph API. This file, conv2d.cu and
// fused_conv.cpp are its only users, so the deprecation warning is silenced there and
// nowhere else. (cuDNN emits it only when CUDNN_WARN_DEPRECATED is defined.)
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

#include "kernels/cuda/cudnn_conv.h"

#include <limits.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"

namespace ipg::kernels::cuda {

namespace {

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

// cuDNN limits a tensor to 2^31 - 1 elements ("2 Giga-elements"), whatever its
// dimensions: 10,000 rows of a 256-channel 32 x 32 map are 2.6e9. Said here, with the
// numbers, rather than as cuDNN's bare BAD_PARAM or NOT_SUPPORTED.
void check_elements(int64_t n, int64_t c, int64_t h, int64_t w, const char* tensor,
                    const std::string& what) {
  const int64_t count = n * c * h * w;
  if (count > INT_MAX)
    throw CudaError(what + ": its " + tensor + " has " + std::to_string(count) +
                    " elements, more than cuDNN's limit of 2^31 - 1 per tensor (use a smaller "
                    "batch)");
}

std::unique_ptr<ConvPlan> make_plan(ConvPass pass, const Conv2dShape& s, cudnnHandle_t h) {
  using Pass = ConvPass;
  const std::string what = describe(pass, s);
  check_elements(s.n, s.c_in, s.h, s.w, "input", what);
  check_elements(s.n, s.c_out, s.h_out(), s.w_out(), "output", what);
  auto p = std::make_unique<ConvPlan>();
  IPG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                             to_int(s.n, what), to_int(s.c_in, what),
                                             to_int(s.h, what), to_int(s.w, what)));
  IPG_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w.get(), CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                             to_int(s.c_out, what), to_int(s.c_in_group(), what),
                                             to_int(s.kh, what), to_int(s.kw, what)));
  IPG_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y.get(), CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                             to_int(s.n, what), to_int(s.c_out, what),
                                             to_int(s.h_out(), what), to_int(s.w_out(), what)));
  IPG_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
      p->conv.get(), to_int(s.ph(), what), to_int(s.pw(), what), to_int(s.sh(), what),
      to_int(s.sw(), what), to_int(s.dilation_h, what), to_int(s.dilation_w, what),
      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // Grouped (depthwise: groups == c_in): the filter above holds c_in / groups channels.
  IPG_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv.get(), to_int(s.groups, what)));
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

}  // namespace

// One handle per stream (a handle is bound to the device current at its creation, and a
// stream to one device).
cudnnHandle_t cudnn_handle(cudaStream_t stream) {
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

// Plans live for the process; the map never erases, so returned references stay valid.
// The lock is held while a new plan is timed: concurrent first calls wait instead of
// timing the same shape twice on a busy device.
const ConvPlan& conv_plan(ConvPass pass, const Conv2dShape& s, cudaStream_t stream) {
  static std::mutex mu;
  constexpr size_t kGeometry = Conv2dShape::kKeySize;
  static std::map<std::array<int64_t, kGeometry + 2>, std::unique_ptr<ConvPlan>> plans;
  int device = 0;
  IPG_CUDA_CHECK(cudaGetDevice(&device));
  std::array<int64_t, kGeometry + 2> key{};
  const auto geometry = s.key();
  std::copy(geometry.begin(), geometry.end(), key.begin());
  key[kGeometry] = static_cast<int64_t>(pass);
  key[kGeometry + 1] = device;
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_plan(pass, s, cudnn_handle(stream))).first;
  return *it->second;
}

}  // namespace ipg::kernels::cuda
