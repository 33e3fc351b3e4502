// A small PNG encoder for the report's images (no zlib needed): 8-bit grayscale or RGB,
// the image data in stored (uncompressed) deflate blocks, with the CRC-32 of every chunk
// and the Adler-32 of the zlib stream, so any PNG reader decodes it. Report images are a
// few kilobytes, where compression would buy nothing worth the code.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

namespace ipg {

// pixels: height x width x channels bytes, row-major, channels 1 (gray) or 3 (RGB).
// Throws std::invalid_argument for other channel counts or a size mismatch.
std::string encode_png(const std::vector<uint8_t>& pixels, int width, int height, int channels);

// One image of float CHW values in [0, 1] (C = 1 or 3; clamped), each pixel scaled up to
// a scale x scale block.
std::string encode_png_chw(const float* chw, int channels, int height, int width, int scale);

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);
uint32_t adler32(const uint8_t* data, size_t n);

std::string base64(const std::string& bytes);

}  // namespace ipg
