// Thin CUDA runtime layer for the engine: device discovery, raw memory, copies and the
// per-device stream every kernel launch goes to. No tensors here.
#pragma once

#include <cuda_runtime_api.h>
#include <stddef.h>

#include <string>

namespace ipg::kernels::cuda {

// Number of usable GPUs; 0 (never an exception) when there is no driver or no device.
int device_count();
// One line describing why device_count() is 0, or "" when a GPU is present.
std::string unavailable_reason();

void set_device(int index);
void* device_malloc(size_t bytes);  // throws CudaError
void device_free(void* ptr);
// The stream all ipguard work on `device` is issued to (created on first use). Using one
// non-default stream keeps work ordered and lets an iteration be captured as a graph.
cudaStream_t stream(int device);
void copy_host_to_device(void* dst, const void* src, size_t bytes, cudaStream_t s);
// Synchronous: waits for the stream, then returns with the data on the host.
void copy_device_to_host(void* dst, const void* src, size_t bytes, cudaStream_t s);
void copy_device_to_device(void* dst, const void* src, size_t bytes, cudaStream_t s);
void memset_async(void* dst, int value, size_t bytes, cudaStream_t s);
void synchronize(cudaStream_t s);
// Free and total bytes of the current device (cudaMemGetInfo).
void memory_info(size_t* free_bytes, size_t* total_bytes);

// Device memory owned by a scope (device_malloc, freed on every path out); 0 bytes: none.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) : p(bytes ? device_malloc(bytes) : nullptr) {}
  ~DeviceBuffer() { device_free(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(p); }
};

// CUDA graphs: the work issued to a stream between begin and end is recorded, not run
// (relaxed mode: the capturing thread may still call the runtime, e.g. our allocator's
// cudaMalloc, though a loop worth capturing allocates nothing). graph_end returns null and
// sets *why when the capture failed (an op synchronized or used another stream); the
// stream is then usable again. graph_launch replays the whole recording on s.
void graph_capture_begin(cudaStream_t s);
cudaGraphExec_t graph_capture_end(cudaStream_t s, std::string* why);
void graph_launch(cudaGraphExec_t g, cudaStream_t s);
void graph_destroy(cudaGraphExec_t g);

// Launch shape for one thread per element (grid-stride loops cover the rest).
constexpr int kThreads = 256;
inline unsigned blocks_for(long long n) {
  long long b = (n + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b > 65535LL * 32 ? 65535LL * 32 : b);
}

}  // namespace ipg::kernels::cuda
