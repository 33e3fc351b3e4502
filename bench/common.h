// Shared harness of the benchmark binaries (bench_kernels now; bench_models, bench_train
// and bench_extract later): each binary lists cases, the harness registers one Google
// Benchmark per case and device, times it (wall clock on the CPU, CUDA events on the GPU)
// and adds the counters every case reports:
//   FLOP/s, bytes_per_second, images/s  from the hand-counted Work of one iteration;
//   roofline  the fraction of this machine's limit reached: the time the roofline allows
//             for that work, max(flops / peak FLOP/s, bytes / peak bandwidth), divided by
//             the time measured. The peaks are measured by the same process at start-up
//             (oneDNN sgemm and a STREAM triad on the CPU, cuBLAS SGEMM and a device copy
//             on the GPU) and written into the JSON context, so a result reads as a
//             fraction of the machine it ran on.
// Names are family/device/params ("mlp_forward/cuda/b=100"), so --benchmark_filter=/cuda/
// selects a device; --ipg_device=cpu|cuda|all does the same without a regex.
#pragma once

#include <stdint.h>

#include <functional>
#include <string>

#include "engine/device.h"
#include "engine/tensor.h"

namespace ipg::bench {

// What one iteration must do at least, counted from the shapes: a perfect implementation
// performs these FLOPs (a multiply-add is 2) and moves these bytes (each input read once,
// each output written once, nothing cached between iterations).
struct Work {
  double flops = 0;
  double bytes = 0;
  double images = 0;  // images per iteration (model, training and extraction cases)
};

// A case made ready on one device: inputs allocated, weights loaded, warm-up left to the
// harness. run() is one timed iteration; it may leave GPU work in flight (the harness
// synchronizes the device's stream). label, when set, is reported with the result.
struct Prepared {
  std::function<void()> run;
  Work work;
  std::string label;
};
using Setup = std::function<Prepared(Device)>;

enum DeviceMask : unsigned { kCpu = 1u, kCuda = 2u, kAllDevices = 3u };

// Registers "family/<device>/params" for each device in `devices` that this run covers
// (--ipg_device and, for CUDA, a usable GPU). Call from a function given to
// IPG_BENCH_CASES, which runs after the flags are parsed.
void add_case(const std::string& family, const std::string& params, Setup setup,
              unsigned devices = kAllDevices);

// Flags of this run (parsed by run_main).
bool quick();        // --ipg_quick: smaller problems and fewer warm-ups, for smoke runs
bool emit_labels();  // --ipg_labels: cases that classify report their labels (torch check)

// The ceilings measured for a device in this process (measured once, at start-up).
struct Roofline {
  double flops_per_s = 0;
  double bytes_per_s = 0;
  std::string flops_source;  // "oneDNN sgemm 2048^3", ...
  std::string bytes_source;
};
const Roofline& roofline(Device d);

// Values reproducible bit for bit in NumPy (bench/compare_torch.py, hashed_uniform):
// element i is lo + (hi - lo) * u with u = (fmix32(i + seed * 0x9E3779B9) >> 8) / 2^24,
// all in float32, so both sides feed identical weights and inputs.
Tensor hashed_uniform(const Shape& shape, uint32_t seed, float lo, float hi, Device d);

// Waits for the device's work (the engine's stream on CUDA; nothing on the CPU).
void synchronize(Device d);
// Seconds one call of fn takes, measured as the harness measures iterations: wall clock
// on the CPU, CUDA events on the engine's stream on a GPU.
double timed_run(Device d, const std::function<void()>& fn);

// Keeps a result alive and opaque to the optimizer.
void keep(const Tensor& t);

using CaseList = void (*)();
bool register_case_list(CaseList fn);
// Parses --ipg_* flags, measures the rooflines, registers every case list and runs them.
int run_main(int argc, char** argv);

// "labels=" plus one digit per row: the predicted class (ops::argmax) of [n, k<=10]
// logits, for compare_torch.py's label check.
std::string labels_of(const Tensor& logits);

}  // namespace ipg::bench

// Registers a function that adds a binary's cases; one or more per binary.
#define IPG_BENCH_CASES(fn) \
  static const bool ipg_bench_cases_##fn [[maybe_unused]] = ::ipg::bench::register_case_list(fn)

#define IPG_BENCH_MAIN() \
  int main(int argc, char** argv) { return ::ipg::bench::run_main(argc, argv); }
