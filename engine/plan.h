// The planner: a traced forward (engine/trace.h) in evaluation mode rewritten into fused
// steps, device-neutral, for the frozen-weights loop of fingerprinting (forward to the
// logits, backward to the input). Each device lowers a Plan its own way (the CPU:
// engine/frozen_graph.h); what the planner decides once is the same for all of them:
//  - an evaluation-mode batch norm after a convolution is folded into its weights and
//    bias; a residual add and a ReLU after it become the convolution's epilogue; grouped
//    (depthwise) and dilated convolutions stay so (each lowering runs them natively);
//  - per-channel arithmetic with constants (input normalization, a batch norm that
//    follows no convolution) becomes one affine step, with a following ReLU;
//  - a zero padding becomes the padding of the convolution that reads it (or of a max
//    pooling whose input is a ReLU's output, where zero and -inf padding agree);
//  - flatten of a map is a layout step; a ReLU after a linear layer is its epilogue;
//  - other element-wise activations (ReLU6 and clamps, sigmoid, hard swish, hard sigmoid,
//    GELU, tanh, ...; torch's SiLU, x * sigmoid(x), as one) are activation steps;
//  - squeeze-and-excitation: a global average pool kept as [n, C, 1, 1] is its [n, C]
//    value, a 1x1 convolution of one is a linear layer, and the product of a map with
//    one (the gate) is a channel-scale step;
//  - values that do not reach the output are dropped.
// Anything else is refused with the op and its place in the trace named (the caller runs
// the autodiff graph instead): a plan is exact or absent, never approximately right.
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "engine/trace.h"
#include "kernels/common/activation_math.h"

namespace ipg {

struct PlanStep {
  enum class Kind { Affine, Conv, MaxPool, GlobalAvgPool, Flatten, Linear, AvgPool, Act,
                    ChannelScale };
  Kind kind = Kind::Affine;
  int x = 0;           // input value: 0 is the plan's input, step i writes value i + 1
  int residual = -1;   // Conv: value added before the ReLU
  int gate = -1;       // ChannelScale: the [n, C] value each map x[n, c] is multiplied by
  kernels::Activation act;  // Act: y = act(x), any shape
  bool relu = false;   // Affine, Conv, Linear: ReLU at the end
  // Conv: the ReLU's upper bound (ReLU6, a clamp to [0, 6] after the conv: 6).
  float relu_max = std::numeric_limits<float>::infinity();
  // Conv: OIHW weight, [out] bias (batch norm folded in); Linear: [out, in], [out].
  // Host float32 copies: the plan holds no device memory.
  std::vector<float> weight, bias;
  Shape weight_shape;
  std::vector<float> scale, shift;  // Affine: x * scale[c] + shift[c]
  int stride = 1, padding = 0, kernel = 0;
  bool ceil = false;         // MaxPool, AvgPool: ceil-mode output size (pool_math.h)
  bool include_pad = true;   // AvgPool: the divisor counts the padding
  // Conv: channel groups (weight [out, in / groups, kh, kw]) and dilations (rows, columns).
  int groups = 1, dilation_h = 1, dilation_w = 1;
  Shape out;      // output shape: [n, C, H, W] or [n, F]
  std::string from;  // the trace nodes it came from, e.g. "conv2d+batch_norm+add+relu"
};

struct Plan {
  Shape input;  // [n, C, H, W]
  std::vector<PlanStep> steps;
  int logits = -1;  // value id of the output ([n, classes])
  Shape shape(int v) const { return v == 0 ? input : steps.at(size_t(v - 1)).out; }
  // One line per step, for errors, tests and `--explain`-style output.
  std::string str() const;
  // The same plan for a batch of n: every step works row by row (evaluation mode), so a
  // plan traced on a small batch serves any batch size.
  Plan with_batch(int64_t n) const;
};

// The plan of g, or nullopt with *why saying which node stopped it.
std::optional<Plan> make_plan(const trace::Graph& g, std::string* why);

}  // namespace ipg
