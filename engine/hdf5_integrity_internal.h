// Helpers shared by the parts of file sealing and checking (engine/hdf5_integrity.cpp,
// hdf5_integrity_header.cpp, hdf5_canonical.cpp): not part of the engine's API.
#pragma once

#include <hdf5.h>
#include <stdint.h>

#include <cstdio>
#include <memory>
#include <string>

namespace ipg::h5::detail {

using FilePtr = std::unique_ptr<FILE, int (*)(FILE*)>;

// Throws FileError "<display>: content digest mismatch (corrupted or modified)".
[[noreturn]] void mismatch(const std::string& display);

// The integrity header (engine/hdf5_integrity_header.cpp says what it is).
// SHA-256 and length of the bytes of `f` from offset kIntegrityHeaderSize to the end.
std::string hash_after_header(FILE* f, const std::string& display, uint64_t* bytes);
// The header's text for that digest and length (before its zero padding).
std::string header_text(const std::string& digest, uint64_t bytes);
// 64 lowercase hex digits.
bool is_hex_digest(const std::string& s);

// The canonical content digest of the file whose root group is `root`
// (engine/hdf5_canonical.cpp); `display` names the file in errors.
std::string canonical_digest(hid_t root, const std::string& display);

}  // namespace ipg::h5::detail
