// Replay (replay.h): a CUDA graph on CUDA, the function itself on the CPU.
#include "engine/replay.h"

#include <stdexcept>
#include <utility>

#include "engine/allocator.h"
#include "engine/dispatch.h"

namespace ipg {

namespace {
thread_local bool replaying_on_cpu = false;  // set while Replay::replay runs a CPU body

struct ReplayingScope {
  ReplayingScope() { replaying_on_cpu = true; }
  ~ReplayingScope() { replaying_on_cpu = false; }
};
}  // namespace

void detail::check_host_read(const char* what) {
  if (replaying_on_cpu)
    throw std::logic_error(std::string("Replay: the replayed work reads values back (") + what +
                           "): on CUDA that synchronizes and cannot be a CUDA graph");
}

Replay::Replay(Device device) : device_(device) {}

Replay::~Replay() {
#if IPG_HAS_CUDA
  if (exec_) kernels::cuda::graph_destroy(static_cast<cudaGraphExec_t>(exec_));
#endif
}

bool Replay::record(std::function<void()> body, std::string* why) {
  if (recorded()) throw std::logic_error("Replay::record: already recorded");
  if (device_.is_cpu()) {
    body_ = std::move(body);
    return true;
  }
#if IPG_HAS_CUDA
  const cudaStream_t stream = detail::cuda_stream(device_);
  CachingAllocator& alloc = CachingAllocator::for_device(device_);
  const uint64_t before = alloc.stats().requests;
  kernels::cuda::graph_capture_begin(stream);
  try {
    body();
  } catch (const std::exception& e) {
    // An op that cannot be captured (a synchronous copy, a read-back) fails inside the
    // capture; run directly, a genuine error shows again.
    std::string ignored;
    kernels::cuda::graph_destroy(kernels::cuda::graph_capture_end(stream, &ignored));
    if (why) *why = std::string("not capturable: ") + e.what();
    return false;
  }
  cudaGraphExec_t exec = kernels::cuda::graph_capture_end(stream, why);
  if (!exec) return false;
  // A block allocated while recording would be baked into the graph and then handed to
  // someone else by the cache: such a recording is never replayed.
  if (alloc.stats().requests != before) {
    kernels::cuda::graph_destroy(exec);
    if (why) *why = "the recorded work allocates memory";
    return false;
  }
  exec_ = exec;
  return true;
#else
  (void)why;  // only CUDA recordings can fail
  detail::no_cuda_backend("Replay::record");
#endif
}

bool Replay::recorded() const { return body_ != nullptr || exec_ != nullptr; }

void Replay::replay() {
  if (!recorded()) throw std::logic_error("Replay::replay before record()");
  if (body_) {
    // The same rule as on CUDA, checked where it can be: replayed work allocates nothing.
    CachingAllocator& alloc = CachingAllocator::for_device(device_);
    const uint64_t before = alloc.stats().requests;
    {
      ReplayingScope scope;
      body_();
    }
    if (alloc.stats().requests != before)
      throw std::logic_error("Replay: the replayed work allocated memory (it could not be a "
                             "CUDA graph)");
    return;
  }
#if IPG_HAS_CUDA
  kernels::cuda::graph_launch(static_cast<cudaGraphExec_t>(exec_), detail::cuda_stream(device_));
#endif
}

}  // namespace ipg
