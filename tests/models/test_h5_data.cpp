// HDF5 array datasets: the three file layouts, uint8 NHWC and float32 NCHW pixels, and
// bad files (written here with the HDF5 C API) giving a DataError.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "models/data/dataset.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

class H5Data : public ::testing::Test {
 public:  // the bad-file table builds files through the fixture
  void SetUp() override {
    path_ = (fs::temp_directory_path() /
             ("ipg_h5data_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".h5"))
                .string();
    file_ = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file_, 0);
  }
  void TearDown() override {
    close();
    fs::remove(path_);
  }
  void close() {
    if (file_ >= 0) H5Fclose(file_);
    file_ = -1;
  }
  template <typename T>
  hid_t write(const std::string& name, hid_t type, const std::vector<hsize_t>& dims,
              const std::vector<T>& v) {
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    const hid_t d = H5Dcreate2(file_, name.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Pclose(lcpl);
    H5Sclose(space);
    return d;
  }
  template <typename T>
  void put(const std::string& name, hid_t type, const std::vector<hsize_t>& dims,
           const std::vector<T>& v) {
    H5Dclose(write(name, type, dims, v));
  }
  void string_attr(const std::string& dataset, const std::string& name, const std::string& value) {
    const hid_t d = H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT);
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, value.size());
    const hid_t s = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(d, name.c_str(), t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, value.c_str());
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    H5Dclose(d);
  }
  // n images h x w x c (NHWC) with pixel value (i*7 + y*5 + x*3 + ch) % 256.
  static std::vector<uint8_t> nhwc_pixels(int n, int h, int w, int c) {
    std::vector<uint8_t> v;
    for (int i = 0; i < n; ++i)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          for (int ch = 0; ch < c; ++ch) v.push_back(static_cast<uint8_t>((i * 7 + y * 5 + x * 3 + ch) % 256));
    return v;
  }
  std::string path_;
  hid_t file_ = -1;
};

TEST_F(H5Data, TrainTestGroupsWithUint8Nhwc) {
  put("train/x", H5T_NATIVE_UINT8, {4, 5, 6, 3}, nhwc_pixels(4, 5, 6, 3));
  put("train/y", H5T_NATIVE_INT64, {4}, std::vector<int64_t>{0, 1, 2, 1});
  put("test/x", H5T_NATIVE_UINT8, {2, 5, 6, 3}, nhwc_pixels(2, 5, 6, 3));
  put("test/y", H5T_NATIVE_UINT8, {2}, std::vector<uint8_t>{2, 0});
  close();
  const Dataset tr = load_dataset("h5:" + path_, Split::Train);
  ASSERT_EQ(tr.images.shape(), (Shape{4, 3, 5, 6}));
  EXPECT_EQ(tr.num_classes, 3);
  EXPECT_EQ(tr.labels.to_vector_i32(), (std::vector<int32_t>{0, 1, 2, 1}));
  // NCHW element (i=2, ch=1, y=3, x=4) is NHWC pixel (2*7 + 3*5 + 4*3 + 1) / 255.
  EXPECT_FLOAT_EQ(tr.images.data()[((2 * 3 + 1) * 5 + 3) * 6 + 4], (14 + 15 + 12 + 1) / 255.f);
  const Dataset te = load_dataset("h5:" + path_, Split::Test);
  EXPECT_EQ(te.images.dim(0), 2);
  EXPECT_EQ(te.labels.to_vector_i32(), (std::vector<int32_t>{2, 0}));
}

TEST_F(H5Data, RootPairsFloatNchwAndClassesAttribute) {
  std::vector<float> x(3 * 1 * 4 * 4);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i) / float(x.size());
  put("x_train", H5T_NATIVE_FLOAT, {3, 1, 4, 4}, x);
  put("y_train", H5T_NATIVE_INT32, {3}, std::vector<int32_t>{0, 0, 1});
  put("x_test", H5T_NATIVE_FLOAT, {3, 1, 4, 4}, x);
  put("y_test", H5T_NATIVE_INT32, {3}, std::vector<int32_t>{1, 0, 1});
  const hid_t y = H5Dopen2(file_, "y_train", H5P_DEFAULT);
  const hid_t s = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(y, "classes", H5T_NATIVE_INT64, s, H5P_DEFAULT, H5P_DEFAULT);
  const int64_t ten = 10;
  H5Awrite(a, H5T_NATIVE_INT64, &ten);
  H5Aclose(a);
  H5Sclose(s);
  H5Dclose(y);
  close();
  const Dataset tr = load_dataset("h5:" + path_, Split::Train);
  EXPECT_EQ(tr.num_classes, 10);
  EXPECT_EQ(tr.images.to_vector(), x);
}

TEST_F(H5Data, AmbiguousLayoutNeedsTheAttribute) {
  put("x", H5T_NATIVE_UINT8, {2, 3, 4, 3}, std::vector<uint8_t>(2 * 3 * 4 * 3, 9));
  put("y", H5T_NATIVE_INT32, {2}, std::vector<int32_t>{0, 1});
  EXPECT_THROW(
      {
        close();
        load_dataset("h5:" + path_, Split::Train);
      },
      DataError);
  file_ = H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  string_attr("x", "layout", "NHWC");
  close();
  EXPECT_EQ(load_dataset("h5:" + path_, Split::Test).images.shape(), (Shape{2, 3, 3, 4}));
}

// Labels that are all 0 give one class: the error says so (it said "1 classes but the
// largest label is 0"), and a 'classes' attribute lets such a split load.
TEST_F(H5Data, OneClassSplitSaysWhy) {
  put("x", H5T_NATIVE_UINT8, {2, 1, 2, 2}, std::vector<uint8_t>(8, 1));
  put("y", H5T_NATIVE_INT32, {2}, std::vector<int32_t>{0, 0});
  close();
  try {
    load_dataset("h5:" + path_, Split::Test);
    FAIL() << "a one-class split loaded";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("every label is 0; a dataset has at least 2 classes"),
              std::string::npos)
        << e.what();
  }
  file_ = H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t yd = H5Dopen2(file_, "y", H5P_DEFAULT);
  const hid_t s = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(yd, "classes", H5T_NATIVE_INT64, s, H5P_DEFAULT, H5P_DEFAULT);
  const int64_t ten = 10;
  H5Awrite(a, H5T_NATIVE_INT64, &ten);
  H5Aclose(a);
  H5Sclose(s);
  H5Dclose(yd);
  close();
  EXPECT_EQ(load_dataset("h5:" + path_, Split::Test).num_classes, 10);
}

// A label outside the classes is named as the integer it is (they were printed as floats:
// "label 1 is -1.000000").
TEST_F(H5Data, BadLabelsAreNamedAsIntegers) {
  put("x", H5T_NATIVE_UINT8, {3, 1, 2, 2}, std::vector<uint8_t>(12, 1));
  put("y", H5T_NATIVE_INT32, {3}, std::vector<int32_t>{0, -1, 1});
  close();
  try {
    load_dataset("h5:" + path_, Split::Test);
    FAIL() << "a negative label loaded";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("label 1 is -1, not a class"), std::string::npos)
        << e.what();
  }
}

TEST_F(H5Data, BadFilesAreDataErrors) {
  struct Case {
    const char* what;
    std::function<void(H5Data&)> make;
  };
  const std::vector<Case> cases = {
      {"label count", [](H5Data& t) {
         t.put("x", H5T_NATIVE_UINT8, {3, 1, 2, 2}, std::vector<uint8_t>(12, 1));
         t.put("y", H5T_NATIVE_INT32, {2}, std::vector<int32_t>{0, 1});
       }},
      {"negative label", [](H5Data& t) {
         t.put("x", H5T_NATIVE_UINT8, {2, 1, 2, 2}, std::vector<uint8_t>(8, 1));
         t.put("y", H5T_NATIVE_INT32, {2}, std::vector<int32_t>{0, -1});
       }},
      {"float pixels above 1", [](H5Data& t) {
         t.put("x", H5T_NATIVE_FLOAT, {2, 1, 2, 2}, std::vector<float>(8, 3.f));
         t.put("y", H5T_NATIVE_INT32, {2}, std::vector<int32_t>{0, 1});
       }},
      {"float labels", [](H5Data& t) {
         t.put("x", H5T_NATIVE_UINT8, {2, 1, 2, 2}, std::vector<uint8_t>(8, 1));
         t.put("y", H5T_NATIVE_FLOAT, {2}, std::vector<float>{0, 1});
       }},
      {"rank 2 images", [](H5Data& t) {
         t.put("x", H5T_NATIVE_UINT8, {2, 4}, std::vector<uint8_t>(8, 1));
         t.put("y", H5T_NATIVE_INT32, {2}, std::vector<int32_t>{0, 1});
       }},
      {"no arrays", [](H5Data& t) {
         t.put("images", H5T_NATIVE_UINT8, {2, 4}, std::vector<uint8_t>(8, 1));
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    TearDown();
    SetUp();
    c.make(*this);
    close();
    EXPECT_THROW(load_dataset("h5:" + path_, Split::Train), DataError);
  }
  EXPECT_THROW(load_dataset("h5:/nonexistent/file.h5", Split::Train), DataError);
  EXPECT_THROW(load_dataset("h5", Split::Train), DataError);
}

}  // namespace
}  // namespace ipg
