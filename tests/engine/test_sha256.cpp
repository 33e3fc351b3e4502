// SHA-256 (engine/sha256.h): the FIPS 180-4 vectors, incremental hashing, and the x86
// SHA-extension path against the portable one.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "engine/sha256.h"

namespace ipg {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
  const std::string want = sha256_hex(data);
  for (size_t step : {1, 3, 55, 56, 63, 64, 65, 127, 999}) {
    Sha256 h;
    for (size_t p = 0; p < data.size(); p += step)
      h.update(data.data() + p, std::min(step, data.size() - p));
    EXPECT_EQ(h.hex(), want) << "step " << step;
  }
}

// The x86 SHA-extension path (used where the CPU has it) and the portable rounds give the
// same digests, on the FIPS vectors and on data split at every offset around a block.
TEST(Sha256Paths, CpuExtensionsAndPortableCodeAgree) {
  if (!Sha256::has_cpu_extensions()) GTEST_SKIP() << "this CPU has no SHA extensions";
  std::string data(3 * 64 + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  for (size_t split = 0; split <= data.size(); split += 5) {
    Sha256 fast(true), slow(false);
    for (Sha256* h : {&fast, &slow}) {
      h->update(data.data(), split);
      h->update(data.data() + split, data.size() - split);
    }
    EXPECT_EQ(fast.hex(), slow.hex()) << "split at " << split;
  }
  Sha256 fast(true), slow(false);
  const std::string abc = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  fast.update(abc.data(), abc.size());
  slow.update(abc.data(), abc.size());
  EXPECT_EQ(fast.hex(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(slow.hex(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
}  // namespace ipg
