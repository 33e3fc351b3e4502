// HDF5 wrapper: bit-exact round trips, attributes of every kind, files written by h5py in
// Keras style, and a clear FileError for every kind of bad file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "engine/hdf5.h"
#include "tests/support/file_error.h"

namespace ipg::h5 {
namespace {

namespace fs = std::filesystem;

// Each test gets its own empty directory, removed afterwards.
class Hdf5 : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        fs::temp_directory_path() / ("ipg_hdf5_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    // Every handle a test made is gone by now: nothing may be left open.
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

using testing::file_error;

// Writes a dataset of any HDF5 type with the C API, for types the wrapper never writes.
void write_raw(const std::string& file, const char* name, hid_t type, std::vector<hsize_t> dims,
               const void* data, bool chunked = false) {
  const hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (chunked) {
    const std::vector<hsize_t> chunk(dims.size(), 16);
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  }
  const hid_t ds = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  if (data) {
    EXPECT_GE(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
  }
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(f);
}

TEST_F(Hdf5, Float32RoundTripIsBitExact) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {0.f,
                                     -0.f,
                                     1.f / 3.f,
                                     -2.5e-39f /* denormal */,
                                     inf,
                                     -inf,
                                     std::numeric_limits<float>::quiet_NaN(),
                                     3.4e38f,
                                     1e-45f,
                                     -7.f,
                                     123456.789f,
                                     0.1f};
  {
    FileWriter w(path("f.h5"));
    w.write("x", Tensor::from_vector(values, {2, 3, 2}));
    w.commit();
  }
  File f(path("f.h5"));
  const Dataset ds = f.dataset("x");
  EXPECT_EQ(ds.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(ds.type_name(), "float32");
  const Tensor t = ds.read(DType::F32);
  ASSERT_EQ(t.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(std::memcmp(t.data(), values.data(), values.size() * sizeof(float)), 0);
}

TEST_F(Hdf5, Int32RoundTrip) {
  const std::vector<int32_t> values = {std::numeric_limits<int32_t>::min(), -1, 0, 7,
                                       std::numeric_limits<int32_t>::max(), 42};
  {
    FileWriter w(path("i.h5"));
    w.write("labels", Tensor::from_vector_i32(values, {6}));
    w.commit();
  }
  const Tensor t = File(path("i.h5")).dataset("labels").read(DType::I32);
  EXPECT_EQ(t.dtype(), DType::I32);
  EXPECT_EQ(t.to_vector_i32(), values);
}

TEST_F(Hdf5, EmptyAndScalarShapes) {
  {
    FileWriter w(path("s.h5"));
    w.write("scalar", Tensor::full({}, 2.75f));
    w.write("empty", Tensor::zeros({0}));
    w.write("empty3d", Tensor::zeros({2, 0, 3}, Device::cpu(), DType::I32));
    w.commit();
  }
  File f(path("s.h5"));
  const Tensor s = f.dataset("scalar").read(DType::F32);
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.item(), 2.75f);
  EXPECT_EQ(f.dataset("empty").read(DType::F32).shape(), (Shape{0}));
  EXPECT_EQ(f.dataset("empty3d").read(DType::I32).shape(), (Shape{2, 0, 3}));
  Shape shape;
  EXPECT_TRUE(f.dataset("empty3d").read_floats(&shape).empty());
  EXPECT_EQ(shape, (Shape{2, 0, 3}));
}

TEST_F(Hdf5, GroupsPathsAndChildren) {
  {
    FileWriter w(path("g.h5"));
    w.write("params/conv1/weight", Tensor::zeros({4, 3, 3, 3}));
    w.write("params/conv1/bias", Tensor::zeros({4}));
    Group buffers = w.create_group("buffers/bn1");
    EXPECT_EQ(buffers.path(), "/buffers/bn1");
    buffers.write("running_mean", Tensor::zeros({4}));
    EXPECT_EQ(w.create_group("buffers").children(), std::vector<std::string>{"bn1"});
    EXPECT_CONTAINS(file_error([&] { w.write("params/conv1/bias", Tensor::zeros({1})); }),
                    "/params/conv1/bias: already exists");
    w.commit();
  }
  File f(path("g.h5"));
  EXPECT_EQ(f.children(), (std::vector<std::string>{"buffers", "params"}));
  EXPECT_EQ(f.group("params/conv1").children(), (std::vector<std::string>{"bias", "weight"}));
  EXPECT_TRUE(f.exists("params/conv1/weight"));
  EXPECT_TRUE(f.exists("/buffers/bn1/running_mean"));
  EXPECT_FALSE(f.exists("params/conv2/weight"));
  EXPECT_FALSE(f.exists("params/conv1/weight/deeper"));
  EXPECT_TRUE(f.is_group("params"));
  EXPECT_FALSE(f.is_dataset("params"));
  EXPECT_TRUE(f.is_dataset("params/conv1/bias"));
  const Group conv1 = f.group("params").group("conv1");
  EXPECT_EQ(conv1.dataset("weight").path(), "/params/conv1/weight");
  EXPECT_EQ(conv1.dataset("weight").shape(), (Shape{4, 3, 3, 3}));
  EXPECT_CONTAINS(file_error([&] { f.group("params/conv1/weight"); }), "is not a group");
  EXPECT_CONTAINS(file_error([&] { f.dataset("params"); }), "is not a dataset");
}

TEST_F(Hdf5, AttributesOfEveryKind) {
  const std::vector<std::string> names = {"conv2_block1_0_conv", "", "dense_1/kernel:0"};
  {
    FileWriter w(path("a.h5"));
    w.set_attr_string("format", "ipguard-model");
    w.set_attr_int("version", 1);
    w.set_attr_int("big", -(int64_t{1} << 40));
    w.set_attr_double("acc", 0.1);
    w.set_attr_floats("mean", {0.4914f, 0.4822f, 0.4465f});
    w.set_attr_floats("none", {});
    w.set_attr_strings("vlen_names", names);
    w.set_attr_strings("fixed_names", names, StringLayout::Fixed);
    w.set_attr_strings("no_names", {}, StringLayout::Fixed);
    w.set_attr_string("utf8", "\xc3\xa9t\xc3\xa9");
    Group g = w.create_group("params");
    g.set_attr_string("note", "group attribute");
    g.set_attr_int("version", 3);
    g.set_attr_int("version", 4);  // replaces
    Dataset d = w.write("points", Tensor::zeros({2, 1, 4, 4}));
    d.set_attr_strings("method", {"ipguard"}, StringLayout::Fixed);
    d.set_attr_double("eps", 1.001e-5);
    w.commit();
  }
  File f(path("a.h5"));
  EXPECT_EQ(f.attr_string("format"), "ipguard-model");
  EXPECT_EQ(f.attr_int("version"), 1);
  EXPECT_EQ(f.attr_int("big"), -(int64_t{1} << 40));
  EXPECT_EQ(f.attr_double("acc"), 0.1);
  EXPECT_EQ(f.attr_double("version"), 1.0);  // integers widen to double
  EXPECT_EQ(f.attr_floats("mean"), (std::vector<float>{0.4914f, 0.4822f, 0.4465f}));
  EXPECT_TRUE(f.attr_floats("none").empty());
  EXPECT_EQ(f.attr_strings("vlen_names"), names);
  EXPECT_EQ(f.attr_strings("fixed_names"), names);
  EXPECT_TRUE(f.attr_strings("no_names").empty());
  EXPECT_EQ(f.attr_string("utf8"), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(f.attr_strings("format"), std::vector<std::string>{"ipguard-model"});
  EXPECT_TRUE(f.has_attr("acc"));
  EXPECT_FALSE(f.has_attr("seed"));
  EXPECT_EQ(f.attr_names(), (std::vector<std::string>{"acc", "big", kContentDigestAttr,
                                                      "fixed_names", "format", "mean", "no_names",
                                                      "none", "utf8", "version", "vlen_names"}));
  EXPECT_EQ(f.group("params").attr_string("note"), "group attribute");
  EXPECT_EQ(f.group("params").attr_int("version"), 4);
  EXPECT_EQ(f.dataset("points").attr_string("method"), "ipguard");
  EXPECT_EQ(f.dataset("points").attr_double("eps"), 1.001e-5);

  EXPECT_CONTAINS(file_error([&] { f.attr_int("format"); }),
                  "/: attribute 'format': expected an integer, found string");
  EXPECT_CONTAINS(file_error([&] { f.attr_int("acc"); }), "expected an integer, found float64");
  EXPECT_CONTAINS(file_error([&] { f.attr_string("mean"); }), "expected strings, found float32");
  EXPECT_CONTAINS(file_error([&] { f.attr_string("vlen_names"); }), "expected one value, found 3");
  EXPECT_CONTAINS(file_error([&] { f.dataset("points").attr_int("seed"); }),
                  path("a.h5") + ": /points: no attribute 'seed'");
  EXPECT_CONTAINS(file_error([&] { f.attr_strings_chunked("layer_names"); }),
                  "/: no attribute 'layer_names'");
}

// The two fixtures hold the same Keras-layout weights; they differ in how h5py stored
// the names (see tests/golden/make_golden.py).
void check_keras_style(const std::string& file, const std::string& version) {
  SCOPED_TRACE(file);
  File f(file);
  EXPECT_EQ(f.attr_string("backend"), "tensorflow");
  EXPECT_EQ(f.attr_string("keras_version"), version);
  const std::vector<std::string> layers = f.attr_strings_chunked("layer_names");
  ASSERT_EQ(layers, (std::vector<std::string>{"conv2d_1", "batch_normalization_1", "flatten_1",
                                              "dense_1"}));
  const std::vector<Shape> shapes = {{3, 3, 1, 2}, {2}, {2}, {2}, {2}, {2}, {8, 3}, {3}};
  size_t k = 0;
  for (const std::string& layer : layers) {
    const Group g = f.group(layer);
    for (const std::string& name : g.attr_strings_chunked("weight_names")) {
      ASSERT_LT(k, shapes.size());
      EXPECT_EQ(name.substr(0, layer.size() + 1), layer + "/");
      const Tensor t = g.dataset(name).read(DType::F32, shapes[k++]);
      for (float v : t.to_vector()) EXPECT_TRUE(std::isfinite(v));
    }
  }
  EXPECT_EQ(k, shapes.size());
  const std::vector<float> var =
      f.dataset("batch_normalization_1/batch_normalization_1/moving_variance:0").read_floats();
  for (float v : var) EXPECT_GE(v, 0.5f);
}

TEST_F(Hdf5, ReadsKerasStyleFixedLengthStrings) {
  check_keras_style(std::string(IPG_TEST_DATA_DIR) + "/keras_style.h5", "2.2.4");
  // The fixture splits dense_1's names in two chunks, as Keras does for long lists.
  File f(std::string(IPG_TEST_DATA_DIR) + "/keras_style.h5");
  EXPECT_FALSE(f.group("dense_1").has_attr("weight_names"));
  EXPECT_TRUE(f.group("flatten_1").attr_strings("weight_names").empty());
}

TEST_F(Hdf5, ReadsKerasStyleVariableLengthStrings) {
  check_keras_style(std::string(IPG_TEST_DATA_DIR) + "/keras_style_vlen.h5", "2.11.0");
}

TEST_F(Hdf5, MissingFile) {
  const std::string p = path("nope.h5");
  const std::string msg = file_error([&] { File f(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "no such file");
  EXPECT_CONTAINS(file_error([&] { File f(dir_.string()); }), "is a directory");
}

TEST_F(Hdf5, NotAnHdf5File) {
  const std::string p = path("weights.h5");
  std::ofstream(p) << "this is a text file, not HDF5\n";
  const std::string msg = file_error([&] { File f(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "not an HDF5 file");
  std::ofstream(path("empty.h5"));
  EXPECT_CONTAINS(file_error([&] { File f(path("empty.h5")); }), "not an HDF5 file");
}

// A sealed file cut short fails its integrity header (its byte count) before libhdf5
// reads it; an unsealed one (a legacy file) is caught by libhdf5. Both say "truncated".
TEST_F(Hdf5, TruncatedFile) {
  for (const Sealing sealing : {Sealing::Sealed, Sealing::Unsealed}) {
    const std::string whole = path("whole.h5");
    {
      FileWriter w(whole, sealing);
      w.write("params/w", Tensor::ones({64, 64}));
      w.commit();
    }
    std::ifstream in(whole, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 64u * 64u * 4u);
    for (size_t keep : {bytes.size() / 2, size_t{1000}}) {
      const std::string cut = path("cut_" + std::to_string(keep) + ".h5");
      std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(keep));
      const std::string msg = file_error([&] { File(cut).dataset("params/w").read(DType::F32); });
      EXPECT_CONTAINS(msg, cut);
      EXPECT_CONTAINS(msg, "truncated");
      if (sealing == Sealing::Sealed) {
        EXPECT_CONTAINS(msg, std::to_string(keep - 512) + " of its " +
                                 std::to_string(bytes.size() - 512) + " bytes");
      }
    }
  }
}

TEST_F(Hdf5, WrongDtypeAndShapeReportWhatWasFound) {
  {
    FileWriter w(path("t.h5"));
    w.write("labels", Tensor::from_vector_i32({1, 2, 3}, {3}));
    w.write("points", Tensor::zeros({2, 2}));
    w.commit();
  }
  File f(path("t.h5"));
  const std::string msg = file_error([&] { f.dataset("labels").read(DType::F32); });
  EXPECT_CONTAINS(msg, path("t.h5") + ": /labels: expected float32, found int32 [3]");
  EXPECT_CONTAINS(file_error([&] { f.dataset("points").read(DType::I32); }),
                  "expected int32, found float32 [2, 2]");
  EXPECT_CONTAINS(file_error([&] { f.dataset("points").read(DType::F32, {4}); }),
                  "/points: expected shape [4], found [2, 2]");
  EXPECT_EQ(f.dataset("points").read(DType::F32, {2, 2}).numel(), 4);
  EXPECT_EQ(f.dataset("labels").read_floats(), (std::vector<float>{1, 2, 3}));
}

TEST_F(Hdf5, MissingDatasetNamesFileAndPath) {
  {
    FileWriter w(path("m.h5"));
    w.create_group("params");
    w.commit();
  }
  File f(path("m.h5"));
  EXPECT_CONTAINS(file_error([&] { f.dataset("params/conv1/weight"); }),
                  path("m.h5") + ": /params/conv1/weight: no such dataset");
  EXPECT_CONTAINS(file_error([&] { f.group("params").dataset("fc"); }),
                  "/params/fc: no such dataset");
  EXPECT_CONTAINS(file_error([&] { f.group("buffers"); }), "/buffers: no such group");
}

TEST_F(Hdf5, ConvertsOtherNumericTypesOnlyWhenAsked) {
  const std::vector<double> f64 = {0.5, -1.25, 3.0};
  write_raw(path("f64.h5"), "x", H5T_NATIVE_DOUBLE, {3}, f64.data());
  File f(path("f64.h5"));
  EXPECT_EQ(f.dataset("x").type_name(), "float64");
  EXPECT_EQ(f.dataset("x").read_floats(), (std::vector<float>{0.5f, -1.25f, 3.f}));
  EXPECT_CONTAINS(file_error([&] { f.dataset("x").read(DType::F32); }),
                  "expected float32, found float64 [3]");

  const std::vector<uint8_t> pixels = {0, 128, 255, 7};
  write_raw(path("u8.h5"), "y", H5T_NATIVE_UINT8, {2, 2}, pixels.data());
  Shape shape;
  EXPECT_EQ(File(path("u8.h5")).dataset("y").read_floats(&shape),
            (std::vector<float>{0, 128, 255, 7}));
  EXPECT_EQ(shape, (Shape{2, 2}));
  EXPECT_EQ(File(path("u8.h5")).dataset("y").type_name(), "uint8");
}

TEST_F(Hdf5, AbsurdSizeRejectedBeforeAllocation) {
  // Chunked and never written: the file is tiny but claims 10^12 elements.
  write_raw(path("huge.h5"), "x", H5T_NATIVE_FLOAT, {1000000, 1000000}, nullptr, true);
  ASSERT_LT(fs::file_size(path("huge.h5")), 100000u);
  File f(path("huge.h5"));
  EXPECT_EQ(f.dataset("x").shape(), (Shape{1000000, 1000000}));
  EXPECT_CONTAINS(file_error([&] { f.dataset("x").read(DType::F32); }),
                  "/x: claims more than 4294967296 elements");
  EXPECT_CONTAINS(file_error([&] { f.dataset("x").read_floats(); }), "claims more than");
}

TEST_F(Hdf5, WriterPublishesOnlyOnCommit) {
  const std::string p = path("model.h5");
  std::string temp;
  {
    FileWriter w(p);
    temp = w.temp_path();
    EXPECT_EQ(temp, p + ".tmp-" + std::to_string(getpid()));
    w.write("x", Tensor::ones({8}));
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_FALSE(fs::exists(p));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(p));

  // An exception between writes leaves neither the target nor the temp file.
  EXPECT_THROW(
      {
        FileWriter w(p);
        w.write("x", Tensor::ones({8}));
        w.dataset("missing");
      },
      FileError);
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(p));

  {
    FileWriter w(p);
    w.write("x", Tensor::full({2}, 1.f));
    w.commit();
  }
  EXPECT_TRUE(fs::exists(p));
  EXPECT_FALSE(fs::exists(temp));

  // Rewriting: readers see the old file until commit(), which replaces it whole.
  {
    FileWriter w(p);
    Group g = w.create_group("g");
    Dataset d = w.write("x", Tensor::full({2}, 2.f));
    EXPECT_EQ(File(p).dataset("x").read(DType::F32).to_vector(), (std::vector<float>{1, 1}));
    w.commit();
    // Handles that outlive commit() are closed with the file: errors, not crashes.
    EXPECT_THROW(g.write("y", Tensor::ones({1})), FileError);
    EXPECT_THROW(d.shape(), FileError);
    EXPECT_CONTAINS(file_error([&] { w.commit(); }), "already committed");
  }
  EXPECT_EQ(File(p).dataset("x").read(DType::F32).to_vector(), (std::vector<float>{2, 2}));
  EXPECT_FALSE(fs::exists(temp));
}

TEST_F(Hdf5, WriterIntoMissingDirectoryFails) {
  const std::string p = path("no/such/dir/model.h5");
  const std::string msg = file_error([&] { FileWriter w(p); });
  EXPECT_CONTAINS(msg, p);
  EXPECT_CONTAINS(msg, "cannot create");
}

TEST_F(Hdf5, ReadOnlyFileRejectsWrites) {
  {
    FileWriter w(path("r.h5"));
    w.commit();
  }
  File f(path("r.h5"));
  EXPECT_THROW(f.write("x", Tensor::ones({1})), FileError);
  EXPECT_THROW(f.set_attr_int("version", 2), FileError);
}

}  // namespace
}  // namespace ipg::h5
