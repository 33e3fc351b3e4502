// IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw. For gzip the expected
// uncompressed size is checked against the trailer's ISIZE field before anything large
// is allocated, and again against the bytes actually inflated.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include "models/data/dataset.h"

namespace ipg {

namespace {

// A dataset larger than this is certainly a corrupt header (ImageNet-scale data comes
// in HDF5 files, not IDX).
constexpr uint64_t kMaxIdxBytes = uint64_t(8) << 30;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t file_size(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw DataError(path + ": cannot open");
  return static_cast<uint64_t>(f.tellg());
}

// Uncompressed size mod 2^32 from the gzip trailer.
uint32_t gzip_isize(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(-4, std::ios::end);
  unsigned char b[4] = {0, 0, 0, 0};
  if (!f.read(reinterpret_cast<char*>(b), 4)) throw DataError(path + ": truncated gzip file");
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};

}  // namespace

std::vector<uint8_t> read_idx(const std::string& path, std::vector<int64_t>* dims) {
  const bool gz = ends_with(path, ".gz");
  const uint64_t on_disk = file_size(path);
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));  // reads raw files too
  if (!f) throw DataError(path + ": cannot open");
  auto read_exact = [&](void* dst, uint64_t n, const char* what) {
    uint8_t* p = static_cast<uint8_t*>(dst);
    while (n > 0) {
      const unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(n, 1u << 30));
      const int got = gzread(f.get(), p, chunk);
      if (got <= 0) {
        int err = 0;
        const char* msg = gzerror(f.get(), &err);
        throw DataError(path + ": file ends inside the " + what +
                        (err != Z_OK && err != Z_STREAM_END ? std::string(" (") + msg + ")" : ""));
      }
      p += got;
      n -= static_cast<uint64_t>(got);
    }
  };
  uint8_t magic[4];
  read_exact(magic, 4, "header");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4)
    throw DataError(path + ": not an IDX file of unsigned bytes (bad magic number)");
  const int ndim = magic[3];
  dims->assign(ndim, 0);
  uint64_t payload = 1;
  for (int d = 0; d < ndim; ++d) {
    uint8_t b[4];
    read_exact(b, 4, "header");
    const uint32_t v = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
    (*dims)[d] = v;
    payload *= v;
    if (payload > kMaxIdxBytes)
      throw DataError(path + ": header claims more than " + std::to_string(kMaxIdxBytes >> 30) +
                      " GiB of data");
  }
  const uint64_t expected = 4 + 4 * uint64_t(ndim) + payload;
  const uint64_t available = gz ? gzip_isize(path) : on_disk;
  // A truncated gzip file has no trailer: its last 4 bytes are compressed data, so the
  // number read there is no size and is not shown.
  if (gz && (expected & 0xffffffffu) != available)
    throw DataError(path + ": header implies " + std::to_string(expected) +
                    " bytes, which the gzip trailer does not confirm: truncated or corrupt");
  if (!gz && expected != available)
    throw DataError(path + ": header implies " + std::to_string(expected) +
                    " bytes but the file holds " + std::to_string(available) +
                    ": truncated or corrupt");
  std::vector<uint8_t> data(payload);
  read_exact(data.data(), payload, "data");
  uint8_t extra;
  if (gzread(f.get(), &extra, 1) > 0) throw DataError(path + ": trailing bytes after the data");
  return data;
}

std::vector<std::string> mnist_files(const std::string& dir, Split split) {
  const std::string prefix = dir + "/" + (split == Split::Train ? "train" : "t10k");
  auto pick = [](const std::string& base) {
    std::ifstream gz(base + ".gz");
    return gz ? base + ".gz" : base;
  };
  return {pick(prefix + "-images-idx3-ubyte"), pick(prefix + "-labels-idx1-ubyte")};
}

Dataset load_mnist_format(const std::string& dir, Split split, const std::string& name) {
  const std::vector<std::string> files = mnist_files(dir, split);
  const std::string& img_path = files[0];
  const std::string& lbl_path = files[1];
  std::vector<int64_t> idims, ldims;
  const std::vector<uint8_t> img = read_idx(img_path, &idims);
  const std::vector<uint8_t> lbl = read_idx(lbl_path, &ldims);
  if (idims.size() != 3) throw DataError(img_path + ": expected 3 dimensions (n, rows, cols)");
  if (ldims.size() != 1) throw DataError(lbl_path + ": expected 1 dimension (n)");
  if (idims[0] != ldims[0])
    throw DataError(lbl_path + ": " + std::to_string(ldims[0]) + " labels for " +
                    std::to_string(idims[0]) + " images in " + img_path);
  Dataset ds;
  ds.name = name + (split == Split::Train ? "/train" : "/test");
  ds.num_classes = 10;
  const int64_t n = idims[0], h = idims[1], w = idims[2];
  ds.images = Tensor::empty({n, 1, h, w});
  float* px = ds.images.data();
  for (size_t i = 0; i < img.size(); ++i) px[i] = img[i] * (1.0f / 255.0f);
  ds.labels = Tensor::empty({n}, Device::cpu(), DType::I32);
  int32_t* py = ds.labels.data_i32();
  for (int64_t i = 0; i < n; ++i) {
    if (lbl[i] >= ds.num_classes)
      throw DataError(lbl_path + ": label " + std::to_string(lbl[i]) + " of image " +
                      std::to_string(i) + " is out of range [0, 10)");
    py[i] = lbl[i];
  }
  return ds;
}

}  // namespace ipg
