// Device parsing and CUDA availability (queried once, never fatal).
#include "engine/device.h"

#include <ostream>
#include <stdexcept>

#include "engine/allocator.h"
#include "engine/error.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace ipg {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    size_t used = 0;
    int idx = -1;
    try {
      idx = std::stoi(s.substr(5), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == s.size() - 5 && idx >= 0) return cuda(idx);
  }
  throw std::invalid_argument("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
}

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

bool cuda_built() {
#if IPG_HAS_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
#if IPG_HAS_CUDA
  static const bool available = kernels::cuda::device_count() > 0;
  return available;
#else
  return false;
#endif
}

std::string cuda_unavailable_reason() {
#if IPG_HAS_CUDA
  return cuda_available() ? "" : kernels::cuda::unavailable_reason();
#else
  return "this build has no CUDA backend (configured with IPG_CUDA=OFF or no CUDA toolkit)";
#endif
}

Device resolve_device(const std::string& flag, std::ostream* notice) {
  if (flag == "auto") {
    if (cuda_available()) return Device::cuda(0);
    // A CPU-only build was chosen as such: no notice on every run. A CUDA build on a
    // machine without a usable GPU says once why it runs on the CPU.
    if (notice && cuda_built())
      *notice << "ipguard: CUDA not available (" << cuda_unavailable_reason()
              << "); running on CPU\n";
    return Device::cpu();
  }
  const Device d = Device::parse(flag);
  if (d.is_cuda()) {
    if (!cuda_available())
      throw DeviceError("--device " + flag + ": CUDA not available (" + cuda_unavailable_reason() +
                        ")");
#if IPG_HAS_CUDA
    if (d.index >= kernels::cuda::device_count())
      throw DeviceError("--device " + flag + ": only " +
                        std::to_string(kernels::cuda::device_count()) + " CUDA device(s)");
#endif
  }
  return d;
}

size_t device_free_bytes(Device d) {
  if (!d.is_cuda()) return 0;
#if IPG_HAS_CUDA
  kernels::cuda::set_device(d.index);
  size_t free_bytes = 0, total = 0;
  kernels::cuda::memory_info(&free_bytes, &total);
  const AllocatorStats st = CachingAllocator::for_device(d).stats();
  return free_bytes + (st.reserved_bytes - st.in_use_bytes);
#else
  return 0;
#endif
}

}  // namespace ipg
