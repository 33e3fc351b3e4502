// HDF5 wrapper: every C API call is checked, and a failure becomes a FileError carrying
// the innermost message of HDF5's error stack (the one that says what was wrong, e.g.
// "truncated file: eof = 1024, ..." rather than "unable to open file").
#include "engine/hdf5.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <type_traits>

#include "engine/hdf5_internal.h"

namespace ipg::h5 {

static_assert(std::is_same_v<hid_t, int64_t>, "Handle stores identifiers as int64_t");

namespace detail {

// Both the auto-print setting and the error stack are per thread in a thread-safe HDF5
// build, so every thread that touches a handle silences its own printing once.
void quiet() {
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

namespace {

herr_t take_innermost(unsigned n, const H5E_error2_t* err, void* out) {
  if (n == 0 && err->desc) *static_cast<std::string*>(out) = err->desc;
  return 0;
}

std::string hdf5_detail() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &msg);
  H5Eclear2(H5E_DEFAULT);
  // HDF5's messages can quote what it decoded from a corrupt file.
  return printable(msg, 200);
}

}  // namespace

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw FileError(where + what);
}

[[noreturn]] void fail_h5(const std::string& where, const std::string& what) {
  const std::string detail = hdf5_detail();
  throw FileError(where + what + (detail.empty() ? "" : " (HDF5: " + detail + ")"));
}

Handle checked(hid_t id, const std::string& where, const std::string& what) {
  if (id < 0) fail_h5(where, what);
  return Handle(id);
}

void check(herr_t rc, const std::string& where, const std::string& what) {
  if (rc < 0) fail_h5(where, what);
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::optional<Shape> space_dims(hid_t space, const std::string& where) {
  const H5S_class_t cls = H5Sget_simple_extent_type(space);
  if (cls == H5S_NULL) return std::nullopt;
  const int rank = H5Sget_simple_extent_ndims(space);
  if ((cls != H5S_SCALAR && cls != H5S_SIMPLE) || rank < 0) fail_h5(where, "unreadable dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  Shape s;
  for (hsize_t d : dims) {
    if (d > static_cast<hsize_t>(std::numeric_limits<int64_t>::max()))
      fail(where, "absurd dimension " + std::to_string(d));
    s.push_back(static_cast<int64_t>(d));
  }
  return s;
}

int64_t checked_count(const Shape& dims, int64_t limit, const std::string& where) {
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) return 0;
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d > limit || n > limit / d)
      fail(where, "claims more than " + std::to_string(limit) + " elements; refusing to read");
    n *= d;
  }
  return n;
}

std::string type_name_of(hid_t type) {
  const std::string bits = std::to_string(H5Tget_size(type) * 8);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return "float" + bits;
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + bits;
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    default:
      return "non-numeric";
  }
}

double file_bytes(hid_t obj) {
  const Handle file(H5Iget_file_id(obj));
  hsize_t size = 0;
  if (!file.valid() || H5Fget_filesize(file.id(), &size) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0;
  }
  return static_cast<double>(size);
}

namespace {

// A C string type: `size` bytes (or H5T_VARIABLE) with the given padding and encoding.
Handle string_type(size_t size, H5T_str_t pad, H5T_cset_t cset, const std::string& where) {
  Handle t = checked(H5Tcopy(H5T_C_S1), where, "cannot create string type");
  if (H5Tset_size(t.id(), size) < 0 || H5Tset_strpad(t.id(), pad) < 0 ||
      H5Tset_cset(t.id(), cset) < 0)
    fail_h5(where, "cannot create string type");
  return t;
}

bool is_numeric(hid_t type) {
  const H5T_class_t c = H5Tget_class(type);
  return c == H5T_INTEGER || c == H5T_FLOAT;
}

bool matches(hid_t type, DType want) {
  if (H5Tget_size(type) != 4) return false;
  if (want == DType::F32) return H5Tget_class(type) == H5T_FLOAT;
  return H5Tget_class(type) == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
}

hid_t native_type(DType t) { return t == DType::F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32; }

}  // namespace

// Refuses to read `n` elements of `file_type` that the file does not hold. HDF5 allocates
// a dataset's storage lazily and reads fill values where none was written, so without
// this a file of a few hundred bytes can declare 2^32 elements and have us allocate and
// fill 16 GiB. Contiguous and compact data must be stored in full; chunked data may be
// compressed, by at most 1:1024 (deflate's limit), or stored sparsely, which we refuse
// beyond that ratio; virtual datasets and external raw files (other files' bytes) are
// refused. A corrupt layout message can also claim storage the file does not have (and
// have us allocate for it): neither the claim nor the data may exceed what the file's
// size allows.
void check_stored(hid_t ds, hid_t file_type, int64_t n, const std::string& where) {
  if (n == 0) return;
  const Handle dcpl = checked(H5Dget_create_plist(ds), where, "cannot read creation properties");
  const H5D_layout_t layout = H5Pget_layout(dcpl.id());
  if (layout == H5D_VIRTUAL) fail(where, "virtual datasets are not read");
  const int external = H5Pget_external_count(dcpl.id());
  if (external != 0) fail(where, "data in external files is not read");
  const double need = static_cast<double>(n) * static_cast<double>(H5Tget_size(file_type));
  const double stored = static_cast<double>(H5Dget_storage_size(ds));
  const double ratio = layout == H5D_CHUNKED ? 1024.0 : 1.0;
  if (stored * ratio < need)
    fail(where, "declares " + std::to_string(n) + " elements (" +
                    std::to_string(static_cast<int64_t>(need)) + " bytes) but the file stores " +
                    std::to_string(static_cast<int64_t>(stored)) + " bytes");
  const double file = file_bytes(ds);
  if (file > 0 && (stored > file || need > file * ratio))
    fail(where, "declares " + std::to_string(static_cast<int64_t>(need)) + " bytes (" +
                    std::to_string(static_cast<int64_t>(stored)) + " stored) in a file of " +
                    std::to_string(static_cast<int64_t>(file)) + " bytes");
}

}  // namespace detail

using namespace detail;

namespace {

// Creation properties without timestamps (HDF5 records them in object headers by
// default): the same content saved twice gives the same bytes, so a shipped file's
// SHA-256 can be remade.
Handle untimed_plist(hid_t cls, const std::string& where) {
  Handle plist = checked(H5Pcreate(cls), where, "cannot create property list");
  check(H5Pset_obj_track_times(plist.id(), 0), where, "cannot create property list");
  return plist;
}

// Tells a missing file, a non-HDF5 file and a damaged one apart. The integrity header
// is checked first, so that libhdf5 never parses a sealed file whose bytes changed.
Handle open_read_only(const std::string& path, ByteSeal* seal) {
  quiet();
  const std::string where = path + ": ";  // the file itself, not an object in it
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail(where, "no such file");
  if (std::filesystem::is_directory(status)) fail(where, "is a directory, not an HDF5 file");
  *seal = check_byte_seal(path);
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) fail(where, "not an HDF5 file");
  if (is_hdf5 < 0) fail_h5(where, "cannot read file");
  return checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), where,
                 "cannot open HDF5 file (truncated or corrupt)");
}

Handle create_temp(const std::string& path, const std::string& temp, bool user_block) {
  quiet();
  const std::string where = path + ": /: ";
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), where, "cannot create property list");
  // Closing the file then closes every group and dataset still open in it, so commit()
  // renames a complete file even if the caller still holds handles.
  check(H5Pset_fclose_degree(fapl.id(), H5F_CLOSE_STRONG), where, "cannot set close degree");
  Handle fcpl = checked(H5Pcreate(H5P_FILE_CREATE), where, "cannot create property list");
  // Room for the integrity header, which sealing writes once the file is complete.
  if (user_block)
    check(H5Pset_userblock(fcpl.id(), static_cast<hsize_t>(kIntegrityHeaderSize)), where,
          "cannot reserve the integrity header");
  return checked(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()), where,
                 "cannot create " + temp);
}

Handle open_root(const Handle& file, const std::string& path) {
  return checked(H5Gopen2(file.id(), "/", H5P_DEFAULT), path + ": /: ", "cannot open root");
}

}  // namespace

// ---- Handle ------------------------------------------------------------------------

Handle::Handle(const Handle& o) : id_(o.id_) {
  if (id_ >= 0) H5Iinc_ref(id_);
}

Handle::~Handle() { reset(); }

void Handle::reset() {
  // An identifier may already be gone: a writer's commit() closes everything in its file.
  if (id_ >= 0) {
    quiet();
    if (H5Iis_valid(id_) > 0) H5Idec_ref(id_);
  }
  id_ = -1;
}

// ---- Object: attributes ------------------------------------------------------------

std::string Object::child_path(const std::string& name) const {
  if (name.empty()) return path_;
  if (name[0] == '/') return name;
  return path_ == "/" ? "/" + name : path_ + "/" + name;
}

std::string Object::where(const std::string& child) const {
  // Paths are built from names a file holds: escaped, so a garbled name cannot garble
  // the message (or the terminal).
  return file_ + ": " + printable(child_path(child), 200) + ": ";
}

namespace detail {

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

namespace {

// Link and attribute names: bounded and free of control bytes (they end up in paths and
// messages). `name` comes from libhdf5, decoded from the file.
bool acceptable_name(const char* name, std::string* out, std::string* why) {
  const size_t len = strnlen(name, kMaxNameLength + 1);
  if (len > kMaxNameLength) {
    *why = "a name longer than " + std::to_string(kMaxNameLength) + " bytes ('" +
           printable(std::string(name, 40), 40) + "...')";
    return false;
  }
  out->assign(name, len);
  for (unsigned char c : *out)
    if (c < 0x20 || c == 0x7f) {
      *why = "a name with control bytes ('" + printable(*out) + "')";
      return false;
    }
  return true;
}

struct NameList {
  std::vector<std::string> names;
  std::string why;  // set when a name was refused
};

#if H5_VERSION_GE(1, 12, 0)
using LinkInfo = H5L_info2_t;
#else
using LinkInfo = H5L_info_t;
#endif

herr_t collect_link(hid_t, const char* name, const LinkInfo*, void* data) {
  auto* list = static_cast<NameList*>(data);
  std::string s;
  if (!acceptable_name(name, &s, &list->why)) return -1;
  if (list->names.size() >= kMaxLinksPerGroup) {
    list->why = "more than " + std::to_string(kMaxLinksPerGroup) + " links";
    return -1;
  }
  list->names.push_back(std::move(s));
  return 0;
}

herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* data) {
  auto* list = static_cast<NameList*>(data);
  std::string s;
  if (!acceptable_name(name, &s, &list->why)) return -1;
  if (list->names.size() >= static_cast<size_t>(kMaxAttributeElements)) {
    list->why = "too many attributes";
    return -1;
  }
  list->names.push_back(std::move(s));
  return 0;
}

}  // namespace

// H5Literate rather than H5Lget_name_by_idx: libhdf5 1.10 reads past a heap buffer in
// H5Lget_name_by_idx on some corrupt link tables (found under ASan), and iteration hands
// us each decoded name once, which we copy with a bound.
std::vector<std::string> link_names(hid_t group, const std::string& where) {
  quiet();
  NameList list;
#if H5_VERSION_GE(1, 12, 0)
  const herr_t rc = H5Literate2(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &list);
#else
  const herr_t rc = H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &list);
#endif
  if (!list.why.empty()) fail(where, "cannot list group: " + list.why);
  if (rc < 0) fail_h5(where, "cannot list group");
  return list.names;
}

std::vector<std::string> attribute_names(hid_t obj, const std::string& where) {
  quiet();
  NameList list;
  const herr_t rc = H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attr, &list);
  if (!list.why.empty()) fail(where, "cannot list attributes: " + list.why);
  if (rc < 0) fail_h5(where, "cannot list attributes");
  return list.names;
}

}  // namespace detail

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

// ---- Files -------------------------------------------------------------------------

namespace {

// The file identifier itself is released at once: the root group keeps the file open,
// and every group or dataset opened from it keeps it open too, however long they live.
std::pair<Handle, ByteSeal> open_root_read_only(const std::string& path) {
  ByteSeal seal = ByteSeal::None;
  const Handle file = open_read_only(path, &seal);
  return {open_root(file, path), seal};
}

}  // namespace

File::File(const std::string& path) : File(path, open_root_read_only(path)) {}

File::File(const std::string& path, std::pair<Handle, ByteSeal> opened)
    : Group(std::move(opened.first), path, "/"), seal_(opened.second) {}

FileWriter::FileWriter(const std::string& path, Sealing sealing)
    : Group(Handle(), path, "/"),
      temp_path_(path + ".tmp-" + std::to_string(getpid())),
      sealing_(sealing) {
  file_id_ = create_temp(path, temp_path_, sealing == Sealing::Sealed);
  try {
    handle_ = open_root(file_id_, path);
  } catch (...) {
    close_file();
    std::remove(temp_path_.c_str());
    throw;
  }
}

FileWriter::~FileWriter() {
  if (done_) return;
  close_file();
  std::remove(temp_path_.c_str());
}

bool FileWriter::close_file() {
  handle_.reset();
  if (!file_id_.valid()) return true;
  quiet();
  return H5Fclose(static_cast<hid_t>(file_id_.release())) >= 0;
}

void FileWriter::commit() {
  if (done_) fail(where(), "already committed");
  done_ = true;
  if (!close_file()) {
    std::remove(temp_path_.c_str());
    fail_h5(where(), "cannot finish writing " + temp_path_);
  }
  if (sealing_ == Sealing::Sealed) {
    try {
      seal_file(temp_path_, file_);
    } catch (...) {
      std::remove(temp_path_.c_str());
      throw;
    }
  }
  if (std::rename(temp_path_.c_str(), file_.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temp_path_.c_str());
    fail(where(), "cannot rename " + temp_path_ + " into place: " + reason);
  }
}

}  // namespace ipg::h5
