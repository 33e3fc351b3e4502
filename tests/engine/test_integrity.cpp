// Sealed files (engine/hdf5.h, docs/file-integrity.md): the integrity header and the
// content digest FileWriter adds, what each catches, the legacy notice, names escaped in
// messages, and the strict attribute reads the format readers rely on.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "engine/sha256.h"
#include "tests/engine/file_flips.h"
#include "tests/support/file_error.h"

namespace ipg::h5 {
namespace {

namespace fs = std::filesystem;

class Integrity : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("ipg_integrity_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    old_sink_ = set_notice_sink([this](const std::string& line) { notices_.push_back(line); });
  }
  void TearDown() override {
    set_notice_sink(old_sink_);
    fs::remove_all(dir_);
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A small file with groups, datasets of both types and attributes of every kind.
  void write_sample(const std::string& p, Sealing sealing = Sealing::Sealed) {
    FileWriter w(p, sealing);
    w.set_attr_string("format", "sample");
    w.set_attr_int("version", 2);
    w.set_attr_floats("mean", {0.25f, 0.5f});
    w.set_attr_double("accuracy", 0.75);
    w.write("params/conv/weight", Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
    w.write("params/conv/bias", Tensor::from_vector({-1, 1}, {2}));
    Dataset d = w.write("labels", Tensor::from_vector_i32({3, 1, 4, 1, 5}, {5}));
    d.set_attr_string("note", "five labels");
    w.create_group("empty");
    w.commit();
  }

  fs::path dir_;
  NoticeSink old_sink_;
  std::vector<std::string> notices_;
};

using testing::file_error;

TEST_F(Integrity, SealedFileCarriesBothDigests) {
  const std::string p = path("s.h5");
  write_sample(p);
  const std::string bytes = test::read_bytes(p);
  ASSERT_GT(bytes.size(), 512u);
  const std::string tail = bytes.substr(512);
  std::string header = "ipguard-integrity sha256=" + sha256_hex(tail) +
                       " bytes=" + std::to_string(tail.size()) + "\n";
  header.resize(512, '\0');
  EXPECT_EQ(bytes.substr(0, 512), header);
  const File f(p);
  EXPECT_EQ(f.byte_seal(), ByteSeal::Verified);
  EXPECT_EQ(f.scalar_string(kContentDigestAttr), content_digest(f));
  EXPECT_NO_THROW(check_integrity(f, 2, "hint"));
  EXPECT_TRUE(notices_.empty());
  // Still an ordinary HDF5 file for every other reader.
  EXPECT_EQ(f.dataset("labels").read(DType::I32).to_vector_i32(),
            (std::vector<int32_t>{3, 1, 4, 1, 5}));
}

// The canonical form: the same content stored differently (big-endian, chunked and
// compressed, fixed-length strings, attributes created in another order, no user block,
// timestamps) has the same digest; any change to names, types, shapes or values does not.
TEST_F(Integrity, ContentDigestIgnoresLayoutButNotContent) {
  const std::string ours = path("ours.h5");
  write_sample(ours);
  auto other = [&](const std::string& name, const std::function<void(hid_t)>& change) {
    const std::string p = path(name);
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    auto attr = [](hid_t obj, const char* n, hid_t type, int rank, hsize_t len, hid_t mem,
                   const void* v) {
      const hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &len, nullptr);
      const hid_t a = H5Acreate2(obj, n, type, space, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, mem, v);
      H5Aclose(a);
      H5Sclose(space);
    };
    const double acc = 0.75;
    attr(f, "accuracy", H5T_IEEE_F64BE, 0, 1, H5T_NATIVE_DOUBLE, &acc);
    const float mean[2] = {0.25f, 0.5f};
    attr(f, "mean", H5T_IEEE_F32BE, 1, 2, H5T_NATIVE_FLOAT, mean);
    const int64_t version = 2;
    attr(f, "version", H5T_STD_I64BE, 0, 1, H5T_NATIVE_INT64, &version);
    const hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_strpad(str, H5T_STR_NULLPAD);
    H5Tset_size(str, 6);
    attr(f, "format", str, 0, 1, str, "sample");
    const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    auto dataset = [&](const char* n, hid_t type, std::vector<hsize_t> dims, hid_t mem,
                       const void* v) {
      const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
      const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(dcpl, static_cast<int>(dims.size()), dims.data());
      H5Pset_deflate(dcpl, 6);
      const hid_t d = H5Dcreate2(f, n, type, space, lcpl, dcpl, H5P_DEFAULT);
      H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
      H5Pclose(dcpl);
      H5Sclose(space);
      return d;
    };
    const int32_t labels[5] = {3, 1, 4, 1, 5};
    const hid_t l = dataset("labels", H5T_STD_I32BE, {5}, H5T_NATIVE_INT32, labels);
    H5Tset_size(str, 11);
    attr(l, "note", str, 0, 1, str, "five labels");
    H5Dclose(l);
    const float bias[2] = {-1, 1};
    H5Dclose(dataset("params/conv/bias", H5T_IEEE_F32BE, {2}, H5T_NATIVE_FLOAT, bias));
    const float weight[6] = {1, 2, 3, 4, 5, 6};
    H5Dclose(dataset("params/conv/weight", H5T_IEEE_F32LE, {2, 3}, H5T_NATIVE_FLOAT, weight));
    H5Gclose(H5Gcreate2(f, "empty", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (change) change(f);
    H5Tclose(str);
    H5Pclose(lcpl);
    H5Fclose(f);
    return content_digest(File(p));
  };
  const std::string want = content_digest(File(ours));
  EXPECT_EQ(other("same.h5", {}), want);
  auto set_f64 = [](hid_t f, const char* obj, const char* n, hid_t type, double v) {
    H5Adelete_by_name(f, obj, n, H5P_DEFAULT);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a =
        H5Acreate_by_name(f, obj, n, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(space);
  };
  // A changed value, an attribute stored as float32 instead of float64, a renamed or an
  // added attribute, an extra group, a dataset's bytes under another shape.
  EXPECT_NE(other("value.h5", [&](hid_t f) { set_f64(f, "/", "accuracy", H5T_IEEE_F64LE, 0.5); }),
            want);
  EXPECT_NE(other("type.h5", [&](hid_t f) { set_f64(f, "/", "accuracy", H5T_IEEE_F32LE, 0.75); }),
            want);
  EXPECT_NE(other("added.h5", [&](hid_t f) { set_f64(f, "/labels", "x", H5T_IEEE_F64LE, 0); }),
            want);
  EXPECT_NE(other("renamed.h5",
                  [&](hid_t f) { H5Arename_by_name(f, "/", "accuracy", "accuracx", H5P_DEFAULT); }),
            want);
  EXPECT_NE(other("group.h5",
                  [](hid_t f) {
                    H5Gclose(H5Gcreate2(f, "more", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
                  }),
            want);
  EXPECT_NE(other("shape.h5",
                  [](hid_t f) {
                    H5Ldelete(f, "params/conv/weight", H5P_DEFAULT);
                    const hsize_t dims[2] = {3, 2};
                    const hid_t space = H5Screate_simple(2, dims, nullptr);
                    const hid_t d = H5Dcreate2(f, "params/conv/weight", H5T_IEEE_F32LE, space,
                                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                    const float w[6] = {1, 2, 3, 4, 5, 6};
                    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
                    H5Dclose(d);
                    H5Sclose(space);
                  }),
            want);
}

// Every single-byte change anywhere in a sealed file (integrity header, superblock,
// object headers, data) is refused when the file is opened, never by libhdf5 parsing
// changed bytes: File checks the header first, and a user block that is not a
// well-formed header is refused there too.
TEST_F(Integrity, EveryByteFlipOfASealedFileIsRefused) {
  const std::string good = path("good.h5");
  write_sample(good);
  const std::string bad = path("bad.h5");
  const size_t size = test::read_bytes(good).size();
  std::vector<size_t> all(size);
  for (size_t i = 0; i < size; ++i) all[i] = i;
  size_t by_header = 0;
  const size_t refused = test::count_flips(good, bad, all, [&](size_t at) {
    try {
      const File f(bad);
      ADD_FAILURE() << "byte " << at << ": opened with seal " << static_cast<int>(f.byte_seal());
      return false;
    } catch (const FileError& e) {
      const std::string msg = e.what();
      const bool named = msg.find("content digest mismatch") != std::string::npos ||
                         msg.find("integrity header damaged") != std::string::npos;
      EXPECT_TRUE(named) << "byte " << at << ": " << msg;
      by_header += at < 512;
      return named;
    }
  });
  EXPECT_EQ(refused, size);
  EXPECT_EQ(by_header, 512u);
}

// Without the header (a file some tool rewrote), the content digest alone still catches
// a changed value or attribute.
TEST_F(Integrity, DigestWithoutHeaderStillChecksContent) {
  const std::string p = path("noheader.h5");
  write_sample(p, Sealing::Unsealed);
  seal_file(p, p);
  {
    const File f(p);
    EXPECT_EQ(f.byte_seal(), ByteSeal::None);
    EXPECT_NO_THROW(check_integrity(f, 2, ""));
  }
  const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, "params/conv/bias", H5P_DEFAULT);
  const float changed[2] = {-1, 1.0001f};
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, changed);
  H5Dclose(d);
  H5Fclose(f);
  EXPECT_CONTAINS(file_error([&] { check_integrity(File(p), 2, ""); }),
                  p + ": content digest mismatch (corrupted or modified)");
  EXPECT_TRUE(notices_.empty());
}

TEST_F(Integrity, LegacyFileLoadsWithOneNoticeAndVersion2NeedsADigest) {
  const std::string p = path("legacy.h5");
  write_sample(p, Sealing::Unsealed);
  const File f(p);
  EXPECT_EQ(f.byte_seal(), ByteSeal::None);
  EXPECT_FALSE(f.has_attr(kContentDigestAttr));
  check_integrity(f, 1, "re-save it");
  ASSERT_EQ(notices_.size(), 1u);
  EXPECT_EQ(notices_[0], "notice: " + p + " has no integrity digest (format 1); re-save it");
  EXPECT_CONTAINS(file_error([&] { check_integrity(f, 2, ""); }),
                  "format 2 file without its content digest");
  EXPECT_EQ(notices_.size(), 1u);
}

// Sealing reads the file back: content no reader of ours would accept cannot be sealed,
// and the failed commit leaves nothing behind.
TEST_F(Integrity, SealingRefusesWhatItCannotReadBack) {
  const std::string p = path("x.h5");
  {
    FileWriter w(p);
    w.write("a", Tensor::zeros({2}));
    ASSERT_GE(H5Lcreate_soft("/a", w.id(), "b", H5P_DEFAULT, H5P_DEFAULT), 0);
    EXPECT_CONTAINS(file_error([&] { w.commit(); }), "/b: is a soft or external link");
  }
  {
    FileWriter w(p);
    const hsize_t n = 1000;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    H5Dclose(H5Dcreate2(w.id(), "declared", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    H5Sclose(space);
    EXPECT_CONTAINS(file_error([&] { w.commit(); }), "/declared: declares 1000 elements");
  }
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir_)) left.push_back(e.path().filename());
  EXPECT_TRUE(left.empty()) << left.size() << " files left, e.g. " << left[0];
}

// HDF5 stores creation times in object headers by default: the same content saved twice
// would give different bytes, and the shipped weights' SHA-256 could not be remade.
TEST_F(Integrity, WrittenObjectsCarryNoTimestamps) {
  const std::string p = path("t.h5");
  write_sample(p);
  const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  int objects = 0;
  for (const char* name : {"/", "params", "params/conv", "params/conv/weight", "labels", "empty"}) {
    H5O_info_t info;
    ASSERT_GE(H5Oget_info_by_name2(f, name, &info, H5O_INFO_TIME, H5P_DEFAULT), 0) << name;
    if (std::string(name) != "/") {
      EXPECT_EQ(info.mtime, 0) << name;
    }
    ++objects;
  }
  H5Fclose(f);
  EXPECT_EQ(objects, 6);
}

// ---- names and attributes ----------------------------------------------------------

TEST(Hdf5Printable, EscapesAndCaps) {
  EXPECT_EQ(printable("params/conv1"), "params/conv1");
  EXPECT_EQ(printable(std::string("a\x01"
                                  "b\\\xff\n",
                                  6)),
            "a\\x01b\\x5c\\xff\\x0a");
  EXPECT_EQ(printable(std::string(100, 'x'), 10), std::string(10, 'x') + "...");
  EXPECT_EQ(printable(std::string(1, '\0')), "\\x00");
}

class Hdf5Names : public Integrity {};

// A link name with control bytes (what a corrupt link table decodes to) is refused with
// the name escaped; names of other bytes (UTF-8) are listed; an over-long name is refused.
TEST_F(Hdf5Names, LinkNamesAreBoundedAndEscaped) {
  const std::string p = path("names.h5");
  {
    FileWriter w(p, Sealing::Unsealed);
    w.write("ok/\xc3\xa9t\xc3\xa9", Tensor::zeros({1}));
    w.write("bad/w\x01\x02", Tensor::zeros({1}));
    w.write("long/" + std::string(kMaxNameLength + 1, 'n'), Tensor::zeros({1}));
    w.commit();
  }
  const File f(p);
  EXPECT_EQ(f.group("ok").children(), std::vector<std::string>{"\xc3\xa9t\xc3\xa9"});
  const std::string msg = file_error([&] { f.group("bad").children(); });
  EXPECT_CONTAINS(msg, "/bad: cannot list group: a name with control bytes ('w\\x01\\x02')");
  EXPECT_EQ(msg.find('\x01'), std::string::npos);
  EXPECT_CONTAINS(file_error([&] { f.group("long").children(); }), "longer than 1024 bytes");
  // Paths in messages are escaped too.
  EXPECT_CONTAINS(file_error([&] { f.dataset("ok/\xc3\xa9t\xc3\xa9").read(DType::I32); }),
                  "/ok/\\xc3\\xa9t\\xc3\\xa9: expected int32");
}

// The strict reads refuse another class or shape, naming what they found; attr_int and
// friends still convert (Keras files need it).
TEST_F(Hdf5Names, StrictAttributeReads) {
  const std::string p = path("attrs.h5");
  {
    FileWriter w(p, Sealing::Unsealed);
    w.set_attr_int("i", 7);
    w.set_attr_double("d", 0.5);
    w.set_attr_string("s", "text");
    w.set_attr_floats("v", {1, 2});
    w.set_attr_strings("sv", {"one"});
    w.set_attr_strings("fixed", {"abc"}, StringLayout::Fixed);
    w.commit();
    // A one-element array and a fixed-length scalar string, as other writers store them.
    const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hsize_t one = 1;
    const hid_t space = H5Screate_simple(1, &one, nullptr);
    const hid_t a = H5Acreate2(f, "i1", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const int64_t v = 7;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(space);
    const hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 3);
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const hid_t fs = H5Acreate2(f, "fs", str, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(fs, str, "xyz");
    H5Aclose(fs);
    H5Sclose(scalar);
    H5Tclose(str);
    H5Fclose(f);
  }
  const File f(p);
  EXPECT_EQ(f.scalar_int("i"), 7);
  EXPECT_EQ(f.scalar_float("d"), 0.5);
  EXPECT_EQ(f.scalar_string("s"), "text");
  EXPECT_EQ(f.scalar_string("fs"), "xyz");
  EXPECT_EQ(f.float_vector("v", 2), (std::vector<float>{1, 2}));
  EXPECT_EQ(f.attr_int("i1"), 7);  // the lenient read takes it
  EXPECT_CONTAINS(file_error([&] { f.scalar_int("d"); }),
                  "attribute 'd': expected an integer scalar, found float64 scalar");
  EXPECT_CONTAINS(file_error([&] { f.scalar_int("i1"); }), "found int64 [1]");
  EXPECT_CONTAINS(file_error([&] { f.scalar_float("i"); }),
                  "expected a float scalar, found int64 scalar");
  EXPECT_CONTAINS(file_error([&] { f.scalar_string("i"); }), "expected a string scalar");
  EXPECT_CONTAINS(file_error([&] { f.scalar_string("sv"); }), "found string [1]");
  EXPECT_CONTAINS(file_error([&] { f.scalar_string("fixed"); }), "found string [1]");
  EXPECT_CONTAINS(file_error([&] { f.float_vector("v", 3); }),
                  "expected float [3], found float32 [2]");
  EXPECT_CONTAINS(file_error([&] { f.float_vector("d", 1); }),
                  "expected float [1], found float64 scalar");
  EXPECT_CONTAINS(file_error([&] { f.float_vector("i1", 1); }), "found int64 [1]");
}

}  // namespace
}  // namespace ipg::h5
