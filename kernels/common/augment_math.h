// Training augmentation per element: random crop from a zero-padded image and an optional
// horizontal flip. The random draws of a sample depend only on (seed, sample counter),
// so the CPU twin and the CUDA kernel produce the same batch bit for bit.
#pragma once

#include <stdint.h>

#include "kernels/common/hd.h"
#include "kernels/common/philox.h"

namespace ipg::kernels {

struct CropFlip {
  int dy, dx;  // crop offset in the padded image, each in [0, 2 * pad]
  bool flip;
};

// The draw of sample counter `ctr`: words 0 and 1 give the offsets, word 2 the flip.
IPG_HD CropFlip crop_flip_draw(uint64_t seed, uint64_t ctr, int pad, bool allow_flip) {
  const Philox4 r = philox4x32_10(seed, ctr);
  const uint32_t span = 2u * static_cast<uint32_t>(pad) + 1u;
  CropFlip d;
  d.dy = static_cast<int>(r.v[0] % span);
  d.dx = static_cast<int>(r.v[1] % span);
  d.flip = allow_flip && (r.v[2] & 1u);
  return d;
}

// Output pixel (row, col) of an h x w plane: the flip acts on the cropped image, so output
// column col reads cropped column (w-1-col); the crop maps cropped (r, c) to source
// (r + dy - pad, c + dx - pad). Outside the source: the padding, 0.
IPG_HD float crop_flip_pixel(const float* plane, int h, int w, int pad, CropFlip d, int row,
                             int col) {
  const int sr = row + d.dy - pad;
  const int sc = (d.flip ? w - 1 - col : col) + d.dx - pad;
  return (sr >= 0 && sr < h && sc >= 0 && sc < w) ? plane[sr * w + sc] : 0.f;
}

}  // namespace ipg::kernels
