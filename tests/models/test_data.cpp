// Dataset loaders: the real Fashion-MNIST package, and bad files the tests write.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "models/data/dataset.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

class DataFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ipg_data_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims,
                                        const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
    for (uint32_t d : dims)
      for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
  }
  void write_raw(const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(dir_ / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  void write_gz(const std::string& name, const std::vector<uint8_t>& bytes) {
    gzFile f = gzopen((dir_ / name).c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  }
  // A valid 3-image 2x2 set with labels 0, 1, 9.
  void write_small_set(bool gz) {
    std::vector<uint8_t> px(12);
    for (int i = 0; i < 12; ++i) px[i] = static_cast<uint8_t>(i * 20);
    auto w = [&](const std::string& n, const std::vector<uint8_t>& b) {
      gz ? write_gz(n + ".gz", b) : write_raw(n, b);
    };
    w("t10k-images-idx3-ubyte", idx_bytes({3, 2, 2}, px));
    w("t10k-labels-idx1-ubyte", idx_bytes({3}, {0, 1, 9}));
  }
  std::string dir() const { return dir_.string(); }
  fs::path dir_;
};

TEST_F(DataFiles, LoadsGzipAndRawIdx) {
  for (bool gz : {true, false}) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_small_set(gz);
    const Dataset ds = load_mnist_format(dir(), Split::Test, "mnist");
    EXPECT_EQ(ds.images.shape(), (Shape{3, 1, 2, 2}));
    EXPECT_EQ(ds.labels.to_vector_i32(), (std::vector<int32_t>{0, 1, 9}));
    EXPECT_FLOAT_EQ(ds.images.to_vector()[11], 220.f / 255.f);
    EXPECT_EQ(ds.name, "mnist/test");
  }
}

TEST_F(DataFiles, HeaderClaimingMoreImagesThanTheFileHolds) {
  write_gz("t10k-images-idx3-ubyte.gz", idx_bytes({1000000, 28, 28}, std::vector<uint8_t>(784)));
  write_gz("t10k-labels-idx1-ubyte.gz", idx_bytes({1}, {0}));
  EXPECT_THROW(load_mnist_format(dir(), Split::Test, "m"), DataError);
  write_raw("x.idx", idx_bytes({4000000000u, 28, 28}, {}));
  std::vector<int64_t> dims;
  try {
    read_idx((dir_ / "x.idx").string(), &dims);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("x.idx"), std::string::npos) << e.what();
  }
}

TEST_F(DataFiles, TruncatedGzip) {
  write_small_set(true);
  const fs::path p = dir_ / "t10k-images-idx3-ubyte.gz";
  fs::resize_file(p, fs::file_size(p) - 10);
  try {
    load_mnist_format(dir(), Split::Test, "m");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    // Names the file and what the header implies (4 + 3 * 4 + 12 bytes); the last 4 bytes
    // of a cut file are compressed data, not a size, and the message shows no such number.
    const std::string m = e.what();
    EXPECT_NE(m.find("t10k-images-idx3-ubyte.gz"), std::string::npos) << m;
    EXPECT_NE(m.find("implies 28 bytes"), std::string::npos) << m;
    EXPECT_NE(m.find("truncated or corrupt"), std::string::npos) << m;
    EXPECT_EQ(m.find("holds"), std::string::npos) << m;
  }
}

TEST_F(DataFiles, LabelCountAndRangeAndMagic) {
  write_small_set(false);
  write_raw("t10k-labels-idx1-ubyte", idx_bytes({2}, {0, 1}));
  EXPECT_THROW(load_mnist_format(dir(), Split::Test, "m"), DataError);
  write_raw("t10k-labels-idx1-ubyte", idx_bytes({3}, {0, 1, 10}));
  EXPECT_THROW(load_mnist_format(dir(), Split::Test, "m"), DataError);
  write_raw("t10k-labels-idx1-ubyte", {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_THROW(load_mnist_format(dir(), Split::Test, "m"), DataError);
  EXPECT_THROW(load_mnist_format(dir() + "/missing", Split::Test, "m"), DataError);
}

TEST_F(DataFiles, CifarRecordSizeChecked) {
  std::vector<uint8_t> rec(1 + 3072, 7);
  rec[0] = 3;
  write_raw("test_batch.bin", rec);
  const Dataset ds = load_cifar(dir(), Split::Test, 10);
  EXPECT_EQ(ds.images.shape(), (Shape{1, 3, 32, 32}));
  EXPECT_EQ(ds.labels.to_vector_i32()[0], 3);
  rec.pop_back();
  write_raw("test_batch.bin", rec);
  EXPECT_THROW(load_cifar(dir(), Split::Test, 10), DataError);
}

TEST(Data, UnknownSpecIsAnError) {
  EXPECT_THROW(load_dataset("imagenet", Split::Test), DataError);
  EXPECT_THROW(load_dataset("cifar10", Split::Test), DataError);  // needs :DIR
}

TEST(Data, FashionMnistFromTheDebianPackage) {
  if (!fs::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed (tools/install-deps.sh installs it)";
  const Dataset ds = load_dataset("fashion-mnist", Split::Test);
  ASSERT_EQ(ds.images.shape(), (Shape{10000, 1, 28, 28}));
  std::vector<int> hist(10, 0);
  for (int32_t l : ds.labels.to_vector_i32()) ++hist.at(l);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(hist[c], 1000) << "class " << c;
}

}  // namespace
}  // namespace ipg
