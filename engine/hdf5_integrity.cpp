// Sealing and checking files (docs/file-integrity.md): the format-level check, sealing a
// written file (content digest, then integrity header), and the notices and escaping that
// go with them. The integrity header is hdf5_integrity_header.cpp's, the canonical
// content digest hdf5_canonical.cpp's.
#include <hdf5.h>

#include <cstdio>
#include <iostream>
#include <mutex>

#include "engine/hdf5.h"
#include "engine/hdf5_integrity_internal.h"
#include "engine/hdf5_internal.h"
#include "engine/terminal_text.h"

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
    std::cerr << terminal_text(line) << "\n";
}

// ---- the format-level check --------------------------------------------------------

namespace {

std::string stored_digest(const File& f) {
  const std::string d = f.scalar_string(kContentDigestAttr);
  if (!is_hex_digest(d))
    throw FileError(f.file() + ": /: attribute '" + kContentDigestAttr +
                    "' is not 64 lowercase hex digits (corrupted or modified)");
  return d;
}

}  // namespace

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
