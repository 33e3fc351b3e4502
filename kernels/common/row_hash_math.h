// Per-row hash of float bits, shared by kernels/cpu/row_hash.cpp and its CUDA twin. A row's
// hash is finish(sum over i of term(i, bits of x[i])) with the sum taken modulo 2^64: an
// addition that is associative and commutative, so a warp's lanes may add their terms in any
// order and the GPU gives the CPU's bits. Each term is a 64-bit mix of (position, bits), so
// two rows that differ anywhere collide with probability about 2^-64 (IGSM's cycle watch
// compares a row's point with its earlier ones by this hash; fingerprint/extract_search.h).
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"

namespace ipg::kernels {

// SplitMix64's finalizer: every input bit flips about half of the output bits.
IPG_HD uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ull;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Element i (i < 2^32) holding the float whose bits are `bits`.
IPG_HD uint64_t row_hash_term(int64_t i, uint32_t bits) {
  return mix64(((static_cast<uint64_t>(i) << 32) | bits) + 0x9E3779B97F4A7C15ull);
}

// The row's hash from the sum of its terms and its length (rows of different lengths are
// not equal, so their hashes should not be either).
IPG_HD uint64_t row_hash_finish(uint64_t sum, int64_t cols) {
  return mix64(sum ^ mix64(static_cast<uint64_t>(cols)));
}

}  // namespace ipg::kernels
