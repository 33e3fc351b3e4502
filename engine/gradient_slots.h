// Where a frozen graph keeps its gradient buffers ("slots"), shared by its CPU and CUDA
// lowerings (engine/frozen_graph.h, engine/frozen_graph_cuda.h): slots whose lifetimes in
// the backward pass never overlap share storage. Decided once, when a graph is built;
// each lowering then allocates the buffers on its own device.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <vector>

namespace ipg {

// A gradient buffer of numel floats, live during the backward pass from the step that
// writes it (born) down to the last step that reads it (dies; -1: read after the last
// step, as the input's gradient is). Steps are counted in forward order and the backward
// pass runs them from the last, so a slot's storage is free for reuse below `dies`.
struct GradSlot {
  int64_t numel = 0;
  int born = 0, dies = -1;
};

struct SlotStorage {
  std::vector<int> buffer;            // per slot: its buffer; -1 (dies < 0): storage of its own
  std::vector<int64_t> buffer_numel;  // per buffer: floats (at least each of its slots' numel)
};

// Assigns storage in backward order: at each step, first the slots it writes take a free
// buffer (the smallest that is large enough, else a new one), then the slots whose last
// reader it is give theirs back (so never under a slot the step writes). steps: how many
// steps the graph has (every born and dies is below it).
SlotStorage plan_slot_storage(const std::vector<GradSlot>& slots, size_t steps);

}  // namespace ipg
