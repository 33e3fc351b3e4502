// Where a tensor lives: the CPU or one CUDA device. Every op runs on its inputs' device.
#pragma once

#include <stddef.h>

#include <iosfwd>
#include <string>

namespace ipg {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  // "cpu" or "cuda:N".
  std::string str() const;
  // Parses "cpu", "cuda" or "cuda:N"; throws std::invalid_argument otherwise.
  static Device parse(const std::string& s);
};

std::ostream& operator<<(std::ostream& os, const Device& d);

// True when this build has the CUDA backend.
bool cuda_built();
// True when the CUDA backend is built and a driver and at least one GPU are present.
// Never throws: on a machine without a driver it is simply false.
bool cuda_available();
// Why cuda_available() is false, in a few words ("" when it is true).
std::string cuda_unavailable_reason();
// Bytes a new allocation could still get on d: free device memory plus what our caching
// allocator holds unused (CUDA); 0 for the CPU (no limit the fingerprint loop plans for).
size_t device_free_bytes(Device d);

// Resolves the --device flag: "auto" -> cuda:0 when available, else cpu (writing one
// notice line to `notice` if non-null); "cpu"; "cuda[:N]" (throws DeviceError when CUDA
// is not available, saying why).
Device resolve_device(const std::string& flag, std::ostream* notice);

}  // namespace ipg
