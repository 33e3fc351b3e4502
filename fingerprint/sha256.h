// SHA-256 (FIPS 180-4), self-contained: the fingerprint file records the SHA-256 of the
// model file it was extracted from, so that verify can tell which model it belongs to.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <array>
#include <string>

namespace ipg {

// Incremental hashing: update() any number of times, then hex() or digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> digest();
  // 64 lowercase hexadecimal characters.
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes hashed so far
  bool done_ = false;
};

std::string sha256_hex(const std::string& bytes);
// Hash of a file's contents; throws ipg::FileError ("<path>: ...") when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace ipg
