// Helpers shared by the parts of the HDF5 wrapper (engine/hdf5.cpp, hdf5_attributes.cpp,
// hdf5_names.cpp, hdf5_dataset.cpp, hdf5_file.cpp) and those of sealing and checking
// files (engine/hdf5_integrity.cpp, hdf5_integrity_header.cpp, hdf5_canonical.cpp): not
// part of the engine's API.
#pragma once

#include <hdf5.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/hdf5.h"

namespace ipg::h5::detail {

// Turns off HDF5's error printing for the calling thread (once per thread).
void quiet();

[[noreturn]] void fail(const std::string& where, const std::string& what);
// For failures of an HDF5 call: appends what HDF5 said.
[[noreturn]] void fail_h5(const std::string& where, const std::string& what);
// Wraps the identifier an HDF5 call returned, or throws.
Handle checked(hid_t id, const std::string& where, const std::string& what);
void check(herr_t rc, const std::string& where, const std::string& what);

std::string quoted(const std::string& s);

// Dimensions of a scalar ({}) or simple dataspace; nullopt for a null one (no data).
std::optional<Shape> space_dims(hid_t space, const std::string& where);
// Element count of `dims`, refusing more than `limit` before anyone allocates for them.
int64_t checked_count(const Shape& dims, int64_t limit, const std::string& where);
// "float32", "int32", "uint8", "string", ...
std::string type_name_of(hid_t type);
// An integer or floating-point type (what the lenient numeric readers accept).
bool is_numeric(hid_t type);

// Bytes of the file `obj` lives in (0 when HDF5 cannot tell).
double file_bytes(hid_t obj);
// Refuses to read `n` elements of `file_type` from dataset `ds` that the file does not
// hold (engine/hdf5.cpp says why).
void check_stored(hid_t ds, hid_t file_type, int64_t n, const std::string& where);

// An open attribute with its type, space and element count (checked against the limits).
struct AttrRead {
  Handle attr, type, space;
  std::optional<Shape> dims;  // nullopt: a null dataspace
  int64_t count = 0;
  std::string where;
};
AttrRead open_attr(hid_t obj, const std::string& name, const std::string& where);
// A string attribute of any rank as a flat list (an empty attribute of any type is []).
std::vector<std::string> read_strings(const AttrRead& a);

// Names of the links in `group`, in name order, each checked (length, control bytes).
std::vector<std::string> link_names(hid_t group, const std::string& where);
// Names of the attributes of `obj`, in name order, each checked like link names.
std::vector<std::string> attribute_names(hid_t obj, const std::string& where);

// Reads the bytes before the HDF5 superblock of the file at `path` and, when they are an
// integrity header, checks the SHA-256 of every later byte against it (throws FileError
// on a mismatch), all before libhdf5 opens the file.
ByteSeal check_byte_seal(const std::string& path);

}  // namespace ipg::h5::detail
