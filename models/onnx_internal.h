// Internal pieces of the ONNX reader (models/onnx_model.h), shared by its source files:
// host-side constants and attributes (onnx_tensor.cpp), the constant folding done at
// load time (onnx_fold.cpp; its operations on host tensors: onnx_host_ops.cpp) and the
// runtime operators (onnx_ops.cpp; the layers with weights and windows: onnx_layers.cpp).
// The file checks and the network are in onnx_model.cpp, the passes over the graph in
// onnx_graph.cpp and onnx_steps.cpp (onnx_load_internal.h). Not part of the models layer's
// interface.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace onnx {
class AttributeProto;
class GraphProto;
class ModelProto;
class NodeProto;
class TensorProto;
}  // namespace onnx

namespace ipg::onnx_detail {

// In a constant shape (the output of Shape on a value computed from the input): the batch
// size, known only when the network runs. Reshape resolves it; arithmetic on it is refused.
constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();

// Limits that keep a hostile file from asking for more than it could ever hold.
constexpr int64_t kMaxFileBytes = int64_t(1) << 30;    // 1 GiB
constexpr int64_t kMaxNodes = 100000;
constexpr int64_t kMaxElements = int64_t(1) << 26;    // per tensor (per input row at run time)
// A tensor stored in the file (an initializer or a Constant's value) carries its data, so
// the file's own limit bounds it: VGG's first classifier layer at 224x224 has 102.8 million
// weights, above kMaxElements.
constexpr int64_t kMaxStoredElements = kMaxFileBytes / 4;
constexpr int kMaxRank = 8;
// Constants folded at load may total twice the file's weights plus this many elements.
constexpr int64_t kFoldSlack = int64_t(1) << 24;

// A constant: an initializer, a Constant node, or a value folded from them at load time.
// Float data are float32 (float, double and float16 initializers are refused unless
// float32); integer data are int64 (int32 and int64 are accepted).
struct HostTensor {
  bool is_int = false;
  Shape shape;
  std::vector<float> f;
  std::vector<int64_t> i;
  int64_t numel() const;
  double value(size_t k) const { return is_int ? double(i[k]) : double(f[k]); }
};

// Thrown while loading: the loader adds the file, node index and name.
struct OnnxError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A refusal that holds only while the batch is a symbol first in every shape (the batch
// size in arithmetic, a reshape or transpose that moves it): the loader then builds the
// graph per batch size instead (GraphIndex::fixed_batch, onnx_load_internal.h).
struct BatchRuleError : OnnxError {
  using OnnxError::OnnxError;
};

// The elements of `s`, refused (naming `what`) above `limit`, a rank above kMaxRank, or,
// inside a FoldBudget, above what folded constants may still hold.
int64_t checked_numel(const Shape& s, const std::string& what, int64_t limit = kMaxElements);

// While it lives (on this thread), a constant folded at load may have at most `left`
// elements: the loader's bound on folding, checked before a fold allocates its result.
class FoldBudget {
 public:
  explicit FoldBudget(int64_t left);
  ~FoldBudget();
  FoldBudget(const FoldBudget&) = delete;
  FoldBudget& operator=(const FoldBudget&) = delete;

 private:
  int64_t saved_;
};
std::string shape_text(const Shape& s);

// TensorProto -> HostTensor, checking the type, dims and the data's size.
HostTensor read_tensor(const onnx::TensorProto& t, const std::string& what);

// Attributes of a node, with the default when absent; a present attribute of the wrong
// type is an OnnxError naming it.
const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const char* name);
int64_t attr_int(const onnx::NodeProto& n, const char* name, int64_t def);
float attr_float(const onnx::NodeProto& n, const char* name, float def);
std::string attr_string(const onnx::NodeProto& n, const char* name, const std::string& def);
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const char* name,
                               const std::vector<int64_t>& def);
// Every attribute of n must be one of `known` (else "attribute X is not supported").
void check_attrs(const onnx::NodeProto& n, const std::vector<const char*>& known);

// Constant folding: evaluates node n on constant inputs (absent optional inputs are
// nullptr). Returns false when the operator has no constant evaluation here (the
// caller then treats it as a runtime operator).
bool fold_constant(const onnx::NodeProto& n, const std::vector<const HostTensor*>& in,
                   std::vector<HostTensor>& out);

// Host tensor <-> engine tensor (float32; integer constants become float).
Tensor to_tensor(const HostTensor& h);
HostTensor from_tensor(const Tensor& t);

// A value while loading or running: a constant, or a tensor computed from the input
// (its shape known from the load-time run on one row, dim 0 being the batch).
struct Value {
  bool known = false;     // produced yet
  bool is_const = false;
  // is_const: the value, shared, so that copies of a graph's index (one per batch size
  // built, models/onnx_model.cpp) do not copy its weights.
  std::shared_ptr<const HostTensor> data;
  Shape shape;            // !is_const: the shape seen at load time (batch 1)
  const HostTensor& c() const { return *data; }
  void set(HostTensor h) { data = std::make_shared<const HostTensor>(std::move(h)); }
};

// A runtime operator: its input values' tensors (constants it needs are captured) ->
// its output tensor.
using RunFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Makes the runtime operator for node n. in: the node's input values (nullptr for an
// absent optional input); constant operands the op needs as tensors are made through
// `keep` (which registers them with the network so they move with it between devices)
// and captured by the returned function. runtime_inputs: filled with the indices (into
// n's inputs) of the values the function takes at run time, in order. Throws OnnxError
// for an unsupported operator, attribute or operand. ctx.opset: the graph's, where an
// operator's meaning changed (Softmax's axis at 13).
using KeepFn = std::function<Tensor*(const HostTensor&, const std::string& name)>;
struct OpContext {
  int64_t declared_batch = -1;  // the input's dimension 0 when the file fixes it, else -1
  int64_t opset = 13;
  // The graph specialized to one batch size (onnx_steps.cpp): every shape is a number, the
  // batch may sit in any dimension (attention's [T, n * heads, d]), and the operators do
  // not check that it stays first: the loader checks instead that rows run together give
  // the logits they give alone.
  bool fixed_batch = false;
};
RunFn make_op(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep,
              std::vector<int>& runtime_inputs, const OpContext& ctx);

// Operand helpers of the runtime operators (onnx_layers.cpp). constant: input k, which
// must be present and constant ("what" names it in the error); present: whether input k
// is given; to_int: a size or amount in [0, 4096]; map_shape: an [n, C, H, W] value's
// load-time shape.
const HostTensor& constant(const std::vector<const Value*>& in, size_t k, const char* what);
bool present(const std::vector<const Value*>& in, size_t k);
int to_int(int64_t v, const char* what);
const Shape& map_shape(const Value& v, const char* op);

// The layers of make_op (onnx_layers.cpp): Conv, MaxPool/AveragePool, Gemm/MatMul with
// constant weights (a MatMul of two computed values: batched), Concat.
RunFn make_conv(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep);
RunFn make_pool(const onnx::NodeProto& n, const std::vector<const Value*>& in, bool max);
RunFn make_gemm(const onnx::NodeProto& n, const std::vector<const Value*>& in, const KeepFn& keep,
                const OpContext& ctx);
RunFn make_concat(const onnx::NodeProto& n, const std::vector<const Value*>& in,
                  const KeepFn& keep, const OpContext& ctx);

// The operators the reader takes, for the "not supported" message.
const std::vector<std::string>& supported_ops();

}  // namespace ipg::onnx_detail
