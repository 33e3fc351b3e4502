// HDF5 wrapper, attributes: opening and reading them (strings of any layout, numbers,
// the strict scalar readers of our own formats) and writing them.
#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "engine/hdf5_internal.h"

namespace ipg::h5 {

namespace detail {

namespace {

// A C string type: `size` bytes (or H5T_VARIABLE) with the given padding and encoding.
Handle string_type(size_t size, H5T_str_t pad, H5T_cset_t cset, const std::string& where) {
  Handle t = checked(H5Tcopy(H5T_C_S1), where, "cannot create string type");
  if (H5Tset_size(t.id(), size) < 0 || H5Tset_strpad(t.id(), pad) < 0 ||
      H5Tset_cset(t.id(), cset) < 0)
    fail_h5(where, "cannot create string type");
  return t;
}

}  // namespace

AttrRead open_attr(hid_t obj, const std::string& name, const std::string& where) {
  quiet();
  AttrRead a;
  a.where = where + "attribute " + quoted(name) + ": ";
  const htri_t there = H5Aexists(obj, name.c_str());
  if (there < 0) fail_h5(where, "cannot look up attribute " + quoted(name));
  if (there == 0) fail(where, "no attribute " + quoted(name));
  a.attr = checked(H5Aopen(obj, name.c_str(), H5P_DEFAULT), a.where, "cannot open");
  a.type = checked(H5Aget_type(a.attr.id()), a.where, "cannot read type");
  a.space = checked(H5Aget_space(a.attr.id()), a.where, "cannot read dataspace");
  a.dims = space_dims(a.space.id(), a.where);
  a.count = a.dims ? checked_count(*a.dims, kMaxAttributeElements, a.where) : 0;
  // Attribute values live in the file: a count beyond its size is a corrupt header, and
  // reading it would allocate for the claim.
  const double need = static_cast<double>(a.count) * static_cast<double>(H5Tget_size(a.type.id()));
  const double file = file_bytes(obj);
  if (file > 0 && need > file)
    fail(a.where, "declares " + std::to_string(a.count) + " values (" +
                      std::to_string(static_cast<int64_t>(need)) + " bytes) in a file of " +
                      std::to_string(static_cast<int64_t>(file)) + " bytes");
  return a;
}

std::vector<std::string> read_strings(const AttrRead& a) {
  const hid_t ftype = a.type.id();
  const size_t n = static_cast<size_t>(a.count);
  std::vector<std::string> out;
  // Keras stores an empty name list as np.asarray([]), a float64 array: any empty
  // attribute is an empty list, whatever its type.
  if (n == 0) return out;
  if (H5Tget_class(ftype) != H5T_STRING)
    fail(a.where, "expected strings, found " + type_name_of(ftype));
  out.reserve(n);
  const H5T_str_t pad = H5Tget_strpad(ftype);
  if (H5Tis_variable_str(ftype) > 0) {
    const Handle mem = string_type(H5T_VARIABLE, pad, H5Tget_cset(ftype), a.where);
    std::vector<char*> ptrs(n, nullptr);
    check(H5Aread(a.attr.id(), mem.id(), ptrs.data()), a.where, "cannot read");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem.id(), a.space.id(), H5P_DEFAULT, ptrs.data());
#else
    H5Dvlen_reclaim(mem.id(), a.space.id(), H5P_DEFAULT, ptrs.data());
#endif
    return out;
  }
  const size_t width = H5Tget_size(ftype);
  if (width == 0 || width > (size_t{1} << 30) / n) fail(a.where, "absurd string size");
  const Handle mem = string_type(width, pad, H5Tget_cset(ftype), a.where);
  std::vector<char> buf(width * n);
  check(H5Aread(a.attr.id(), mem.id(), buf.data()), a.where, "cannot read");
  for (size_t i = 0; i < n; ++i) {
    const char* s = buf.data() + i * width;
    size_t len = static_cast<size_t>(std::find(s, s + width, '\0') - s);
    if (pad == H5T_STR_SPACEPAD)
      while (len > 0 && s[len - 1] == ' ') --len;
    out.emplace_back(s, len);
  }
  return out;
}

// Reads a numeric attribute as `mem_type`, HDF5 converting the width.
template <typename T>
std::vector<T> read_numbers(const AttrRead& a, hid_t mem_type, bool integers_only) {
  const hid_t ftype = a.type.id();
  const bool ok = integers_only ? H5Tget_class(ftype) == H5T_INTEGER : is_numeric(ftype);
  if (!ok)
    fail(a.where, std::string("expected ") + (integers_only ? "an integer" : "a number") +
                      ", found " + type_name_of(ftype));
  std::vector<T> out(static_cast<size_t>(a.count));
  if (!out.empty()) check(H5Aread(a.attr.id(), mem_type, out.data()), a.where, "cannot read");
  return out;
}

template <typename T>
T single(const std::vector<T>& v, const AttrRead& a) {
  if (v.size() != 1) fail(a.where, "expected one value, found " + std::to_string(v.size()));
  return v[0];
}

// What the strict readers report about an attribute they refuse: "float64 scalar".
std::string described(const AttrRead& a) {
  const std::string shape = !a.dims           ? "null dataspace"
                            : a.dims->empty() ? "scalar"
                                              : shape_str(*a.dims);
  return type_name_of(a.type.id()) + " " + shape;
}

// For the strict readers: the attribute's class is `cls` and it holds one scalar value.
void expect_scalar(const AttrRead& a, H5T_class_t cls, const char* want) {
  if (H5Tget_class(a.type.id()) != cls || !a.dims || !a.dims->empty())
    fail(a.where, std::string("expected ") + want + " scalar, found " + described(a));
}

}  // namespace detail

using namespace detail;

// ---- Object: attributes ------------------------------------------------------------

bool Object::has_attr(const std::string& name) const {
  quiet();
  const htri_t there = H5Aexists(handle_.id(), name.c_str());
  if (there < 0) fail_h5(where(), "cannot look up attribute " + quoted(name));
  return there > 0;
}

std::vector<std::string> Object::attr_names() const {
  return attribute_names(handle_.id(), where());
}

std::string Object::attr_string(const std::string& name) const {
  const AttrRead a = open_attr(handle_.id(), name, where());
  return single(read_strings(a), a);
}

std::vector<std::string> Object::attr_strings(const std::string& name) const {
  return read_strings(open_attr(handle_.id(), name, where()));
}

std::vector<std::string> Object::attr_strings_chunked(const std::string& name) const {
  if (has_attr(name) || !has_attr(name + "0")) return attr_strings(name);
  std::vector<std::string> all;
  for (int chunk = 0; has_attr(name + std::to_string(chunk)); ++chunk) {
    const std::vector<std::string> part = attr_strings(name + std::to_string(chunk));
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

int64_t Object::attr_int(const std::string& name) const {
  const AttrRead a = open_attr(handle_.id(), name, where());
  return single(read_numbers<int64_t>(a, H5T_NATIVE_INT64, true), a);
}

double Object::attr_double(const std::string& name) const {
  const AttrRead a = open_attr(handle_.id(), name, where());
  return single(read_numbers<double>(a, H5T_NATIVE_DOUBLE, false), a);
}

std::vector<float> Object::attr_floats(const std::string& name) const {
  return read_numbers<float>(open_attr(handle_.id(), name, where()), H5T_NATIVE_FLOAT, false);
}

int64_t Object::scalar_int(const std::string& name) const {
  const AttrRead a = open_attr(handle_.id(), name, where());
  expect_scalar(a, H5T_INTEGER, "an integer");
  return single(read_numbers<int64_t>(a, H5T_NATIVE_INT64, true), a);
}

double Object::scalar_float(const std::string& name) const {
  const AttrRead a = open_attr(handle_.id(), name, where());
  expect_scalar(a, H5T_FLOAT, "a float");
  return single(read_numbers<double>(a, H5T_NATIVE_DOUBLE, false), a);
}

std::string Object::scalar_string(const std::string& name) const {
  const AttrRead a = open_attr(handle_.id(), name, where());
  expect_scalar(a, H5T_STRING, "a string");
  return single(read_strings(a), a);
}

std::vector<float> Object::float_vector(const std::string& name, int64_t n) const {
  const AttrRead a = open_attr(handle_.id(), name, where());
  if (H5Tget_class(a.type.id()) != H5T_FLOAT || !a.dims || *a.dims != Shape{n})
    fail(a.where, "expected float [" + std::to_string(n) + "], found " + described(a));
  return read_numbers<float>(a, H5T_NATIVE_FLOAT, false);
}

namespace {

// Replaces attribute `name` of `obj` with `count` elements (a scalar when count < 0).
void write_attr(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type, int64_t count,
                const void* data, const std::string& where) {
  quiet();
  const std::string w = where + "attribute " + quoted(name) + ": ";
  const htri_t there = H5Aexists(obj, name.c_str());
  if (there < 0) fail_h5(w, "cannot look up");
  if (there > 0) check(H5Adelete(obj, name.c_str()), w, "cannot replace");
  Handle space;
  if (count < 0) {
    space = checked(H5Screate(H5S_SCALAR), w, "cannot create dataspace");
  } else {
    const hsize_t dim = static_cast<hsize_t>(count);
    space = checked(H5Screate_simple(1, &dim, nullptr), w, "cannot create dataspace");
  }
  Handle attr =
      checked(H5Acreate2(obj, name.c_str(), file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT), w,
              "cannot create");
  if (count != 0) check(H5Awrite(attr.id(), mem_type, data), w, "cannot write");
}

}  // namespace

void Object::set_attr_string(const std::string& name, const std::string& value) {
  const Handle t = string_type(H5T_VARIABLE, H5T_STR_NULLTERM, H5T_CSET_UTF8, where());
  const char* p = value.c_str();
  write_attr(handle_.id(), name, t.id(), t.id(), -1, &p, where());
}

void Object::set_attr_strings(const std::string& name, const std::vector<std::string>& values,
                              StringLayout layout) {
  const int64_t n = static_cast<int64_t>(values.size());
  if (layout == StringLayout::Variable) {
    const Handle t = string_type(H5T_VARIABLE, H5T_STR_NULLTERM, H5T_CSET_UTF8, where());
    std::vector<const char*> ptrs;
    for (const std::string& s : values) ptrs.push_back(s.c_str());
    write_attr(handle_.id(), name, t.id(), t.id(), n, ptrs.data(), where());
    return;
  }
  size_t width = 1;
  for (const std::string& s : values) width = std::max(width, s.size());
  const Handle t = string_type(width, H5T_STR_NULLPAD, H5T_CSET_ASCII, where());
  std::vector<char> buf(width * values.size(), '\0');
  for (size_t i = 0; i < values.size(); ++i)
    std::memcpy(buf.data() + i * width, values[i].data(), values[i].size());
  write_attr(handle_.id(), name, t.id(), t.id(), n, buf.data(), where());
}

void Object::set_attr_int(const std::string& name, int64_t value) {
  write_attr(handle_.id(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, -1, &value, where());
}

void Object::set_attr_double(const std::string& name, double value) {
  write_attr(handle_.id(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, -1, &value, where());
}

void Object::set_attr_floats(const std::string& name, const std::vector<float>& values) {
  write_attr(handle_.id(), name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
             static_cast<int64_t>(values.size()), values.data(), where());
}

}  // namespace ipg::h5
