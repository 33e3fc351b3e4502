// The canonical content digest of a file (docs/file-integrity.md; root attribute
// content_sha256): a depth-first walk of groups, datasets and attributes in name order,
// every number converted to little-endian, so the digest does not depend on how HDF5 laid
// the file out.
#include <hdf5.h>

#include <set>
#include <vector>

#include "engine/hdf5.h"
#include "engine/hdf5_integrity_internal.h"
#include "engine/hdf5_internal.h"
#include "engine/sha256.h"

namespace ipg::h5 {

using namespace detail;

namespace {

// Little-endian file types HDF5 converts every integer or float to for hashing, so that
// the digest does not depend on the byte order a file stores.
hid_t canonical_number_type(hid_t type) {
  const size_t size = H5Tget_size(type);
  const H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_INTEGER) {
    const bool u = H5Tget_sign(type) == H5T_SGN_NONE;
    switch (size) {
      case 1:
        return u ? H5T_STD_U8LE : H5T_STD_I8LE;
      case 2:
        return u ? H5T_STD_U16LE : H5T_STD_I16LE;
      case 4:
        return u ? H5T_STD_U32LE : H5T_STD_I32LE;
      case 8:
        return u ? H5T_STD_U64LE : H5T_STD_I64LE;
      default:
        return -1;
    }
  }
  if (cls == H5T_FLOAT && size == 4) return H5T_IEEE_F32LE;
  if (cls == H5T_FLOAT && size == 8) return H5T_IEEE_F64LE;
  return -1;
}

// A key that identifies an object within its file, to find objects linked twice.
std::string object_key(hid_t obj, const std::string& where) {
#if H5_VERSION_GE(1, 12, 0)
  H5O_info2_t info;
  check(H5Oget_info3(obj, &info, H5O_INFO_BASIC), where, "cannot read object header");
  return std::string(reinterpret_cast<const char*>(&info.token), sizeof(info.token));
#else
  H5O_info_t info;
  check(H5Oget_info2(obj, &info, H5O_INFO_BASIC), where, "cannot read object header");
  return std::to_string(info.addr);
#endif
}

class Canon {
 public:
  explicit Canon(std::string file) : file_(std::move(file)) {}

  // Depth first: the group's record and attributes, then its links in name order.
  void group(hid_t g, const std::string& path, int depth) {
    constexpr int kMaxDepth = 32;
    if (depth > kMaxDepth)
      fail(where(path), "groups nested more than " + std::to_string(kMaxDepth) + " deep");
    visit(g, path);
    tag('G');
    str(path);
    attributes(g, path, depth == 0);
    for (const std::string& name : link_names(g, where(path))) {
      const std::string child = path == "/" ? "/" + name : path + "/" + name;
#if H5_VERSION_GE(1, 12, 0)
      H5L_info2_t link;
      check(H5Lget_info2(g, name.c_str(), &link, H5P_DEFAULT), where(child), "cannot read link");
#else
      H5L_info_t link;
      check(H5Lget_info(g, name.c_str(), &link, H5P_DEFAULT), where(child), "cannot read link");
#endif
      if (link.type != H5L_TYPE_HARD)
        fail(where(child), "is a soft or external link (files ipguard writes have none)");
      const Handle obj =
          checked(H5Oopen(g, name.c_str(), H5P_DEFAULT), where(child), "cannot open");
      switch (H5Iget_type(obj.id())) {
        case H5I_GROUP:
          group(obj.id(), child, depth + 1);
          break;
        case H5I_DATASET:
          dataset(obj.id(), child);
          break;
        default:
          fail(where(child), "is neither a group nor a dataset");
      }
    }
  }

  std::string hex() { return h_.hex(); }

 private:
  std::string where(const std::string& path) const {
    return file_ + ": " + printable(path, 200) + ": ";
  }

  void visit(hid_t obj, const std::string& path) {
    constexpr size_t kMaxObjects = 1000000;
    if (++objects_ > kMaxObjects)
      fail(where(path), "more than " + std::to_string(kMaxObjects) + " objects");
    if (!seen_.insert(object_key(obj, where(path))).second)
      fail(where(path), "is linked twice (files ipguard writes are trees)");
  }

  void u64(uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    h_.update(b, 8);
  }
  void tag(char c) { h_.update(&c, 1); }
  void blob(const void* p, size_t n) {
    u64(n);
    h_.update(p, n);
  }
  void str(const std::string& s) { blob(s.data(), s.size()); }

  // Type name and dimensions (rank -1: a null dataspace).
  void head(const std::string& type, const std::optional<Shape>& dims) {
    str(type);
    if (!dims) {
      u64(~uint64_t{0});
      return;
    }
    u64(dims->size());
    for (int64_t d : *dims) u64(static_cast<uint64_t>(d));
  }

  void attributes(hid_t obj, const std::string& path, bool root) {
    for (const std::string& name : attribute_names(obj, where(path))) {
      if (root && name == kContentDigestAttr) continue;
      const AttrRead a = open_attr(obj, name, where(path));
      tag('A');
      str(path);
      str(name);
      if (H5Tget_class(a.type.id()) == H5T_STRING) {
        head("string", a.dims);
        const std::vector<std::string> v = read_strings(a);
        u64(v.size());
        for (const std::string& s : v) str(s);
        continue;
      }
      const hid_t mem = canonical_number_type(a.type.id());
      if (mem < 0) fail(a.where, "type " + type_name_of(a.type.id()) + " has no canonical form");
      head(type_name_of(a.type.id()), a.dims);
      std::vector<unsigned char> buf(static_cast<size_t>(a.count) * H5Tget_size(mem));
      if (!buf.empty()) check(H5Aread(a.attr.id(), mem, buf.data()), a.where, "cannot read");
      blob(buf.data(), buf.size());
    }
  }

  void dataset(hid_t ds, const std::string& path) {
    visit(ds, path);
    const std::string w = where(path);
    const Handle type = checked(H5Dget_type(ds), w, "cannot read type");
    const Handle space = checked(H5Dget_space(ds), w, "cannot read dataspace");
    const std::optional<Shape> dims = space_dims(space.id(), w);
    const hid_t mem = canonical_number_type(type.id());
    if (mem < 0) fail(w, "type " + type_name_of(type.id()) + " has no canonical form");
    const int64_t n = dims ? checked_count(*dims, kMaxDatasetElements, w) : 0;
    check_stored(ds, type.id(), n, w);
    tag('D');
    str(path);
    head(type_name_of(type.id()), dims);
    std::vector<unsigned char> buf(static_cast<size_t>(n) * H5Tget_size(mem));
    if (!buf.empty())
      check(H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), w, "cannot read data");
    blob(buf.data(), buf.size());
    attributes(ds, path, false);
  }

  Sha256 h_;
  std::string file_;
  std::set<std::string> seen_;
  size_t objects_ = 0;
};

}  // namespace

namespace detail {

std::string canonical_digest(hid_t root, const std::string& display) {
  quiet();
  Canon c(display);
  c.group(root, "/", 0);
  return c.hex();
}

}  // namespace detail

std::string content_digest(const File& f) { return canonical_digest(f.id(), f.file()); }

}  // namespace ipg::h5
