// Caching allocator: exact-size free lists over rounded sizes, with a bounded CPU cache.
#include "engine/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <sys/mman.h>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/error.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace ipg {

namespace {
// The CPU cache always may hold this much, whatever the process's peak use.
constexpr size_t kMinCpuCacheBytes = size_t(256) << 20;

#if defined(__SANITIZE_ADDRESS__)
#define IPG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IPG_ASAN 1
#endif
#endif

// CPU blocks of 1 MiB and more are mapped from the system directly, and unmapped when
// given back. Through malloc they were not: glibc raises its mmap threshold to the
// largest block freed (up to 32 MiB), after which big tensors come from its heaps and
// fragment them. `serve` answering batches of 1-400 rows on ResNet20 grew to 3.1 GB
// that way (470 MB with every batch the same size; 700 MB with this mapping). Address-
// sanitized builds keep malloc, so that overflows of big tensors are still caught.
#ifdef IPG_ASAN
constexpr size_t kMapBytes = SIZE_MAX;
#else
constexpr size_t kMapBytes = size_t(1) << 20;
#endif

// Mappings of at least a huge page are asked to use them (transparent huge pages in
// "madvise" mode, Debian's default): a fresh 2 MiB page is one fault instead of 512. The
// first pass over a network's activations is mostly page faults otherwise: a ViT at batch
// 100 faults in 3.7 GB, 9 of its first iteration's 12 s in the kernel on a virtual machine.
constexpr size_t kHugePage = size_t(2) << 20;

void* cpu_alloc(size_t size) {
  if (size >= kMapBytes) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    if (size >= kHugePage) madvise(p, size, MADV_HUGEPAGE);  // advice only: failure is harmless
    return p;
  }
  return std::aligned_alloc(64, size);
}

void cpu_free(void* p, size_t size) {
  if (size >= kMapBytes)
    munmap(p, size);
  else
    std::free(p);
}
}  // namespace

struct CachingAllocator::State {
  using Block = std::pair<size_t, void*>;  // (rounded size, pointer)
  mutable std::mutex mu;
  std::list<Block> lru;  // cached blocks, least recently released first
  // Per size, the cached blocks of that size in release order (oldest first).
  std::unordered_map<size_t, std::vector<std::list<Block>::iterator>> free_blocks;
  AllocatorStats stats;
  size_t peak_in_use = 0;
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

void CachingAllocator::free_block(void* p, size_t size) {
  if (device_.is_cpu()) {
    cpu_free(p, size);
  } else {
#if IPG_HAS_CUDA
    kernels::cuda::device_free(p);
#endif
  }
}

// Caller holds the lock.
void CachingAllocator::drop_cached(size_t keep_bytes) {
  State& s = *state_;
  while (s.stats.cached_bytes > keep_bytes && !s.lru.empty()) {
    const State::Block b = s.lru.front();
    // The oldest cached block of its size is the first of that size's list.
    auto& list = s.free_blocks[b.first];
    list.erase(list.begin());
    if (list.empty()) s.free_blocks.erase(b.first);
    s.lru.pop_front();
    free_block(b.second, b.first);
    s.stats.reserved_bytes -= b.first;
    s.stats.cached_bytes -= b.first;
    ++s.stats.evictions;
  }
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  ++s.stats.requests;
  auto found = s.free_blocks.find(size);
  if (found != s.free_blocks.end() && !found->second.empty()) {
    const auto it = found->second.back();  // the most recently released: warmest in cache
    found->second.pop_back();
    void* p = it->second;
    s.lru.erase(it);
    s.stats.cached_bytes -= size;
    s.stats.in_use_bytes += size;
    s.peak_in_use = std::max(s.peak_in_use, s.stats.in_use_bytes);
    return p;
  }
  void* p = nullptr;
  if (device_.is_cpu()) {
    p = cpu_alloc(size);
    if (!p && s.stats.cached_bytes > 0) {  // out of memory with blocks cached: give them back
      drop_cached(0);
      p = cpu_alloc(size);
    }
    if (!p) throw std::bad_alloc();
  } else {
#if IPG_HAS_CUDA
    kernels::cuda::set_device(device_.index);
    try {
      p = kernels::cuda::device_malloc(size);
    } catch (const std::exception&) {
      drop_cached(0);  // out of memory with blocks cached: give them back, try once more
      p = kernels::cuda::device_malloc(size);
    }
#else
    throw DeviceError("allocation on " + device_.str() + ": this build has no CUDA backend");
#endif
  }
  ++s.stats.system_allocs;
  s.stats.reserved_bytes += size;
  s.stats.in_use_bytes += size;
  s.peak_in_use = std::max(s.peak_in_use, s.stats.in_use_bytes);
  return p;
}

void CachingAllocator::release(void* ptr, size_t bytes) {
  if (!ptr) return;
  const size_t size = round_size(bytes);
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  s.lru.emplace_back(size, ptr);
  s.free_blocks[size].push_back(std::prev(s.lru.end()));
  s.stats.in_use_bytes -= size;
  s.stats.cached_bytes += size;
  // On the CPU the cache is bounded: a process that meets many shapes (compaction's
  // shrinking batches, one model after another, a server's varying requests) would
  // otherwise keep a block of every size it ever used. A fixed-shape loop still runs
  // from the cache: what it frees was in use at once, at most twice its peak.
  // CUDA keeps every block (a cudaFree synchronizes the device) and gives the cache back
  // when an allocation fails.
  if (device_.is_cpu()) drop_cached(limit_locked());
}

size_t CachingAllocator::limit_locked() const {
  return std::max(kMinCpuCacheBytes, 2 * state_->peak_in_use);
}

size_t CachingAllocator::cache_limit() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return device_.is_cpu() ? limit_locked() : SIZE_MAX;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(state_->mu);
  drop_cached(0);
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->stats;
}

}  // namespace ipg
