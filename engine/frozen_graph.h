// A network with frozen weights, compiled for one batch shape into fused steps: what the
// fingerprint loop runs thousands of times (forward to the logits, backward to the input,
// the weights never changing). Against the autodiff graph (engine/autograd.h) it
//  - folds every evaluation-mode batch norm that follows a convolution into that
//    convolution's weights and bias, and fuses the bias, a residual add and the ReLU into
//    the convolution's own kernel (kernels/cpu/fused_conv.h);
//  - keeps activations channel-blocked between layers (kernels/cpu/blocked.h), so no
//    layout is converted around each convolution;
//  - allocates its buffers once: after the first backward(), forward() and backward()
//    allocate nothing.
// It is the CPU lowering of a plan (engine/plan.h: a traced forward, fused), or built
// layer by layer through the methods below (tests), and checked against the autodiff
// forward and input gradient by tests/engine/test_frozen_graph.cpp and
// tests/models/test_frozen_network.cpp.
//
// The weights are read when a step is added: a graph describes the weights of that
// moment (rebuild it after training). CPU only: the CUDA lowering of the same plan is
// FrozenGraphCuda (engine/frozen_graph_cuda.h), with the same interface.
#pragma once

#include <limits>
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/plan.h"
#include "engine/tensor.h"

namespace ipg {

class FrozenGraph {
 public:
  using Value = int;
  static constexpr Value kNone = -1;

  // input: [n, C, H, W] float32 images on the CPU.
  explicit FrozenGraph(const Shape& input);
  // The CPU lowering of a plan, finished.
  explicit FrozenGraph(const Plan& plan);
  ~FrozenGraph();
  FrozenGraph(const FrozenGraph&) = delete;
  FrozenGraph& operator=(const FrozenGraph&) = delete;

  Value input() const { return 0; }
  // Shape of a value: [n, C, H, W] for maps, [n, F] for features.
  Shape shape(Value v) const;

  // Layers. Each returns its output value.
  // (x - mean[c]) / std[c] (empty vectors: 0 and 1).
  Value normalize(Value x, const std::vector<float>& mean, const std::vector<float>& std);
  // relu?(bn?(conv(x)) + residual?). padding < 0: the conv's own.
  Value conv(Value x, const nn::Conv2d& conv, const nn::BatchNorm2d* bn, bool relu,
             Value residual = kNone, int padding = -1);
  // relu?(bn(x)), evaluation mode (running statistics).
  Value batch_norm(Value x, const nn::BatchNorm2d& bn, bool relu);
  // Max pooling; padding counts as -inf. ceil: ceil-mode output size.
  Value max_pool(Value x, int kernel, int stride, int padding = 0, bool ceil = false);
  // Average pooling; include_pad: the divisor counts the padding.
  Value avg_pool(Value x, int kernel, int stride, int padding, bool include_pad, bool ceil);
  // [n, C, H, W] -> [n, C]
  Value global_avg_pool(Value x);
  // [n, C, H, W] -> [n, C*H*W] in NCHW order
  Value flatten(Value x);
  // relu?(x W^T + b)
  Value linear(Value x, const nn::Linear& layer, bool relu);
  // The same from plain weights (host float32; conv: OIHW, bias folded; linear: [out, in]).
  // A grouped conv's weight is [out, in / groups, kh, kw]; dilations of rows, columns.
  // relu_max: the ReLU's upper bound (ReLU6: 6).
  Value conv(Value x, const std::vector<float>& weight, const Shape& weight_shape,
             const std::vector<float>& bias, int stride, int padding, bool relu,
             Value residual = kNone, int groups = 1, int dilation_h = 1, int dilation_w = 1,
             float relu_max = std::numeric_limits<float>::infinity());
  Value affine(Value x, const std::vector<float>& scale, const std::vector<float>& shift,
               bool relu);
  Value linear(Value x, const std::vector<float>& weight, const Shape& weight_shape,
               const std::vector<float>& bias, bool relu);
  // f(x) element-wise, any value (kernels/common/activation_math.h).
  Value activation(Value x, const kernels::Activation& f);
  // x[n, c, :, :] * gate[n, c]: x a map, gate [n, C] features.
  Value channel_scale(Value x, Value gate);
  // Marks the logits [n, classes] and allocates what the backward pass needs.
  void finish(Value logits);

  // Runs the graph on x (CPU, the input shape). Returns the logits, a buffer of the graph
  // that the next call overwrites.
  const Tensor& forward(const Tensor& x);
  // Forgets the last forward(): backward() needs a new one (and the caller's input is
  // no longer referenced).
  void forget_forward();
  // Back-propagates dlogits (shape of the logits) through the last forward(). Returns the
  // gradient with respect to its input, a buffer of the graph.
  const Tensor& backward(const Tensor& dlogits);

  // Bytes the graph holds: every layer's output (kept for the backward pass), gradient
  // buffers (shared between layers whose gradients are not live at the same time), and
  // the convolutions' workspace. Weights not counted.
  struct Memory {
    size_t values = 0, gradients = 0, workspace = 0;
  };
  Memory memory() const;

  struct State;
  struct Step;

 private:
  std::unique_ptr<State> st_;
};

}  // namespace ipg
