// PNG by hand (report_png.h): signature, IHDR, one IDAT of stored deflate blocks, IEND.
#include "fingerprint/report_png.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ipg {

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc) {
  // Bitwise CRC-32 (polynomial 0xEDB88320, as PNG and zlib use); the images are small.
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t adler32(const uint8_t* data, size_t n) {
  uint32_t a = 1, b = 0;
  for (size_t i = 0; i < n; ++i) {
    a = (a + data[i]) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

namespace {

void put32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xFF);
}

void chunk(std::string& png, const char* type, const std::string& data) {
  put32(png, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put32(png, crc32(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
}

}  // namespace

std::string encode_png(const std::vector<uint8_t>& pixels, int width, int height, int channels) {
  if (channels != 1 && channels != 3)
    throw std::invalid_argument("encode_png: channels must be 1 or 3");
  if (width <= 0 || height <= 0 ||
      pixels.size() != static_cast<size_t>(width) * static_cast<size_t>(height) *
                           static_cast<size_t>(channels))
    throw std::invalid_argument("encode_png: pixel count does not match the size");
  // Scanlines, each led by filter type 0 (none).
  const size_t row = static_cast<size_t>(width) * static_cast<size_t>(channels);
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw += '\0';
    raw.append(reinterpret_cast<const char*>(pixels.data()) + y * row, row);
  }
  std::string z = "\x78\x01";  // zlib header: deflate, 32K window, no dictionary
  for (size_t at = 0;; at += 65535) {  // raw holds at least one filter byte
    const size_t len = std::min<size_t>(65535, raw.size() - at);
    const bool last = at + len >= raw.size();
    z += static_cast<char>(last ? 1 : 0);  // BFINAL, BTYPE 00 (stored)
    z += static_cast<char>(len & 0xFF);
    z += static_cast<char>(len >> 8);
    z += static_cast<char>(~len & 0xFF);
    z += static_cast<char>((~len >> 8) & 0xFF);
    z.append(raw, at, len);
    if (last) break;
  }
  put32(z, adler32(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()));
  std::string ihdr;
  put32(ihdr, static_cast<uint32_t>(width));
  put32(ihdr, static_cast<uint32_t>(height));
  ihdr += static_cast<char>(8);                      // bit depth
  ihdr += static_cast<char>(channels == 1 ? 0 : 2);  // gray or RGB
  ihdr += std::string(3, '\0');                      // deflate, filter 0, no interlace
  std::string png = "\x89PNG\r\n\x1a\n";
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  return png;
}

std::string encode_png_chw(const float* chw, int channels, int height, int width, int scale) {
  const int w = width * scale, h = height * scale;
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) {
        const float v = chw[(static_cast<size_t>(c) * height + y / scale) * width + x / scale];
        const float clamped = std::min(1.f, std::max(0.f, std::isfinite(v) ? v : 0.f));
        px[(static_cast<size_t>(y) * w + x) * channels + c] =
            static_cast<uint8_t>(std::lround(clamped * 255.f));
      }
  return encode_png(px, w, h, channels);
}

std::string base64(const std::string& bytes) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                       uint8_t(bytes[i + 2]);
    out += k[v >> 18];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += k[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += k[v >> 18];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += k[v >> 18];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace ipg
