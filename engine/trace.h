// Tracing: one forward pass of a network, recorded as a graph of ops over values, so the
// network is described once (its forward) and compiled from that description (the
// planner, engine/plan.h) instead of being written a second time layer by layer.
//
// What is recorded, and why it cannot miss an op: while a Tracer is alive on a thread,
// every autodiff node attached on that thread (autograd::attach) becomes a trace node.
// The traced input requires a gradient and the weights do not, so every op whose result
// depends on the input attaches a node, whatever the op; values that do not depend on it
// (weights, normalization constants) are constants of the trace. Ops the planner knows
// add what the node alone does not say (stride, padding, running statistics) through
// describe(); a node nobody described keeps Op::Opaque and the planner refuses it by name.
// A forward that hides a dependence on the input from autodiff (detach(), a copy through
// the host) would make an input-dependent value look constant: the frozen network
// therefore checks every plan against the autodiff forward on a second input
// (models/frozen_network.cpp).
#pragma once

#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ipg::trace {

enum class Op {
  Opaque,         // an op the trace knows only by name
  Conv2d,         // inputs x, weight, bias (-1: none); stride (rows), stride_w, padding
                  // (top), pad, dilation, groups
  BatchNorm,      // inputs x, gamma, beta; running_mean, running_var, eps, training
  Add, Sub, Mul, Div,  // inputs a, b (broadcasting)
  Relu,           // input x
  MaxPool2d,      // input x; kernel, stride, padding, ceil
  GlobalAvgPool,  // input x: [n, C, H, W] -> [n, C]
  AvgPool2d,      // input x; kernel, stride, padding, ceil, include_pad
  ZeroPad2d,      // input x; pad (top, bottom, left, right)
  Reshape,        // input x; the output's shape
  Linear,         // inputs x, weight [out, in], bias (-1: none)
  Unary,          // input x; unary (a kernels::UnaryOp other than ReLU: sigmoid, ...)
  Clamp,          // input x; lo, hi (ReLU6: 0, 6)
  HardSigmoid,    // input x; a, b: clamp(a x + b, 0, 1)
  ScalarAffine,   // input x; a, b: a x + b
};
const char* op_name(Op op);

struct Attrs {
  int stride = 1, padding = 0, kernel = 0;
  bool ceil = false;         // MaxPool2d, AvgPool2d: ceil-mode output size
  bool include_pad = true;   // AvgPool2d: the divisor counts the padding (count_include_pad)
  int pad[4] = {0, 0, 0, 0};  // top, bottom, left, right
  // Conv2d only: the column stride, the dilations (rows, columns) and the channel groups.
  int stride_w = 1;
  int dilation[2] = {1, 1};
  int groups = 1;
  // Unary: the kernels::UnaryOp, as an int; Clamp: the bounds; HardSigmoid, ScalarAffine:
  // the coefficients.
  int unary = -1;
  float lo = 0, hi = 0, a = 1, b = 0;
  float eps = 0;
  bool training = false;
  Tensor running_mean, running_var;
};

struct Node {
  Op op = Op::Opaque;
  std::string name;         // the autodiff node's name ("conv2d", "relu", ...)
  std::vector<int> inputs;  // value ids; -1 for an absent optional input
  int output = -1;          // value id
  Attrs attrs;
};

// Values: the traced input, constants, and node outputs. Each keeps its tensor (the
// trace's forward values; constants are the weights themselves, not copies).
struct Graph {
  std::vector<Tensor> values;
  std::vector<int> producer;  // per value: the node computing it, -1 for input and constants
  std::vector<Node> nodes;    // in execution order
  int input = -1, output = -1;
  bool is_constant(int v) const { return v >= 0 && v != input && producer[size_t(v)] < 0; }
  // One line per node: "v7 = conv2d(v3, c4, -)", for errors and tests.
  std::string str() const;
};

// Records the ops of the current thread for its lifetime. input must require a gradient
// (the Tracer sets it on a detached copy it returns through input()).
class Tracer {
 public:
  explicit Tracer(const Tensor& input);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;
  // The tensor to run the forward on.
  const Tensor& input() const { return input_; }
  // Ends recording; output: what the forward returned.
  Graph finish(const Tensor& output);

 private:
  Tensor input_;
  bool done_ = false;
};

// Whether a Tracer records on this thread (ops skip describe() otherwise).
bool active();
// Called by autograd::attach for every node.
void record(const Tensor& out, const char* name, const std::vector<Tensor>& inputs);
// Gives the node that produced `out` its op and attributes (after attach).
void describe(const Tensor& out, Op op, const Attrs& attrs = {});

}  // namespace ipg::trace
