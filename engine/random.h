// Seeded random streams. A Generator is (seed, position); each draw of n numbers takes
// counters [position, position+n) of the Philox stream, so results depend on the seed and
// the order of draws only, never on thread count or device partitioning.
#pragma once

#include <stdint.h>

namespace ipg {

class Generator {
 public:
  explicit Generator(uint64_t seed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t position() const { return position_; }
  // Reserves n counters and returns the first.
  uint64_t advance(uint64_t n) {
    const uint64_t p = position_;
    position_ += n;
    return p;
  }

 private:
  uint64_t seed_;
  uint64_t position_ = 0;
};

}  // namespace ipg
