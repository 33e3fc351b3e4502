// Sealing and checking files (docs/file-integrity.md): the canonical content digest
// (root attribute content_sha256), the integrity header in the HDF5 user block, the
// format-level check, and the notices and escaping that go with them.
#include <hdf5.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>

#include "engine/hdf5.h"
#include "engine/hdf5_internal.h"
#include "engine/sha256.h"

namespace ipg::h5 {

using namespace detail;

// ---- messages ----------------------------------------------------------------------

std::string printable(const std::string& s, size_t max) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) return out + "...";
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

namespace {

std::mutex& notice_mutex() {
  static std::mutex m;
  return m;
}

NoticeSink& notice_sink() {
  static NoticeSink sink;
  return sink;
}

}  // namespace

NoticeSink set_notice_sink(NoticeSink sink) {
  const std::lock_guard<std::mutex> lock(notice_mutex());
  std::swap(notice_sink(), sink);
  return sink;
}

void notice(const std::string& line) {
  const std::lock_guard<std::mutex> lock(notice_mutex());
  if (notice_sink())
    notice_sink()(line);
  else
    std::cerr << line << "\n";
}

// ---- the integrity header ----------------------------------------------------------
//
// The first kIntegrityHeaderSize bytes of a sealed file (the HDF5 user block, which
// libhdf5 skips): "ipguard-integrity sha256=<64 hex digits> bytes=<decimal>\n", then zero
// bytes. The digest covers every byte after the block, so any change to the HDF5 part
// (data, metadata, superblock) is found before libhdf5 decodes a single structure; the
// header is parsed strictly, so a change inside it is found too.

namespace {

constexpr char kHeaderPrefix[] = "ipguard-integrity sha256=";
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

using FilePtr = std::unique_ptr<FILE, int (*)(FILE*)>;

[[noreturn]] void mismatch(const std::string& display) {
  throw FileError(display + ": content digest mismatch (corrupted or modified)");
}

// SHA-256 and length of the bytes of `f` from offset kIntegrityHeaderSize to the end.
std::string hash_after_header(FILE* f, const std::string& display, uint64_t* bytes) {
  if (std::fseek(f, static_cast<long>(kIntegrityHeaderSize), SEEK_SET) != 0)
    throw FileError(display + ": cannot read for the integrity check");
  Sha256 h;
  std::vector<char> buf(size_t{1} << 16);
  *bytes = 0;
  size_t got;
  while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    h.update(buf.data(), got);
    *bytes += got;
  }
  if (std::ferror(f)) throw FileError(display + ": read error during the integrity check");
  return h.hex();
}

std::string header_text(const std::string& digest, uint64_t bytes) {
  return kHeaderPrefix + digest + " bytes=" + std::to_string(bytes) + "\n";
}

bool is_hex_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The header's digest and byte count, or false when the block is not exactly a header
// as header_text() writes it followed by zero bytes.
bool parse_header(const unsigned char* block, std::string* digest, uint64_t* bytes) {
  const char* p = reinterpret_cast<const char*>(block);
  const size_t n = static_cast<size_t>(kIntegrityHeaderSize);
  const size_t prefix = sizeof(kHeaderPrefix) - 1;
  if (std::memcmp(p, kHeaderPrefix, prefix) != 0) return false;
  *digest = std::string(p + prefix, 64);
  if (!is_hex_digest(*digest)) return false;
  size_t i = prefix + 64;
  const char bytes_tag[] = " bytes=";
  if (std::memcmp(p + i, bytes_tag, sizeof(bytes_tag) - 1) != 0) return false;
  i += sizeof(bytes_tag) - 1;
  const size_t digits = i;
  uint64_t v = 0;
  while (i < n && p[i] >= '0' && p[i] <= '9' && i - digits < 19) v = v * 10 + (p[i++] - '0');
  if (i == digits || (p[digits] == '0' && i - digits > 1) || i >= n || p[i] != '\n') return false;
  // The text must be exactly what header_text() gives: no other spelling of the same
  // header is accepted, and the rest of the block is zero.
  if (header_text(*digest, v) != std::string(p, i + 1)) return false;
  for (size_t j = i + 1; j < n; ++j)
    if (block[j] != 0) return false;
  *bytes = v;
  return true;
}

}  // namespace

namespace detail {

ByteSeal check_byte_seal(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return ByteSeal::None;  // libhdf5 then says why it cannot be opened
  const size_t n = static_cast<size_t>(kIntegrityHeaderSize);
  std::vector<unsigned char> head(n + sizeof(kHdf5Signature), 0);
  const size_t got = std::fread(head.data(), 1, head.size(), f.get());
  if (got >= n && std::memcmp(head.data(), kHeaderPrefix, sizeof(kHeaderPrefix) - 1) == 0) {
    std::string want;
    uint64_t want_bytes = 0;
    if (!parse_header(head.data(), &want, &want_bytes))
      throw FileError(path + ": integrity header damaged (corrupted or modified)");
    uint64_t bytes = 0;
    const std::string digest = hash_after_header(f.get(), path, &bytes);
    if (bytes != want_bytes || digest != want) mismatch(path);
    return ByteSeal::Verified;
  }
  // HDF5 data after a user block of our size that is not a header: a damaged header (a
  // changed byte in its prefix) or a user block ipguard never writes (legacy files have
  // none). Refused here, before libhdf5 parses bytes no digest vouches for: with the
  // prefix changed, a flipped byte in the body reached a segfault inside libhdf5 1.10
  // (H5HG_read, reading a string attribute) before the content digest could be checked.
  if (got == head.size() && std::memcmp(head.data() + n, kHdf5Signature, 8) == 0 &&
      std::memcmp(head.data(), kHdf5Signature, 8) != 0) {
    for (size_t i = 0; i < n; ++i)
      if (head[i] != 0)
        throw FileError(path + ": integrity header damaged (corrupted or modified)");
  }
  return ByteSeal::None;
}

}  // namespace detail

// ---- the canonical content digest --------------------------------------------------

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

std::string canonical_digest(hid_t root, const std::string& display) {
  quiet();
  Canon c(display);
  c.group(root, "/", 0);
  return c.hex();
}

std::string stored_digest(const File& f) {
  const std::string d = f.scalar_string(kContentDigestAttr);
  if (!is_hex_digest(d))
    throw FileError(f.file() + ": /: attribute '" + kContentDigestAttr +
                    "' is not 64 lowercase hex digits (corrupted or modified)");
  return d;
}

}  // namespace

std::string content_digest(const File& f) { return canonical_digest(f.id(), f.file()); }

void check_integrity(const File& f, int64_t version, const std::string& resave_hint) {
  const std::string& file = f.file();
  if (f.byte_seal() == ByteSeal::Verified) {
    // Every byte is as sealing left it, and sealing computed the content digest from
    // these bytes: recomputing it would only read the whole file once more.
    stored_digest(f);
    return;
  }
  const bool has_digest = f.has_attr(kContentDigestAttr);
  if (has_digest) {
    // No header (a tool rewrote the file and dropped the user block): the content digest
    // alone decides.
    if (content_digest(f) != stored_digest(f)) mismatch(file);
    return;
  }
  if (version >= 2)
    throw FileError(file + ": format " + std::to_string(version) +
                    " file without its content digest (corrupted or modified)");
  notice("notice: " + file + " has no integrity digest (format 1); " + resave_hint);
}

// ---- sealing -----------------------------------------------------------------------

void seal_file(const std::string& path, const std::string& display) {
  quiet();
  const std::string where = display + ": /: ";
  // The digest is computed by reading the closed file back through the same code the
  // readers use, not from what the writer was asked to write: writer and reader cannot
  // disagree about the canonical form, a file whose content cannot be read back fails
  // here rather than at its first load, and what is certified is what HDF5 stored.
  std::string digest;
  hsize_t user_block = 0;
  {
    const Handle file = checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), where,
                                "cannot reopen " + path + " to seal it");
    const Handle fcpl = checked(H5Fget_create_plist(file.id()), where, "cannot read properties");
    check(H5Pget_userblock(fcpl.id(), &user_block), where, "cannot read properties");
    const Handle root = checked(H5Gopen2(file.id(), "/", H5P_DEFAULT), where, "cannot open root");
    digest = canonical_digest(root.id(), display);
  }
  {
    Handle file = checked(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), where,
                          "cannot reopen " + path + " to seal it");
    {
      const Handle root = checked(H5Gopen2(file.id(), "/", H5P_DEFAULT), where, "cannot open root");
      if (H5Aexists(root.id(), kContentDigestAttr) > 0)
        check(H5Adelete(root.id(), kContentDigestAttr), where, "cannot replace the digest");
      const Handle type = checked(H5Tcopy(H5T_C_S1), where, "cannot create string type");
      check(H5Tset_size(type.id(), H5T_VARIABLE), where, "cannot create string type");
      check(H5Tset_cset(type.id(), H5T_CSET_UTF8), where, "cannot create string type");
      const Handle space = checked(H5Screate(H5S_SCALAR), where, "cannot create dataspace");
      const Handle attr = checked(H5Acreate2(root.id(), kContentDigestAttr, type.id(), space.id(),
                                             H5P_DEFAULT, H5P_DEFAULT),
                                  where, "cannot write the digest");
      const char* p = digest.c_str();
      check(H5Awrite(attr.id(), type.id(), &p), where, "cannot write the digest");
    }
    check(H5Fclose(static_cast<hid_t>(file.release())), where, "cannot finish sealing " + path);
  }
  if (user_block != static_cast<hsize_t>(kIntegrityHeaderSize)) return;
  FilePtr f(std::fopen(path.c_str(), "r+b"), &std::fclose);
  if (!f) throw FileError(display + ": cannot reopen " + path + " to seal it");
  uint64_t bytes = 0;
  const std::string file_digest = hash_after_header(f.get(), display, &bytes);
  std::string block = header_text(file_digest, bytes);
  block.resize(static_cast<size_t>(kIntegrityHeaderSize), '\0');
  if (std::fseek(f.get(), 0, SEEK_SET) != 0 ||
      std::fwrite(block.data(), 1, block.size(), f.get()) != block.size() ||
      std::fflush(f.get()) != 0)
    throw FileError(display + ": cannot write the integrity header to " + path);
  FILE* raw = f.release();
  if (std::fclose(raw) != 0)
    throw FileError(display + ": cannot write the integrity header to " + path);
}

}  // namespace ipg::h5
