// HDF5 wrapper, core: every C API call is checked, and a failure becomes a FileError
// carrying the innermost message of HDF5's error stack (the one that says what was wrong,
// e.g. "truncated file: eof = 1024, ..." rather than "unable to open file"). Also the
// dataspace and type helpers every reader shares, the stored-size check, Handle and object
// paths. Attributes, names, datasets and groups, and files live in engine/hdf5_*.cpp.
#include "engine/hdf5.h"

#include <hdf5.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "engine/hdf5_internal.h"

namespace ipg::h5 {

static_assert(std::is_same_v<hid_t, int64_t>, "Handle stores identifiers as int64_t");

namespace detail {

// Both the auto-print setting and the error stack are per thread in a thread-safe HDF5
// build, so every thread that touches a handle silences its own printing once.
void quiet() {
  // Before HDF5's first call initializes it: no shutdown at exit. A file whose writing
  // failed (a full disk) cannot be closed, and libhdf5's exit handler, closing it again,
  // crashed the process after the error was reported. What this skips is only tidying:
  // every file we write is closed (or abandoned and removed) before we return.
  static const bool no_atexit = (H5dont_atexit(), true);
  (void)no_atexit;
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
  // A failed system call (a full disk, a read-only file system) is said by its errno's
  // text, not by libhdf5's dump of the call's arguments.
  const size_t at = msg.find("errno = ");
  if (at != std::string::npos) {
    const int code = std::atoi(msg.c_str() + at + 8);
    if (code > 0) return std::strerror(code);
  }
  // HDF5's messages can quote what it decoded from a corrupt file.
  return msg.empty() ? msg : "HDF5: " + printable(msg, 200);
}

}  // namespace

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw FileError(where + what);
}

[[noreturn]] void fail_h5(const std::string& where, const std::string& what) {
  const std::string detail = hdf5_detail();
  throw FileError(where + what + (detail.empty() ? "" : " (" + detail + ")"));
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

bool is_numeric(hid_t type) {
  const H5T_class_t c = H5Tget_class(type);
  return c == H5T_INTEGER || c == H5T_FLOAT;
}

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

// ---- Object: paths -----------------------------------------------------------------

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

}  // namespace ipg::h5
