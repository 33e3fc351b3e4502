// HDF5 wrapper, datasets and groups: reading a dataset as a tensor or as floats (refusing
// what the file does not store), navigating groups, creating groups and writing datasets.
#include <hdf5.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/hdf5.h"
#include "engine/hdf5_internal.h"

namespace ipg::h5 {

using namespace detail;

namespace {

bool matches(hid_t type, DType want) {
  if (H5Tget_size(type) != 4) return false;
  if (want == DType::F32) return H5Tget_class(type) == H5T_FLOAT;
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
}

hid_t native_type(DType t) { return t == DType::F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32; }

// Creation properties without timestamps (HDF5 records them in object headers by
// default): the same content saved twice gives the same bytes, so a shipped file's
// SHA-256 can be remade.
Handle untimed_plist(hid_t cls, const std::string& where) {
  Handle plist = checked(H5Pcreate(cls), where, "cannot create property list");
  check(H5Pset_obj_track_times(plist.id(), 0), where, "cannot create property list");
  return plist;
}

}  // namespace

// ---- Dataset -----------------------------------------------------------------------

Shape Dataset::shape() const {
  quiet();
  const Handle space = checked(H5Dget_space(handle_.id()), where(), "cannot read dataspace");
  const std::optional<Shape> dims = space_dims(space.id(), where());
  if (!dims) fail(where(), "dataset has a null dataspace (no data)");
  return *dims;
}

std::string Dataset::type_name() const {
  quiet();
  const Handle type = checked(H5Dget_type(handle_.id()), where(), "cannot read type");
  return type_name_of(type.id());
}

Tensor Dataset::read(DType dtype) const {
  quiet();
  const Shape s = shape();
  const Handle type = checked(H5Dget_type(handle_.id()), where(), "cannot read type");
  if (!matches(type.id(), dtype))
    fail(where(), std::string("expected ") + dtype_name(dtype) + ", found " +
                      type_name_of(type.id()) + " " + shape_str(s));
  const int64_t n = checked_count(s, kMaxDatasetElements, where());
  check_stored(handle_.id(), type.id(), n, where());
  Tensor t = Tensor::empty(s, Device::cpu(), dtype);
  if (n > 0)
    check(H5Dread(handle_.id(), native_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()),
          where(), "cannot read " + shape_str(s) + " " + type_name_of(type.id()) + " data");
  return t;
}

Tensor Dataset::read(DType dtype, const Shape& expected) const {
  const Shape s = shape();
  if (s != expected)
    fail(where(), "expected shape " + shape_str(expected) + ", found " + shape_str(s));
  return read(dtype);
}

std::vector<float> Dataset::read_floats(Shape* shape_out) const {
  quiet();
  const Shape s = shape();
  const Handle type = checked(H5Dget_type(handle_.id()), where(), "cannot read type");
  if (!is_numeric(type.id()))
    fail(where(), "expected numbers, found " + type_name_of(type.id()) + " " + shape_str(s));
  const int64_t n = checked_count(s, kMaxDatasetElements, where());
  check_stored(handle_.id(), type.id(), n, where());
  std::vector<float> v(static_cast<size_t>(n));
  if (!v.empty())
    check(H5Dread(handle_.id(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), where(),
          "cannot read " + shape_str(s) + " " + type_name_of(type.id()) + " data");
  if (shape_out) *shape_out = s;
  return v;
}

// ---- Group -------------------------------------------------------------------------

bool Group::exists(const std::string& name) const {
  quiet();
  // H5Lexists fails rather than answering false when an intermediate group is missing,
  // so each prefix is checked in turn ("a", "a/b", "a/b/c").
  for (size_t p = name.find('/', 1);; p = name.find('/', p + 1)) {
    const std::string prefix = name.substr(0, p);
    if (!prefix.empty() && prefix.back() != '/' &&
        H5Lexists(handle_.id(), prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (p == std::string::npos) return true;
  }
}

namespace {

H5I_type_t object_type(hid_t parent, const std::string& name) {
  const Handle h(H5Oopen(parent, name.c_str(), H5P_DEFAULT));
  return h.valid() ? H5Iget_type(h.id()) : H5I_BADID;
}

// Opens `name` under `parent` as an object of type `want`, or throws.
Handle open_child(const Group& parent, const std::string& name, H5I_type_t want,
                  const std::string& where) {
  const char* kind = want == H5I_GROUP ? "group" : "dataset";
  if (!parent.exists(name)) fail(where, std::string("no such ") + kind);
  Handle h = checked(H5Oopen(parent.id(), name.c_str(), H5P_DEFAULT), where,
                     std::string("cannot open ") + kind);
  if (H5Iget_type(h.id()) != want) fail(where, std::string("is not a ") + kind);
  return h;
}

}  // namespace

bool Group::is_group(const std::string& name) const {
  return exists(name) && object_type(handle_.id(), name) == H5I_GROUP;
}

bool Group::is_dataset(const std::string& name) const {
  return exists(name) && object_type(handle_.id(), name) == H5I_DATASET;
}

std::vector<std::string> Group::children() const { return link_names(handle_.id(), where()); }

Group Group::group(const std::string& name) const {
  quiet();
  return Group(open_child(*this, name, H5I_GROUP, where(name)), file_, child_path(name));
}

Dataset Group::dataset(const std::string& name) const {
  quiet();
  return Dataset(open_child(*this, name, H5I_DATASET, where(name)), file_, child_path(name));
}

Group Group::create_group(const std::string& name) {
  quiet();
  if (exists(name)) return group(name);
  // Level by level rather than through HDF5's intermediate-group creation, which would
  // give the intermediate groups default (timestamped) properties.
  const Handle gcpl = untimed_plist(H5P_GROUP_CREATE, where(name));
  for (size_t p = name.find('/', 1);; p = name.find('/', p + 1)) {
    const std::string prefix = name.substr(0, p);
    if (!prefix.empty() && prefix.back() != '/' && !exists(prefix))
      checked(H5Gcreate2(handle_.id(), prefix.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT),
              where(prefix), "cannot create group");
    if (p == std::string::npos) break;
  }
  return group(name);
}

Dataset Group::write(const std::string& name, const Tensor& t) {
  quiet();
  const std::string w = where(name);
  if (!t.defined()) fail(w, "cannot write an undefined tensor");
  if (exists(name)) fail(w, "already exists");
  const Tensor host = t.cpu();
  std::vector<hsize_t> dims(host.shape().begin(), host.shape().end());
  const Handle space =
      checked(dims.empty() ? H5Screate(H5S_SCALAR)
                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
              w, "cannot create dataspace for " + shape_str(host.shape()));
  const hid_t file_type = host.dtype() == DType::F32 ? H5T_IEEE_F32LE : H5T_STD_I32LE;
  const size_t slash = name.rfind('/');
  if (slash != std::string::npos && slash > 0) create_group(name.substr(0, slash));
  const Handle dcpl = untimed_plist(H5P_DATASET_CREATE, w);
  Handle ds = checked(H5Dcreate2(handle_.id(), name.c_str(), file_type, space.id(), H5P_DEFAULT,
                                 dcpl.id(), H5P_DEFAULT),
                      w, "cannot create dataset");
  if (host.numel() > 0)
    check(H5Dwrite(ds.id(), native_type(host.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, host.raw()),
          w, "cannot write");
  return Dataset(std::move(ds), file_, child_path(name));
}

}  // namespace ipg::h5
