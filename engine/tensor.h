// Tensor: a shared handle to contiguous row-major (NCHW) storage on one device, float32
// or int32, with the autodiff state of that value. Copies of a Tensor share everything;
// clone() copies the data.
#pragma once

#include <stdint.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"

namespace ipg {

using Shape = std::vector<int64_t>;

enum class DType { F32, I32 };
const char* dtype_name(DType t);
size_t dtype_size(DType t);

// "[2, 3, 4]"
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

struct Node;

// Device memory with its allocator; returned to the allocator's cache on destruction.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements; always the contiguous strides of shape
  DType dtype = DType::F32;
  Device device;
  bool requires_grad = false;        // set on leaves by the user
  std::shared_ptr<Node> grad_fn;     // set on op outputs that need a gradient
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves only)
};

class Generator;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialized storage.
  static Tensor empty(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::F32);
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, Device device = Device::cpu()) {
    return full(shape, 1.f, device);
  }
  // Copies `values` (size must equal the shape's element count).
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor from_vector_i32(const std::vector<int32_t>& values, const Shape& shape,
                                Device device = Device::cpu());
  // Philox streams: values depend on the generator's seed and position only.
  static Tensor uniform(const Shape& shape, float lo, float hi, Generator& gen,
                        Device device = Device::cpu());
  static Tensor normal(const Shape& shape, float mean, float stddev, Generator& gen,
                       Device device = Device::cpu());

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int ndim() const { return static_cast<int>(impl().shape.size()); }
  // Size of dimension d; negative d counts from the end.
  int64_t dim(int d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().device; }

  // Typed pointers to the first element; throw on a dtype mismatch.
  float* data();
  const float* data() const;
  int32_t* data_i32();
  const int32_t* data_i32() const;
  void* raw() const;

  // A copy on `device` (the same tensor when already there); not differentiable.
  Tensor to(Device device) const;
  Tensor cpu() const { return to(Device::cpu()); }
  std::vector<float> to_vector() const;
  std::vector<int32_t> to_vector_i32() const;
  // The single value of a one-element tensor.
  float item() const;
  // New storage with the same values, detached from the graph.
  Tensor clone() const;
  // Copies src's values into this tensor (same shape and dtype; any devices).
  void copy_from(const Tensor& src);
  // Sets every element (float tensors).
  void fill_(float value);

  // Rows [start, start+len) of dimension 0, sharing storage; not differentiable (used to
  // chunk batches of inputs, not inside graphs).
  Tensor narrow0(int64_t start, int64_t len) const;

  // Autodiff.
  bool requires_grad() const;  // a leaf marked by the user, or an op output needing grad
  Tensor& set_requires_grad(bool on);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // Accumulated gradient of a leaf (undefined before the first backward()).
  Tensor grad() const;
  void zero_grad();
  // Back-propagates from this tensor. A scalar may omit grad_output (taken as 1).
  void backward(const Tensor& grad_output = Tensor()) const;
  // Same storage, no graph: the value as a constant.
  Tensor detach() const;
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Contiguous strides of a shape, in elements.
Shape contiguous_strides(const Shape& s);

}  // namespace ipg
