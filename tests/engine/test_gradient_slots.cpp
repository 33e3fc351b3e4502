// plan_slot_storage (engine/gradient_slots.h), the liveness planning both frozen-graph
// lowerings use: on random slot sets, no two slots that share a buffer are ever live at
// the same step, every buffer holds each of its slots, and slots read after the last step
// get storage of their own; on a chain, storage does not grow with depth.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "engine/gradient_slots.h"
#include "engine/random.h"
#include "engine/tensor.h"

namespace ipg {
namespace {

// Live at step i (backward order) from born down to dies (-1: to the end).
bool live_at(const GradSlot& s, int i) { return i <= s.born && i >= s.dies; }

TEST(GradientSlots, SharedBuffersAreNeverLiveTogether) {
  Generator gen(17);
  for (int trial = 0; trial < 50; ++trial) {
    const int steps = 3 + trial % 20;
    const std::vector<float> u = Tensor::uniform({3 * 40}, 0.f, 1.f, gen).to_vector();
    std::vector<GradSlot> slots;
    for (int k = 0; k < 40; ++k) {
      GradSlot s;
      s.numel = 1 + int64_t(u[3 * k] * 100);
      s.born = int(u[3 * k + 1] * steps) % steps;
      s.dies = int(u[3 * k + 2] * (s.born + 2)) - 1;  // in [-1, born]
      slots.push_back(s);
    }
    const SlotStorage st = plan_slot_storage(slots, size_t(steps));
    ASSERT_EQ(st.buffer.size(), slots.size());
    for (size_t a = 0; a < slots.size(); ++a) {
      const int b = st.buffer[a];
      EXPECT_EQ(b < 0, slots[a].dies < 0) << "slot " << a;
      if (b < 0) continue;
      EXPECT_GE(st.buffer_numel[size_t(b)], slots[a].numel) << "slot " << a;
      for (size_t c = a + 1; c < slots.size(); ++c) {
        if (st.buffer[c] != b) continue;
        for (int i = 0; i < steps; ++i)
          EXPECT_FALSE(live_at(slots[a], i) && live_at(slots[c], i))
              << "slots " << a << " and " << c << " share buffer " << b << " at step " << i;
      }
    }
  }
}

TEST(GradientSlots, ChainReusesTwoBuffers) {
  // Step i writes its input's gradient, read by step i - 1 (the producer): at most two
  // are live at once, however deep the chain.
  std::vector<GradSlot> slots;
  for (int i = 1; i < 100; ++i) slots.push_back(GradSlot{64, i, i - 1});
  slots.push_back(GradSlot{64, 0, -1});  // the input's gradient
  const SlotStorage st = plan_slot_storage(slots, 100);
  EXPECT_EQ(st.buffer_numel.size(), 2u);
  EXPECT_EQ(st.buffer.back(), -1);
}

TEST(GradientSlots, SlotOutsideTheStepsIsRefused) {
  EXPECT_THROW(plan_slot_storage({GradSlot{4, 5, 1}}, 3), std::logic_error);
  EXPECT_THROW(plan_slot_storage({GradSlot{4, 1, 2}}, 3), std::logic_error);
}

}  // namespace
}  // namespace ipg
