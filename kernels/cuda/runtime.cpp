// CUDA runtime wrappers (compiled by the host compiler; no device code here).
#include "kernels/cuda/runtime.h"

#include <mutex>
#include <vector>

#include "kernels/cuda/check.h"

namespace ipg {

void throw_cuda_error(const char* lib, const char* expr, const std::string& msg, const char* file,
                      int line) {
  throw CudaError(std::string(lib) + " error: " + expr + " failed: " + msg + " (" + file + ":" +
                  std::to_string(line) + ")");
}

}  // namespace ipg

namespace ipg::kernels::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later checks are clean
    return 0;
  }
  return n;
}

std::string unavailable_reason() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return cudaGetErrorString(err);
  }
  return n == 0 ? "no CUDA device found" : "";
}

void set_device(int index) { IPG_CUDA_CHECK(cudaSetDevice(index)); }

void* device_malloc(size_t bytes) {
  void* p = nullptr;
  IPG_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void device_free(void* ptr) { cudaFree(ptr); }

cudaStream_t stream(int device) {
  static std::mutex mu;
  static std::vector<cudaStream_t> streams;
  std::lock_guard<std::mutex> lock(mu);
  if (device >= static_cast<int>(streams.size())) streams.resize(device + 1, nullptr);
  if (!streams[device]) {
    int prev = 0;
    IPG_CUDA_CHECK(cudaGetDevice(&prev));
    IPG_CUDA_CHECK(cudaSetDevice(device));
    IPG_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking));
    IPG_CUDA_CHECK(cudaSetDevice(prev));
  }
  return streams[device];
}

void copy_host_to_device(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  IPG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  // The host buffer may be freed as soon as we return: wait until the copy has read it.
  IPG_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_device_to_host(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  IPG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  IPG_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  IPG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
}

void memset_async(void* dst, int value, size_t bytes, cudaStream_t s) {
  IPG_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, s));
}

void synchronize(cudaStream_t s) { IPG_CUDA_CHECK(cudaStreamSynchronize(s)); }

void memory_info(size_t* free_bytes, size_t* total_bytes) {
  IPG_CUDA_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
}

void graph_capture_begin(cudaStream_t s) {
  IPG_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
}

cudaGraphExec_t graph_capture_end(cudaStream_t s, std::string* why) {
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(s, &graph);
  if (e != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();  // clear the sticky-free error state of a failed capture
    if (graph) cudaGraphDestroy(graph);
    if (why) *why = std::string("capture failed: ") + cudaGetErrorString(e);
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ie = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (ie != cudaSuccess) {
    (void)cudaGetLastError();
    if (why) *why = std::string("instantiation failed: ") + cudaGetErrorString(ie);
    return nullptr;
  }
  return exec;
}

void graph_launch(cudaGraphExec_t g, cudaStream_t s) { IPG_CUDA_CHECK(cudaGraphLaunch(g, s)); }

void graph_destroy(cudaGraphExec_t g) {
  if (g) cudaGraphExecDestroy(g);
}

}  // namespace ipg::kernels::cuda
