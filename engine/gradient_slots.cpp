// Liveness-planned gradient storage (gradient_slots.h).
#include "engine/gradient_slots.h"

#include <map>
#include <stdexcept>
#include <string>

namespace ipg {

SlotStorage plan_slot_storage(const std::vector<GradSlot>& slots, size_t steps) {
  std::vector<std::vector<int>> born(steps), dies(steps);
  for (size_t s = 0; s < slots.size(); ++s) {
    const GradSlot& slot = slots[s];
    if (slot.born < 0 || size_t(slot.born) >= steps || slot.dies > slot.born)
      throw std::logic_error("plan_slot_storage: slot " + std::to_string(s) + " lives from step " +
                             std::to_string(slot.born) + " to " + std::to_string(slot.dies) +
                             " of " + std::to_string(steps));
    born[size_t(slot.born)].push_back(int(s));
    if (slot.dies >= 0) dies[size_t(slot.dies)].push_back(int(s));
  }
  SlotStorage out;
  out.buffer.assign(slots.size(), -1);
  std::multimap<int64_t, int> pool;  // free buffers by size
  for (size_t i = steps; i-- > 0;) {
    for (int s : born[i]) {
      const GradSlot& slot = slots[size_t(s)];
      if (slot.dies < 0) continue;
      auto it = pool.lower_bound(slot.numel);
      if (it != pool.end()) {
        out.buffer[size_t(s)] = it->second;
        pool.erase(it);
      } else {
        out.buffer[size_t(s)] = int(out.buffer_numel.size());
        out.buffer_numel.push_back(slot.numel);
      }
    }
    for (int s : dies[i]) {
      const int b = out.buffer[size_t(s)];
      pool.emplace(out.buffer_numel[size_t(b)], b);
    }
  }
  return out;
}

}  // namespace ipg
