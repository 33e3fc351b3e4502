// Tensor construction, copies between devices, and views.
#include "engine/tensor.h"

#include <cstring>
#include <sstream>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/random.h"
#include "engine/replay.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/random.h"
#if IPG_HAS_CUDA
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/random.h"
#endif

namespace ipg {

const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : "int32"; }
size_t dtype_size(DType) { return 4; }

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev) {
  data = CachingAllocator::for_device(dev).allocate(nbytes);
}

Storage::~Storage() { CachingAllocator::for_device(device).release(data, bytes); }

namespace detail {

[[noreturn]] void no_cuda_backend(const char* op) {
  throw DeviceError(std::string(op) + ": tensor on CUDA but this build has no CUDA backend");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device())
    throw DeviceError(std::string(op) + ": tensors on different devices: " + a.device().str() +
                      " and " + b.device().str());
}

void check_dtype(const char* op, const Tensor& t, DType want) {
  if (t.dtype() != want)
    throw std::invalid_argument(std::string(op) + ": expected a " + dtype_name(want) +
                                " tensor, got " + dtype_name(t.dtype()));
}

#if IPG_HAS_CUDA
cudaStream_t cuda_stream(Device d) {
  kernels::cuda::set_device(d.index);
  return kernels::cuda::stream(d.index);
}
#endif

}  // namespace detail

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  for (int64_t d : shape)
    if (d < 0) throw ShapeError("empty: negative dimension in shape " + shape_str(shape));
  if (device.is_cuda() && !cuda_available())
    throw DeviceError("cannot create a tensor on " + device.str() + ": CUDA not available (" +
                      cuda_unavailable_reason() + ")");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(
      static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, Device device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  if (t.nbytes() == 0) return t;
  IPG_ON_DEVICE("zeros", device, std::memset(t.raw(), 0, t.nbytes()),
                kernels::cuda::memset_async(t.raw(), 0, t.nbytes(), stream));
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw ShapeError("from_vector: " + std::to_string(values.size()) + " values for shape " +
                     shape_str(shape));
  Tensor t = empty(shape, device);
  if (t.nbytes() == 0) return t;  // an empty vector's data() may be null: no memcpy
  IPG_ON_DEVICE("from_vector", device, std::memcpy(t.raw(), values.data(), t.nbytes()),
                kernels::cuda::copy_host_to_device(t.raw(), values.data(), t.nbytes(), stream));
  return t;
}

Tensor Tensor::from_vector_i32(const std::vector<int32_t>& values, const Shape& shape,
                               Device device) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw ShapeError("from_vector_i32: " + std::to_string(values.size()) + " values for shape " +
                     shape_str(shape));
  Tensor t = empty(shape, device, DType::I32);
  if (t.nbytes() == 0) return t;
  IPG_ON_DEVICE("from_vector_i32", device, std::memcpy(t.raw(), values.data(), t.nbytes()),
                kernels::cuda::copy_host_to_device(t.raw(), values.data(), t.nbytes(), stream));
  return t;
}

Tensor Tensor::uniform(const Shape& shape, float lo, float hi, Generator& gen, Device device) {
  Tensor t = empty(shape, device);
  const int64_t n = t.numel();
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  IPG_ON_DEVICE("uniform", device,
                kernels::cpu::fill_uniform(t.data(), n, gen.seed(), offset, lo, hi),
                kernels::cuda::fill_uniform(t.data(), n, gen.seed(), offset, lo, hi, stream));
  return t;
}

Tensor Tensor::normal(const Shape& shape, float mean, float stddev, Generator& gen, Device device) {
  Tensor t = empty(shape, device);
  const int64_t n = t.numel();
  const uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  IPG_ON_DEVICE("normal", device,
                kernels::cpu::fill_normal(t.data(), n, gen.seed(), offset, mean, stddev),
                kernels::cuda::fill_normal(t.data(), n, gen.seed(), offset, mean, stddev, stream));
  return t;
}

TensorImpl& Tensor::impl() const {
  if (!impl_) throw std::logic_error("use of an undefined Tensor");
  return *impl_;
}

int64_t Tensor::dim(int d) const {
  const int n = ndim();
  const int k = d < 0 ? d + n : d;
  if (k < 0 || k >= n)
    throw ShapeError("dim(" + std::to_string(d) + ") out of range for shape " + shape_str(shape()));
  return impl().shape[k];
}

void* Tensor::raw() const {
  auto& im = impl();
  return static_cast<char*>(im.storage->data) + im.offset * dtype_size(im.dtype);
}

float* Tensor::data() {
  detail::check_dtype("data", *this, DType::F32);
  return static_cast<float*>(raw());
}
const float* Tensor::data() const {
  detail::check_dtype("data", *this, DType::F32);
  return static_cast<const float*>(raw());
}
int32_t* Tensor::data_i32() {
  detail::check_dtype("data_i32", *this, DType::I32);
  return static_cast<int32_t*>(raw());
}
const int32_t* Tensor::data_i32() const {
  detail::check_dtype("data_i32", *this, DType::I32);
  return static_cast<const int32_t*>(raw());
}

void Tensor::copy_from(const Tensor& src) {
  if (src.shape() != shape() || src.dtype() != dtype())
    throw ShapeError("copy_from: source " + shape_str(src.shape()) + " " + dtype_name(src.dtype()) +
                     " into " + shape_str(shape()) + " " + dtype_name(dtype()));
  const size_t n = nbytes();
  if (n == 0) return;
  const Device s = src.device(), d = device();
  if (s.is_cpu() && d.is_cpu()) {
    std::memcpy(raw(), src.raw(), n);
    return;
  }
#if IPG_HAS_CUDA
  if (s.is_cpu())
    kernels::cuda::copy_host_to_device(raw(), src.raw(), n, detail::cuda_stream(d));
  else if (d.is_cpu())
    kernels::cuda::copy_device_to_host(raw(), src.raw(), n, detail::cuda_stream(s));
  else if (s == d)
    kernels::cuda::copy_device_to_device(raw(), src.raw(), n, detail::cuda_stream(d));
  else {
    // Across GPUs: stage through the host (rare; keeps the stream model simple).
    Tensor host = src.cpu();
    copy_from(host);
  }
#else
  detail::no_cuda_backend("copy_from");
#endif
}

void Tensor::fill_(float value) {
  detail::check_dtype("fill_", *this, DType::F32);
  IPG_ON_DEVICE("fill_", device(), kernels::cpu::fill(data(), value, numel()),
                kernels::cuda::fill(data(), value, numel(), stream));
}

Tensor Tensor::to(Device device) const {
  // Every read back (to_vector, item, cpu()) comes through here: refused inside a CPU
  // replay, as a CUDA capture would refuse it (engine/replay.h).
  if (device.is_cpu()) detail::check_host_read("a copy to the host");
  if (device == this->device()) return *this;
  Tensor t = empty(shape(), device, dtype());
  t.copy_from(*this);
  return t;
}

std::vector<float> Tensor::to_vector() const {
  detail::check_dtype("to_vector", *this, DType::F32);
  Tensor c = cpu();
  const float* p = c.data();
  return std::vector<float>(p, p + c.numel());
}

std::vector<int32_t> Tensor::to_vector_i32() const {
  detail::check_dtype("to_vector_i32", *this, DType::I32);
  Tensor c = cpu();
  const int32_t* p = c.data_i32();
  return std::vector<int32_t>(p, p + c.numel());
}

float Tensor::item() const {
  if (numel() != 1)
    throw ShapeError("item: tensor of shape " + shape_str(shape()) + " has " +
                     std::to_string(numel()) + " elements, not 1");
  if (dtype() == DType::I32) return static_cast<float>(to_vector_i32()[0]);
  return to_vector()[0];
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), device(), dtype());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::narrow0(int64_t start, int64_t len) const {
  if (ndim() == 0 || start < 0 || len < 0 || start + len > dim(0))
    throw ShapeError("narrow0: rows [" + std::to_string(start) + ", " +
                     std::to_string(start + len) + ") of shape " + shape_str(shape()));
  auto im = std::make_shared<TensorImpl>();
  im->storage = impl().storage;
  im->shape = shape();
  im->shape[0] = len;
  im->strides = contiguous_strides(im->shape);
  im->offset = impl().offset + start * (ndim() > 1 ? strides()[0] : 1);
  im->dtype = dtype();
  im->device = device();
  return Tensor(std::move(im));
}

bool Tensor::requires_grad() const { return impl().requires_grad || impl().grad_fn; }

Tensor& Tensor::set_requires_grad(bool on) {
  if (!is_leaf())
    throw std::logic_error("set_requires_grad: only leaf tensors (not op results) can be marked");
  if (on && dtype() != DType::F32)
    throw std::invalid_argument("set_requires_grad: int32 tensors have no gradient");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::zero_grad() { impl().grad.reset(); }

void Tensor::backward(const Tensor& grad_output) const { autograd::backward(*this, grad_output); }

Tensor Tensor::detach() const {
  auto im = std::make_shared<TensorImpl>();
  im->storage = impl().storage;
  im->offset = impl().offset;
  im->shape = shape();
  im->strides = strides();
  im->dtype = dtype();
  im->device = device();
  return Tensor(std::move(im));
}

}  // namespace ipg
