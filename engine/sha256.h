// SHA-256 (FIPS 180-4), self-contained. In the engine because engine/hdf5 seals every file
// it writes with digests (content_sha256, the integrity header); the fingerprint file also
// records the SHA-256 of the model file it was extracted from.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <array>
#include <string>

namespace ipg {

// Incremental hashing: update() any number of times, then hex() or digest() once.
class Sha256 {
 public:
  // With `cpu_extensions`, the x86 SHA instructions are used where the CPU has them
  // (the same digest, faster); false forces the portable code (tests compare the two).
  explicit Sha256(bool cpu_extensions = true);
  static bool has_cpu_extensions();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> digest();
  // 64 lowercase hexadecimal characters.
  std::string hex();

 private:
  void block(const uint8_t* p);             // the portable rounds, one block
  void blocks(const uint8_t* p, size_t n);  // n blocks, by whichever path
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes hashed so far
  bool done_ = false;
  bool fast_;
};

std::string sha256_hex(const std::string& bytes);
// Hash of a file's contents; throws ipg::FileError ("<path>: ...") when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace ipg
