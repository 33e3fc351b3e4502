// The report's PNG encoder, read back by zlib (an independent inflater) and by a chunk
// walk that checks every CRC; CRC-32, Adler-32 and base64 against their published values.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

#include "fingerprint/report_png.h"

namespace ipg {
namespace {

uint32_t be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint8_t(s[at + 3]);
}

// The pixel rows of a PNG this encoder wrote: chunks walked and CRC-checked, IDAT inflated
// by zlib, filter bytes checked and dropped.
std::vector<uint8_t> decode(const std::string& png, int* w, int* h, int* channels) {
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  for (size_t at = 8; at < png.size();) {
    const uint32_t len = be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    const std::string body = png.substr(at + 4, 4 + len);
    EXPECT_EQ(be32(png, at + 8 + len),
              uint32_t(::crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))))
        << type;
    if (type == "IHDR") {
      *w = static_cast<int>(be32(png, at + 8));
      *h = static_cast<int>(be32(png, at + 12));
      *channels = png[at + 17] == 0 ? 1 : 3;
    }
    if (type == "IDAT") idat += png.substr(at + 8, len);
    at += 12 + len;
  }
  const size_t row = size_t(*w) * size_t(*channels);
  std::vector<uint8_t> raw((row + 1) * size_t(*h));
  uLongf got = raw.size();
  EXPECT_EQ(::uncompress(raw.data(), &got, reinterpret_cast<const Bytef*>(idat.data()), idat.size()),
            Z_OK);
  EXPECT_EQ(got, raw.size());
  std::vector<uint8_t> px;
  for (int y = 0; y < *h; ++y) {
    EXPECT_EQ(raw[y * (row + 1)], 0);  // filter: none
    px.insert(px.end(), raw.begin() + y * (row + 1) + 1, raw.begin() + (y + 1) * (row + 1));
  }
  return px;
}

TEST(ReportPng, ChecksumsAndBase64MatchTheirPublishedValues) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32(reinterpret_cast<const uint8_t*>(check.data()), check.size()), 0xCBF43926u);
  const std::string wiki = "Wikipedia";
  EXPECT_EQ(adler32(reinterpret_cast<const uint8_t*>(wiki.data()), wiki.size()), 0x11E60398u);
  EXPECT_EQ(base64("Man"), "TWFu");
  EXPECT_EQ(base64("Ma"), "TWE=");
  EXPECT_EQ(base64("M"), "TQ==");
  EXPECT_EQ(base64(""), "");
}

TEST(ReportPng, GrayAndRgbImagesDecodeToTheirPixels) {
  for (int channels : {1, 3}) {
    // Big enough for two stored deflate blocks (over 65,535 bytes).
    const int w = 200, h = 120;
    std::vector<uint8_t> px(size_t(w) * h * channels);
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t((i * 37) ^ (i >> 7));
    int gw = 0, gh = 0, gc = 0;
    EXPECT_EQ(decode(encode_png(px, w, h, channels), &gw, &gh, &gc), px);
    EXPECT_EQ(gw, w);
    EXPECT_EQ(gh, h);
    EXPECT_EQ(gc, channels);
  }
  EXPECT_THROW(encode_png({1, 2, 3}, 2, 2, 1), std::invalid_argument);
  EXPECT_THROW(encode_png({1, 2, 3, 4}, 2, 2, 2), std::invalid_argument);
}

TEST(ReportPng, ChwFloatsAreScaledUpAndQuantized) {
  const float chw[4] = {0.f, 1.f, 0.5f, 2.f};  // 1 channel, 2 x 2; 2 clamps to 1
  int w = 0, h = 0, c = 0;
  const std::vector<uint8_t> px = decode(encode_png_chw(chw, 1, 2, 2, 3), &w, &h, &c);
  ASSERT_EQ(w, 6);
  ASSERT_EQ(h, 6);
  EXPECT_EQ(px[0], 0);
  EXPECT_EQ(px[2], 0);     // still the first pixel's block
  EXPECT_EQ(px[3], 255);   // the second pixel
  EXPECT_EQ(px[3 * 6], 128);      // row 3: the third pixel (0.5 -> 128)
  EXPECT_EQ(px[3 * 6 + 5], 255);  // clamped
}

}  // namespace
}  // namespace ipg
