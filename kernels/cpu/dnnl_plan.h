// Internal to kernels/cpu: how our oneDNN wrappers (conv2d.cpp, fused_conv.cpp) run a
// primitive on the caller's plain buffers. oneDNN's fast kernels want their own layouts
// (channel-blocked activations, blocked weights); a Plan records, per operand, the layout
// the caller holds and the one the primitive chose, and stages every mismatch through the
// caller's workspace with a cached reorder (inputs before the primitive, outputs after).
// Scratchpad is in user mode and sits at the start of the same workspace, so concurrent
// calls share no buffers.
#pragma once

#include <stddef.h>

#include <initializer_list>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

namespace ipg::kernels::cpu::dnnl_plan {

dnnl::engine& cpu_engine();
// One stream per thread: a stream is not meant to be shared between threads.
dnnl::stream& cpu_stream();

// An attribute with the scratchpad in user mode (every primitive we create uses it).
dnnl::primitive_attr user_scratchpad();

// How a primitive uses an operand, which decides the direction of its reorders.
//   Input       read: staged by a reorder in
//   Output      written: staged by a reorder out
//   Accumulate  added to the caller's values: computed staged, reorder out with a sum
//   Update      read and written in place (a sum post-op): reorder in and out
enum class Role { Input, Output, Accumulate, Update };

struct Operand {
  int arg = 0;  // DNNL_ARG_*
  Role role = Role::Input;
  dnnl::memory::desc user, inner;
  bool staged = false;  // lives in the workspace at `offset`
  size_t offset = 0;
  dnnl::reorder in, out;  // user -> inner, inner -> user (as the role needs)
};

struct Plan {
  dnnl::primitive primitive;
  dnnl::memory::desc scratchpad;
  std::vector<Operand> operands;
  size_t workspace_bytes = 0;

  // Lays out the workspace as scratchpad first, then staged operands, each 64-byte
  // aligned. Call in the order execute() will receive the buffers.
  void add(int arg, Role role, const dnnl::memory::desc& user, const dnnl::memory::desc& inner);
};

// An input the caller has already put into the primitive's layout (one reorder serving two
// primitives): execute() reads it from `inner` instead of staging its own copy.
struct Prestaged {
  int arg = 0;  // DNNL_ARG_*
  const void* inner = nullptr;
};

// Runs the plan on the caller's buffers, given in the order of plan.operands. `what`
// names the operation in the error thrown for a too-small workspace.
void execute(const Plan& plan, std::initializer_list<const void*> buffers, void* workspace,
             size_t workspace_bytes, const std::string& what, const Prestaged* pre = nullptr);

// The plan's operand for `arg` (DNNL_ARG_*), or null.
const Operand* find_operand(const Plan& plan, int arg);

}  // namespace ipg::kernels::cpu::dnnl_plan
