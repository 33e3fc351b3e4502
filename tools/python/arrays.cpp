// numpy <-> tensor conversion for the Python module, with the checks a caller's array
// gets before any work: type, dtype, layout, shape and finite values, each refused with a
// message that says what was expected (bindings.h).
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "engine/device.h"
#include "tools/python/bindings.h"

namespace ipg::py {

namespace {

std::string shape_text(const pyb::array& a) {
  std::string s = "(";
  for (pyb::ssize_t d = 0; d < a.ndim(); ++d)
    s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string expected_shape(const std::vector<int64_t>& chw) {
  if (chw.empty()) return "(n, C, H, W)";
  return "(n, " + std::to_string(chw[0]) + ", " + std::to_string(chw[1]) + ", " +
         std::to_string(chw[2]) + ")";
}

}  // namespace

Device parse_device(const std::string& text) {
  if (text != "auto") {
    try {
      Device::parse(text);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("device '" + text + "': unknown device (auto, cpu, cuda or cuda:N)");
    }
  }
  return resolve_device(text, nullptr);
}

Tensor image_batch(const pyb::handle& x, const std::vector<int64_t>& chw, const std::string& what) {
  if (!pyb::isinstance<pyb::array>(x))
    throw std::invalid_argument(what + ": expected a numpy array, got " +
                                std::string(pyb::str(pyb::type::handle_of(x).attr("__name__"))));
  const pyb::array a = pyb::reinterpret_borrow<pyb::array>(x);
  if (!a.dtype().is(pyb::dtype::of<float>()))
    throw std::invalid_argument(what + ": expected dtype float32, got " +
                                std::string(pyb::str(a.dtype())) + " (x.astype(numpy.float32))");
  if (a.ndim() != 4)
    throw std::invalid_argument(what + ": expected shape " + expected_shape(chw) +
                                " (NCHW), got " + shape_text(a));
  for (size_t d = 0; d < chw.size(); ++d)
    if (a.shape(pyb::ssize_t(d) + 1) != chw[d])
      throw std::invalid_argument(what + ": expected shape " + expected_shape(chw) +
                                  " (NCHW), got " + shape_text(a));
  if (a.shape(0) < 1) throw std::invalid_argument(what + ": the batch is empty (n = 0)");
  if (!(a.flags() & pyb::array::c_style))
    throw std::invalid_argument(what + ": the array is not C-contiguous "
                                "(numpy.ascontiguousarray(x))");
  const Shape shape = {a.shape(0), a.shape(1), a.shape(2), a.shape(3)};
  Tensor t = Tensor::empty(shape);
  const float* src = static_cast<const float*>(a.data());
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(src[i]))
      throw std::invalid_argument(what + ": holds " + (std::isnan(src[i]) ? "NaN" : "an infinite value") +
                                  " (flat index " + std::to_string(i) + "); pixels must be finite");
  for (int64_t i = 0; i < n; ++i)
    if (src[i] < 0.f || src[i] > 1.f)
      throw std::invalid_argument(what + ": holds " + pyb::str(pyb::float_(src[i])).cast<std::string>() +
                                  " (flat index " + std::to_string(i) +
                                  "); pixels are in [0, 1] (divide 0-255 images by 255)");
  std::memcpy(t.data(), src, t.nbytes());
  return t;
}

std::optional<std::string> maybe_path(const pyb::handle& x) {
  std::optional<std::string> path;
  if (pyb::isinstance<pyb::str>(x)) {
    path = x.cast<std::string>();
  } else if (pyb::hasattr(x, "__fspath__")) {
    const pyb::object p = pyb::module_::import("os").attr("fspath")(x);
    if (pyb::isinstance<pyb::str>(p)) path = p.cast<std::string>();
  }
  if (path && path->empty()) throw std::invalid_argument("a file path is empty");
  return path;
}

uint64_t seed_arg(const pyb::handle& x) {
  if (!PyLong_Check(x.ptr()) || PyBool_Check(x.ptr()))
    throw pyb::type_error("seed must be an int, not " +
                          std::string(pyb::str(pyb::type::handle_of(x).attr("__name__"))));
  const unsigned long long v = PyLong_AsUnsignedLongLong(x.ptr());
  if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw std::invalid_argument("seed must be between 0 and 18446744073709551615, not " +
                                std::string(pyb::str(x)));
  }
  return static_cast<uint64_t>(v);
}

std::string path_arg(const pyb::handle& x, const std::string& what) {
  if (std::optional<std::string> p = maybe_path(x)) return *p;
  throw pyb::type_error(what + " must be a file path (str or os.PathLike), not " +
                        std::string(pyb::str(pyb::type::handle_of(x).attr("__name__"))));
}

pyb::array_t<float> to_numpy(const Tensor& t) {
  const Tensor c = t.cpu();
  std::vector<pyb::ssize_t> shape(c.shape().begin(), c.shape().end());
  pyb::array_t<float> a(shape);
  std::memcpy(a.mutable_data(), c.data(), c.nbytes());
  return a;
}

pyb::array_t<int32_t> to_numpy_i32(const Tensor& t) {
  const Tensor c = t.cpu();
  std::vector<pyb::ssize_t> shape(c.shape().begin(), c.shape().end());
  pyb::array_t<int32_t> a(shape);
  std::memcpy(a.mutable_data(), c.data_i32(), c.nbytes());
  return a;
}

}  // namespace ipg::py
