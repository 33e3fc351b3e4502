// CIFAR-10/100 binary batches: records of label byte(s) + 3x32x32 bytes (RGB planes).
#include <fstream>
#include <vector>

#include "models/data/dataset.h"

namespace ipg {

std::vector<std::string> cifar_files(const std::string& dir, Split split, int num_classes) {
  std::vector<std::string> files;
  if (num_classes == 10) {
    if (split == Split::Train)
      for (int i = 1; i <= 5; ++i)
        files.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    else
      files.push_back(dir + "/test_batch.bin");
  } else {
    files.push_back(dir + (split == Split::Train ? "/train.bin" : "/test.bin"));
  }
  return files;
}

Dataset load_cifar(const std::string& dir, Split split, int num_classes) {
  if (num_classes != 10 && num_classes != 100)
    throw DataError("CIFAR has 10 or 100 classes, not " + std::to_string(num_classes));
  const std::vector<std::string> files = cifar_files(dir, split, num_classes);
  // CIFAR-100 records carry (coarse, fine) labels; we use the fine one.
  const int label_bytes = num_classes == 10 ? 1 : 2;
  const int64_t pixels = 3 * 32 * 32, record = label_bytes + pixels;
  int64_t total = 0;
  std::vector<int64_t> counts;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary | std::ios::ate);
    if (!in) throw DataError(f + ": cannot open (is " + dir + " a CIFAR binary folder?)");
    const int64_t size = static_cast<int64_t>(in.tellg());
    if (size == 0 || size % record != 0)
      throw DataError(f + ": size " + std::to_string(size) + " is not a multiple of the " +
                      std::to_string(record) + "-byte CIFAR record");
    counts.push_back(size / record);
    total += size / record;
  }
  Dataset ds;
  ds.name = std::string(num_classes == 10 ? "cifar10" : "cifar100") +
            (split == Split::Train ? "/train" : "/test");
  ds.num_classes = num_classes;
  ds.images = Tensor::empty({total, 3, 32, 32});
  ds.labels = Tensor::empty({total}, Device::cpu(), DType::I32);
  float* px = ds.images.data();
  int32_t* py = ds.labels.data_i32();
  std::vector<unsigned char> buf(static_cast<size_t>(record));
  int64_t row = 0;
  for (size_t fi = 0; fi < files.size(); ++fi) {
    std::ifstream in(files[fi], std::ios::binary);
    for (int64_t r = 0; r < counts[fi]; ++r, ++row) {
      if (!in.read(reinterpret_cast<char*>(buf.data()), record))
        throw DataError(files[fi] + ": short read at record " + std::to_string(r));
      const int label = buf[label_bytes - 1];
      if (label >= num_classes)
        throw DataError(files[fi] + ": label " + std::to_string(label) + " of record " +
                        std::to_string(r) + " is out of range");
      py[row] = label;
      for (int64_t p = 0; p < pixels; ++p) px[row * pixels + p] = buf[label_bytes + p] / 255.0f;
    }
  }
  return ds;
}

}  // namespace ipg
