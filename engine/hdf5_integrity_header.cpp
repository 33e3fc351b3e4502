// The integrity header (docs/file-integrity.md): the first kIntegrityHeaderSize bytes of a
// sealed file, which hold the SHA-256 of every later byte; its text, its strict parsing,
// and the byte-level check made before libhdf5 opens a file.
#include <stdint.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "engine/hdf5_integrity_internal.h"
#include "engine/sha256.h"

namespace ipg::h5 {

using namespace detail;

// The first kIntegrityHeaderSize bytes of a sealed file (the HDF5 user block, which
// libhdf5 skips): "ipguard-integrity sha256=<64 hex digits> bytes=<decimal>\n", then zero
// bytes. The digest covers every byte after the block, so any change to the HDF5 part
// (data, metadata, superblock) is found before libhdf5 decodes a single structure; the
// header is parsed strictly, so a change inside it is found too.

namespace {

constexpr char kHeaderPrefix[] = "ipguard-integrity sha256=";
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

}  // namespace

namespace detail {

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

}  // namespace detail

namespace {

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
    // The bytes are intact and only the header's count differs: the header was changed.
    if (digest == want && bytes != want_bytes)
      throw FileError(path + ": integrity header damaged (corrupted or modified)");
    // A short file is the common case (an interrupted copy or download): said as such.
    if (bytes < want_bytes)
      throw FileError(path + ": truncated: " + std::to_string(bytes) + " of its " +
                      std::to_string(want_bytes) + " bytes after the integrity header are there "
                      "(an interrupted copy or download?)");
    if (bytes > want_bytes)
      throw FileError(path + ": " + std::to_string(bytes - want_bytes) +
                      " bytes were added after its end (corrupted or modified)");
    if (digest != want) mismatch(path);
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

}  // namespace ipg::h5
