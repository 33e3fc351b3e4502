// The benchmark harness: flags, per-device registration, timing, counters and the
// roofline context (see common.h).
#include "bench/common.h"

#include <benchmark/benchmark.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <vector>

#include "bench/roofline.h"
#include "engine/ops/index.h"
#if IPG_HAS_CUDA
#include <cudnn.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cublas_library.h"
#include "kernels/cuda/runtime.h"
#endif

namespace ipg::bench {

namespace {

struct Flags {
  unsigned devices = kAllDevices;
  bool quick = false;
  bool labels = false;
  bool listing = false;  // --benchmark_list_tests: names only, no need for the rooflines
};
Flags g_flags;

// Function-local so that registration from other files' static initializers is safe.
std::vector<CaseList>& case_lists() {
  static std::vector<CaseList> lists;
  return lists;
}

std::map<std::string, Roofline>& rooflines() {
  static std::map<std::string, Roofline> r;
  return r;
}

bool device_usable(Device d) {
  if (d.is_cpu()) return (g_flags.devices & kCpu) != 0;
  return (g_flags.devices & kCuda) != 0 && cuda_available();
}

#if IPG_HAS_CUDA
// One pair of events per device, created on first use and kept for the process.
std::pair<cudaEvent_t, cudaEvent_t> events_for(int index) {
  static std::map<int, std::pair<cudaEvent_t, cudaEvent_t>> events;
  auto it = events.find(index);
  if (it != events.end()) return it->second;
  kernels::cuda::set_device(index);
  std::pair<cudaEvent_t, cudaEvent_t> e;
  IPG_CUDA_CHECK(cudaEventCreate(&e.first));
  IPG_CUDA_CHECK(cudaEventCreate(&e.second));
  events.emplace(index, e);
  return e;
}
#endif

void run_case(benchmark::State& st, Device dev, const Setup& setup) {
  try {
    Prepared p = setup(dev);
    // First-use costs (oneDNN JIT, cuBLAS handles, cuDNN algorithm search, allocator
    // growth) are one-off; the numbers are for the steady state the loops run in.
    const int warmups = quick() ? 1 : 3;
    for (int i = 0; i < warmups; ++i) p.run();
    synchronize(dev);
    // The time the loop took, kept here too: the roofline fraction needs it, and Google
    // Benchmark shows a counter divided by time with a misleading "/s".
    double seconds = 0;
    if (dev.is_cuda()) {
      for (auto _ : st) {
        const double t = timed_run(dev, p.run);
        st.SetIterationTime(t);
        seconds += t;
      }
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      for (auto _ : st) p.run();
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    using C = benchmark::Counter;
    const Work& w = p.work;
    if (w.flops > 0) st.counters["FLOP/s"] = C(w.flops, C::kIsIterationInvariantRate, C::kIs1000);
    if (w.bytes > 0) st.SetBytesProcessed(static_cast<int64_t>(w.bytes * st.iterations()));
    if (w.images > 0) st.counters["images/s"] = C(w.images, C::kIsIterationInvariantRate);
    const Roofline& r = roofline(dev);
    if (r.flops_per_s > 0 && r.bytes_per_s > 0) {
      const double bound = std::max(w.flops / r.flops_per_s, w.bytes / r.bytes_per_s);
      if (seconds > 0) st.counters["roofline"] = bound * double(st.iterations()) / seconds;
    }
    if (!p.label.empty()) st.SetLabel(p.label);
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
  }
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string key(Device d) { return d.is_cpu() ? "cpu" : "cuda"; }

// Measures and records the ceilings of one device, and puts them into the JSON context.
void measure_roofline(Device d) {
  Roofline r = d.is_cpu() ? measure_cpu_roofline(quick()) : measure_cuda_roofline(d, quick());
  std::fprintf(stderr, "roofline %s: %.1f GFLOP/s (%s), %.1f GB/s (%s)\n", d.str().c_str(),
               r.flops_per_s * 1e-9, r.flops_source.c_str(), r.bytes_per_s * 1e-9,
               r.bytes_source.c_str());
  const std::string k = "roofline_" + key(d);
  benchmark::AddCustomContext(k + "_flops_per_s", sci(r.flops_per_s));
  benchmark::AddCustomContext(k + "_flops_source", r.flops_source);
  benchmark::AddCustomContext(k + "_bytes_per_s", sci(r.bytes_per_s));
  benchmark::AddCustomContext(k + "_bytes_source", r.bytes_source);
  rooflines()[key(d)] = r;
}

// Library and device versions, so a JSON file says what produced it.
void add_build_context() {
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) +
                                            "." + std::to_string(v->patch));
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("ipg_quick", quick() ? "true" : "false");
  benchmark::AddCustomContext("cuda_built", cuda_built() ? "true" : "false");
  if (!cuda_available()) {
    benchmark::AddCustomContext("cuda", "unavailable: " + cuda_unavailable_reason());
    return;
  }
#if IPG_HAS_CUDA
  cudaDeviceProp prop{};
  IPG_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  int driver = 0, runtime = 0, cublas_major = 0, cublas_minor = 0, cublas_patch = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const auto& cublas = kernels::cuda::cublas_library();
  cublas.get_property(MAJOR_VERSION, &cublas_major);
  cublas.get_property(MINOR_VERSION, &cublas_minor);
  cublas.get_property(PATCH_LEVEL, &cublas_patch);
  benchmark::AddCustomContext("cuda_device", prop.name);
  benchmark::AddCustomContext("cuda_sm", std::to_string(prop.major * 10 + prop.minor));
  benchmark::AddCustomContext("cuda_driver", std::to_string(driver));
  benchmark::AddCustomContext("cuda_runtime", std::to_string(runtime));
  benchmark::AddCustomContext("cublas", std::to_string(cublas_major) + "." +
                                            std::to_string(cublas_minor) + "." +
                                            std::to_string(cublas_patch));
  benchmark::AddCustomContext("cudnn", std::to_string(cudnnGetVersion()));
#endif
}

// Removes our --ipg_* flags from argv (Google Benchmark rejects unknown flags).
void parse_flags(int* argc, char** argv) {
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--ipg_quick") == 0) {
      g_flags.quick = true;
    } else if (std::strcmp(a, "--ipg_labels") == 0) {
      g_flags.labels = true;
    } else if (std::strncmp(a, "--ipg_device=", 13) == 0) {
      const std::string v = a + 13;
      if (v == "cpu") {
        g_flags.devices = kCpu;
      } else if (v == "cuda") {
        g_flags.devices = kCuda;
      } else if (v == "all") {
        g_flags.devices = kAllDevices;
      } else {
        throw std::invalid_argument("--ipg_device: expected cpu, cuda or all, got '" + v + "'");
      }
    } else if (std::strncmp(a, "--benchmark_list_tests", 22) == 0) {
      g_flags.listing = std::strcmp(a, "--benchmark_list_tests=false") != 0;
      argv[out++] = argv[i];
    } else if (std::strcmp(a, "--help") == 0) {
      std::printf(
          "ipguard benchmark flags (besides Google Benchmark's --benchmark_*):\n"
          "  --ipg_device=cpu|cuda|all  devices to run (default all; CUDA cases are skipped\n"
          "                             with a notice when no GPU is usable)\n"
          "  --ipg_quick                smaller roofline problems and one warm-up (smoke runs)\n"
          "  --ipg_labels               classifying cases report their labels (torch check)\n"
          "Names are family/device/params; counters: FLOP/s, bytes_per_second, images/s and\n"
          "roofline (fraction of the peak measured at start-up, see bench/README.md).\n\n");
      argv[out++] = argv[i];
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
}

}  // namespace

bool quick() { return g_flags.quick; }
bool emit_labels() { return g_flags.labels; }

const Roofline& roofline(Device d) {
  static const Roofline none;
  auto it = rooflines().find(key(d));
  return it == rooflines().end() ? none : it->second;
}

void add_case(const std::string& family, const std::string& params, Setup setup, unsigned devices) {
  for (Device d : {Device::cpu(), Device::cuda(0)}) {
    if (!(devices & (d.is_cpu() ? kCpu : kCuda)) || !device_usable(d)) continue;
    const std::string name = family + "/" + key(d) + "/" + params;
    auto* b = benchmark::RegisterBenchmark(
        name.c_str(), [d, setup](benchmark::State& st) { run_case(st, d, setup); });
    b->Unit(benchmark::kMicrosecond);
    // CPU cases are multi-threaded: wall time, not the main thread's CPU time. GPU cases
    // report the time between CUDA events around each iteration.
    if (d.is_cpu()) {
      b->UseRealTime();
    } else {
      b->UseManualTime();
    }
  }
}

Tensor hashed_uniform(const Shape& shape, uint32_t seed, float lo, float hi, Device d) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  const uint32_t offset = seed * 0x9E3779B9u;
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t h = static_cast<uint32_t>(i) + offset;  // MurmurHash3's 32-bit finalizer
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    const float u = static_cast<float>(h >> 8) * (1.f / 16777216.f);
    v[i] = lo + (hi - lo) * u;
  }
  return Tensor::from_vector(v, shape, d);
}

void synchronize(Device d) {
#if IPG_HAS_CUDA
  if (d.is_cuda()) kernels::cuda::synchronize(kernels::cuda::stream(d.index));
#else
  (void)d;
#endif
}

double timed_run(Device d, const std::function<void()>& fn) {
#if IPG_HAS_CUDA
  if (d.is_cuda()) {
    // Events on the engine's stream: the time the GPU spent from the first enqueued work
    // of the iteration to its last, host-side gaps between launches included.
    const auto [start, stop] = events_for(d.index);
    const cudaStream_t s = kernels::cuda::stream(d.index);
    IPG_CUDA_CHECK(cudaEventRecord(start, s));
    fn();
    IPG_CUDA_CHECK(cudaEventRecord(stop, s));
    IPG_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.f;
    IPG_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms * 1e-3;
  }
#endif
  (void)d;
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void keep(const Tensor& t) { benchmark::DoNotOptimize(t.impl_ptr().get()); }

bool register_case_list(CaseList fn) {
  case_lists().push_back(fn);
  return true;
}

int run_main(int argc, char** argv) {
  try {
    parse_flags(&argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  if ((g_flags.devices & kCuda) && !cuda_available())
    std::fprintf(stderr, "%s: CUDA cases skipped: %s\n", argv[0],
                 cuda_unavailable_reason().c_str());
  try {
    add_build_context();
    if (device_usable(Device::cpu()) && !g_flags.listing) measure_roofline(Device::cpu());
    if (device_usable(Device::cuda(0)) && !g_flags.listing) measure_roofline(Device::cuda(0));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: measuring the roofline failed: %s\n", argv[0], e.what());
    return 1;
  }
  for (CaseList fn : case_lists()) fn();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

std::string labels_of(const Tensor& logits) {
  std::string s = "labels=";
  for (int32_t c : ops::argmax(logits).to_vector_i32()) s += static_cast<char>('0' + c);
  return s;
}

}  // namespace ipg::bench
