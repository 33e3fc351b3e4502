// Caching allocators, one per device. Freed blocks go to a free list keyed by their
// (rounded) size and are handed out again, so a loop with fixed shapes allocates nothing
// new after its first iteration: no cudaMalloc/cudaFree (which synchronize the device),
// and on the CPU no fresh mmaps that page-fault on every iteration. The CPU cache is
// bounded (least recently released blocks go back first); the CUDA cache is not. Big CPU
// blocks are mapped from the system, not taken from malloc (allocator.cpp says why).
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
  size_t cached_bytes = 0;     // held in the cache, free for reuse
  uint64_t evictions = 0;      // cached blocks given back to the system to bound the cache
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
  // The most the cache keeps (CPU: twice the process's peak use, at least 256 MiB; CUDA:
  // no bound, the cache is given back when an allocation fails).
  size_t cache_limit() const;
  AllocatorStats stats() const;

  // Rounding that makes equal-shaped requests share blocks.
  static size_t round_size(size_t bytes);

 private:
  explicit CachingAllocator(Device d);
  void free_block(void* p, size_t size);
  void drop_cached(size_t keep_bytes);  // oldest first, until at most keep_bytes cached
  size_t limit_locked() const;
  struct State;
  Device device_;
  State* state_;
};

}  // namespace ipg
