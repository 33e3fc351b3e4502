// Test support: ONNX graphs built in a test with libonnx's protobuf classes (a Builder
// with one image input "x" [n, c, h, w] and output "y", opset 13; attribute helpers) and
// the loader's error for one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "models/onnx_model.h"
#include "onnx/onnx_pb.h"

namespace ipg::testing {

// A graph with input "x" [n, c, h, w], output "y", opset 13.
struct Builder {
  onnx::ModelProto m;
  onnx::GraphProto* g;
  explicit Builder(int c = 2, int h = 6, int w = 6) {
    m.set_ir_version(8);
    m.add_opset_import()->set_version(13);
    g = m.mutable_graph();
    auto* in = g->add_input();
    in->set_name("x");
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("n");
    for (int d : {c, h, w}) tt->mutable_shape()->add_dim()->set_dim_value(d);
    g->add_output()->set_name("y");
  }
  // g points into m: a copy points into its own (a member-wise copy would keep the
  // source's pointer, which `b = classifier()` leaves dangling).
  Builder(const Builder& o) : m(o.m), g(m.mutable_graph()) {}
  Builder& operator=(const Builder& o) {
    m = o.m;
    g = m.mutable_graph();
    return *this;
  }
  onnx::NodeProto* node(const std::string& op, std::vector<std::string> in,
                        std::vector<std::string> out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(g->node_size() - 1));
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }
  onnx::TensorProto* init(const std::string& name, std::vector<int64_t> dims,
                          std::vector<float> v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    for (float f : v) t->add_float_data(f);
    return t;
  }
  onnx::TensorProto* init_i64(const std::string& name, std::vector<int64_t> v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(int64_t(v.size()));
    for (auto x : v) t->add_int64_data(x);
    return t;
  }
  std::string bytes() const { return m.SerializeAsString(); }
};

inline void attr_ints(onnx::NodeProto* n, const char* name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}
inline void attr_int(onnx::NodeProto* n, const char* name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void attr_float(onnx::NodeProto* n, const char* name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

// The loader's one-line error for a graph ("(loaded)" when it loads).
inline std::string load_error(const std::string& bytes) {
  try {
    load_onnx_bytes(bytes, "t.onnx");
  } catch (const FileError& e) {
    return e.what();
  }
  return "(loaded)";
}

}  // namespace ipg::testing
