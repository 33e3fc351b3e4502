// Caching allocator: exact-size free lists over rounded sizes.
#include "engine/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "engine/error.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace ipg {

struct CachingAllocator::State {
  mutable std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  AllocatorStats stats;
};

CachingAllocator::CachingAllocator(Device d) : device_(d), state_(new State) {}

CachingAllocator& CachingAllocator::for_device(Device d) {
  // Allocators are never destroyed: tensors in static storage may be released after
  // main() returns, and the CUDA context may already be gone then.
  static std::mutex mu;
  static std::map<std::pair<int, int>, CachingAllocator*>* table =
      new std::map<std::pair<int, int>, CachingAllocator*>();
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_pair(static_cast<int>(d.type), d.index);
  auto it = table->find(key);
  if (it != table->end()) return *it->second;
  auto* a = new CachingAllocator(d);
  table->emplace(key, a);
  return *a;
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  // 512-byte granules below 1 MiB, 64 KiB granules above: little waste, and a shape that
  // changes by a few elements still reuses its block.
  const size_t g = bytes < (1u << 20) ? 512 : (64u << 10);
  return (bytes + g - 1) / g * g;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(state_->mu);
  ++state_->stats.requests;
  auto& list = state_->free_blocks[size];
  if (!list.empty()) {
    void* p = list.back();
    list.pop_back();
    state_->stats.in_use_bytes += size;
    return p;
  }
  void* p = nullptr;
  if (device_.is_cpu()) {
    p = std::aligned_alloc(64, size);
    if (!p) throw std::bad_alloc();
  } else {
#if IPG_HAS_CUDA
    kernels::cuda::set_device(device_.index);
    try {
      p = kernels::cuda::device_malloc(size);
    } catch (const std::exception&) {
      // Out of memory with blocks cached: give them back and try once more.
      for (auto& kv : state_->free_blocks)
        for (void* q : kv.second) {
          kernels::cuda::device_free(q);
          state_->stats.reserved_bytes -= kv.first;
        }
      state_->free_blocks.clear();
      p = kernels::cuda::device_malloc(size);
    }
#else
    throw DeviceError("allocation on " + device_.str() + ": this build has no CUDA backend");
#endif
  }
  ++state_->stats.system_allocs;
  state_->stats.reserved_bytes += size;
  state_->stats.in_use_bytes += size;
  return p;
}

void CachingAllocator::release(void* ptr, size_t bytes) {
  if (!ptr) return;
  const size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->free_blocks[size].push_back(ptr);
  state_->stats.in_use_bytes -= size;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(state_->mu);
  for (auto& kv : state_->free_blocks) {
    for (void* p : kv.second) {
      if (device_.is_cpu()) {
        std::free(p);
      } else {
#if IPG_HAS_CUDA
        kernels::cuda::device_free(p);
#endif
      }
      state_->stats.reserved_bytes -= kv.first;
    }
  }
  state_->free_blocks.clear();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->stats;
}

}  // namespace ipg
