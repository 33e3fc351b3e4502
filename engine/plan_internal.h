// Inside the planner (engine/plan.cpp, plan_affine.cpp, plan_layers.cpp): the Planner,
// which walks a trace in execution order and lowers its nodes into plan steps. Not part of
// the engine's API.
#pragma once

#include <stdint.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/plan.h"

namespace ipg::plan_detail {

using trace::Graph;
using trace::Node;
using trace::Op;

// Stops planning with a message naming the node.
struct Refused {
  std::string why;
};

class Planner {
 public:
  explicit Planner(const Graph& g);
  Plan run();

 private:
  struct Chain {
    PlanStep step;
    int in = -1;   // trace value read
    int out = -1;  // trace value written (the last node's output)
    int residual = -1;  // Conv: the trace value added, lowered when the chain is emitted
    bool squeeze = false;  // the output is [n, k, 1, 1] in the trace, [n, k] in the plan
  };

  const Graph& g_;
  std::vector<std::vector<int>> consumers_;
  std::vector<bool> live_, done_;
  std::vector<int> pv_;                    // trace value -> plan value
  std::vector<std::pair<int, int>> pad_;   // zero pad absorbed: (source value, amount)
  // Trace values of shape [n, k, 1, 1] whose plan value is [n, k] (a global average pool
  // kept 4-D, squeeze-and-excitation's 1x1 convolutions and gate): only the steps that
  // read them as such (lowered_squeezed) may.
  std::vector<bool> squeezed_;
  std::map<int, Chain> tails_;             // chains waiting for their last node
  Plan plan_;

  const Shape& shape(int v) const { return g_.values[size_t(v)].shape(); }
  std::string where(int node) const;
  // The node that alone consumes v (v not the output) and is not yet in a chain, or -1.
  // (Both operands of a residual add may end a chain; the first to reach it takes it.)
  int sole_consumer(int v) const;
  const Node& node(int i) const { return g_.nodes[size_t(i)]; }
  std::vector<float> host(int v, int node_for_error) const;
  int lowered(int v, int node_for_error) const;
  // As lowered(), also for a squeezed value.
  int lowered_squeezed(int v, int node_for_error) const;
  bool squeezed(int v) const { return v >= 0 && squeezed_[size_t(v)]; }

  void emit(Chain& c);
  int producer(int v) const { return g_.producer[size_t(v)]; }
  // Marks node i as part of a chain whose last node it now is.
  void absorb(Chain& c, int i, const char* what);
  // Emits now (every operand is lowered) or when the walk reaches the chain's last node.
  void finish(Chain c, int first);

  // Per-channel constant of a [n, C, H, W] map: C values (or 1, broadcast), else empty.
  std::vector<float> per_channel(int v, int64_t channels, int node_for_error) const;

  // x * scale + shift from an arithmetic node with one constant operand; false if not.
  bool affine_of(int i, int x, std::vector<float>& scale, std::vector<float>& shift) const;
  // Eval-mode batch norm of x as x * scale + shift; false if not one.
  bool bn_affine(int i, int x, std::vector<float>& scale, std::vector<float>& shift) const;
  bool is_map(int v) const { return shape(v).size() == 4; }

  void start(int i);

  // Reads x through an absorbed zero pad: (value, extra padding).
  std::pair<int, int> through_pad(int x) const;

  // The lowerings, one per kind of node a chain starts at (plan_affine.cpp: affine;
  // plan_layers.cpp: the others).
  void conv(int i);
  void linear(int i);
  void affine(int i);
  void pool(int i);
  void zero_pad(int i);
  void reshape(int i);
  void activation(int i);
  void channel_scale(int i);
};

}  // namespace ipg::plan_detail
