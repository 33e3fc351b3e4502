// Internal to kernels/cpu: a bounded cache of oneDNN plans, keyed by geometry. A plan holds
// a JIT-compiled primitive and its reorders; a process that meets many shapes (a server
// answering batches of every size, one model after another) would otherwise keep one per
// shape it ever ran. The least recently used plan goes first. Plans are shared pointers:
// one evicted while another thread runs it lives until that run ends.
#pragma once

#include <stddef.h>

#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace ipg::kernels::cpu {

template <typename Key, typename Plan>
class PlanCache {
 public:
  explicit PlanCache(size_t capacity) : capacity_(capacity) {}

  // The plan for `key`, made by `make()` (returning std::unique_ptr<Plan>) on a miss.
  // `make` runs under the cache's lock: two threads never build the same plan twice.
  template <typename Make>
  std::shared_ptr<const Plan> get(const Key& key, Make&& make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.end(), order_, it->second);  // now the most recently used
      return it->second->second;
    }
    std::shared_ptr<const Plan> plan(make());
    order_.emplace_back(key, plan);
    index_.emplace(key, std::prev(order_.end()));
    trim();
    return plan;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return order_.size();
  }
  size_t capacity() const {
    std::lock_guard<std::mutex> lock(mu_);
    return capacity_;
  }
  // For tests: a smaller bound makes eviction cheap to exercise. At least 1.
  void set_capacity(size_t capacity) {
    std::lock_guard<std::mutex> lock(mu_);
    capacity_ = capacity < 1 ? 1 : capacity;
    trim();
  }

 private:
  using Entry = std::pair<Key, std::shared_ptr<const Plan>>;
  void trim() {
    while (order_.size() > capacity_) {
      index_.erase(order_.front().first);
      order_.pop_front();
    }
  }
  mutable std::mutex mu_;
  size_t capacity_;
  std::list<Entry> order_;  // least recently used first
  std::map<Key, typename std::list<Entry>::iterator> index_;
};

}  // namespace ipg::kernels::cpu
