// Caching allocators, one per device. Freed blocks go to a free list keyed by their
// (rounded) size and are handed out again, so a loop with fixed shapes allocates nothing
// new after its first iteration: no cudaMalloc/cudaFree (which synchronize the device),
// and on the CPU no fresh mmaps that page-fault on every iteration.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "engine/device.h"

namespace ipg {

struct AllocatorStats {
  uint64_t system_allocs = 0;  // blocks obtained from malloc / cudaMalloc
  uint64_t requests = 0;       // allocate() calls
  size_t reserved_bytes = 0;   // held from the system (in use + cached)
  size_t in_use_bytes = 0;
};

class CachingAllocator {
 public:
  // The allocator of a device; lives for the whole process.
  static CachingAllocator& for_device(Device d);

  // At least `bytes` bytes (64-byte aligned on CPU, 256 on CUDA); never null.
  void* allocate(size_t bytes);
  // Returns a block from allocate(bytes) to the cache.
  void release(void* ptr, size_t bytes);
  // Frees every cached block back to the system.
  void empty_cache();
  AllocatorStats stats() const;

  // Rounding that makes equal-shaped requests share blocks.
  static size_t round_size(size_t bytes);

 private:
  explicit CachingAllocator(Device d);
  struct State;
  Device device_;
  State* state_;
};

}  // namespace ipg
