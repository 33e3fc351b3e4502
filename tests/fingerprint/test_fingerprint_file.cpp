// Fingerprint files: bit-exact round trips, SHA-256 test vectors, and every kind of bad
// file giving a FileError that names the file and the object (never a crash).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>

#include "engine/hdf5.h"
#include "engine/random.h"
#include "engine/sha256.h"
#include "fingerprint/fingerprint_file.h"
#include "tests/engine/file_flips.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;

class FingerprintFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ipg_fp_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fp_ = sample(5);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static Fingerprint sample(int64_t n) {
    Fingerprint fp;
    fp.method = "ipguard";
    fp.params.k = 10;
    fp.params.lr = 0.01;
    fp.params.iters = 1000;
    fp.params.eps = 0.0;
    fp.params.init = "train";
    fp.params.target = "random";
    fp.seed = 0xfedcba9876543210ull;  // high bit set: stored as its int64 bit pattern
    fp.model_sha256 = sha256_hex("model bytes");
    fp.arch = "lenet5";
    fp.created = "2026-11-28T19:30:00Z";
    Generator g(7);
    fp.points = Tensor::uniform({n, 1, 6, 5}, 0.f, 1.f, g);
    fp.points.data()[0] = 0.f;
    fp.points.data()[1] = 1.f;
    fp.points.data()[2] = std::nextafter(1.f, 0.f);
    std::vector<int32_t> labels;
    for (int64_t i = 0; i < n; ++i) {
      labels.push_back(static_cast<int32_t>((i * 3) % 10));
      fp.source.push_back(static_cast<int32_t>(i % 10));
      fp.target.push_back(static_cast<int32_t>((i + 1) % 10));
      fp.iterations.push_back(static_cast<int32_t>(17 * i));
      fp.final_loss.push_back(i == 1 ? std::numeric_limits<float>::infinity() : 0.1f * i - 0.2f);
      fp.converged.push_back(static_cast<uint8_t>(i % 2));
    }
    fp.labels = Tensor::from_vector_i32(labels, {n});
    return fp;
  }

  // Writes `fp` like save_fingerprint but without any checks, leaving out the objects
  // named in `skip`, then lets `tweak` change the file. Sealed, it is a version-2 file
  // (its digest matches whatever was written, so the reader gets past the integrity
  // check); unsealed, a version-1 file without a digest (for contents sealing refuses).
  std::string raw(const Fingerprint& fp, const std::set<std::string>& skip = {},
                  const std::function<void(h5::FileWriter&)>& tweak = {},
                  h5::Sealing sealing = h5::Sealing::Sealed) {
    const std::string p = path("raw.h5");
    h5::FileWriter w(p, sealing);
    auto str = [&](const char* name, const std::string& v) {
      if (!skip.count(name)) w.set_attr_string(name, v);
    };
    str("format", "ipguard-fingerprint");
    if (!skip.count("version")) w.set_attr_int("version", sealing == h5::Sealing::Sealed ? 2 : 1);
    str("method", fp.method);
    if (!skip.count("seed")) w.set_attr_int("seed", static_cast<int64_t>(fp.seed));
    str("model_sha256", fp.model_sha256);
    str("arch", fp.arch);
    str("created", fp.created);
    w.set_attr_double("param_k", fp.params.k);
    w.set_attr_double("param_lr", fp.params.lr);
    w.set_attr_int("param_iters", fp.params.iters);
    w.set_attr_double("param_eps", fp.params.eps);
    str("param_init", fp.params.init);
    str("param_target", fp.params.target);
    auto len = [](const auto& v) { return Shape{static_cast<int64_t>(v.size())}; };
    auto ds = [&](const std::string& name, const Tensor& t) {
      if (!skip.count(name)) w.write(name, t);
    };
    ds("points", fp.points);
    ds("labels", fp.labels);
    ds("candidates/source", Tensor::from_vector_i32(fp.source, len(fp.source)));
    ds("candidates/target", Tensor::from_vector_i32(fp.target, len(fp.target)));
    ds("candidates/iterations", Tensor::from_vector_i32(fp.iterations, len(fp.iterations)));
    ds("candidates/final_loss", Tensor::from_vector(fp.final_loss, len(fp.final_loss)));
    ds("candidates/converged",
       Tensor::from_vector_i32(std::vector<int32_t>(fp.converged.begin(), fp.converged.end()),
                               len(fp.converged)));
    if (tweak) tweak(w);
    w.commit();
    return p;
  }

  // Loading `file` throws a FileError naming the file and containing every fragment.
  void expect_error(const std::string& file, const std::vector<std::string>& fragments) {
    try {
      load_fingerprint(file);
      ADD_FAILURE() << "expected a FileError mentioning '" << fragments[0] << "'";
    } catch (const FileError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
    }
  }

  // Files left in the test folder.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
  Fingerprint fp_;
};

// A dataset declared with `dims` but never written: HDF5 stores no data for it.
void declare_only(h5::FileWriter& w, const char* name, std::vector<hsize_t> dims, hid_t type) {
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  ASSERT_GE(space, 0);
  const hid_t d = H5Dcreate2(w.id(), name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(d, 0);
  H5Dclose(d);
  H5Sclose(space);
}

TEST_F(FingerprintFile, RoundTripIsBitExact) {
  const std::string p = path("fp.h5");
  save_fingerprint(fp_, p);
  const Fingerprint r = load_fingerprint(p);
  EXPECT_EQ(r.method, fp_.method);
  EXPECT_TRUE(r.params == fp_.params);
  EXPECT_EQ(r.seed, fp_.seed);
  EXPECT_EQ(r.model_sha256, fp_.model_sha256);
  EXPECT_EQ(r.arch, fp_.arch);
  EXPECT_EQ(r.created, fp_.created);
  ASSERT_EQ(r.points.shape(), fp_.points.shape());
  EXPECT_EQ(std::memcmp(r.points.data(), fp_.points.data(), fp_.points.nbytes()), 0);
  EXPECT_EQ(r.labels.to_vector_i32(), fp_.labels.to_vector_i32());
  EXPECT_EQ(r.source, fp_.source);
  EXPECT_EQ(r.target, fp_.target);
  EXPECT_EQ(r.iterations, fp_.iterations);
  ASSERT_EQ(r.final_loss.size(), fp_.final_loss.size());
  EXPECT_EQ(std::memcmp(r.final_loss.data(), fp_.final_loss.data(), 4 * r.final_loss.size()), 0);
  EXPECT_EQ(r.converged, fp_.converged);
  EXPECT_EQ(r.size(), 5);
  EXPECT_EQ(listing(), std::vector<std::string>{"fp.h5"});  // no temp file left

  // Saving again replaces the file; the hash of a file is the hash of its bytes.
  save_fingerprint(r, p);
  std::ifstream in(p, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(sha256_file(p), sha256_hex(bytes));
}

TEST_F(FingerprintFile, UnknownHashAndUint8ConvergedAreAccepted) {
  fp_.model_sha256.clear();
  const std::string p = raw(fp_, {"candidates/converged"}, [](h5::FileWriter& w) {
    const hsize_t n = 5;
    const uint8_t v[5] = {1, 0, 1, 1, 0};
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t c = H5Gopen2(w.id(), "candidates", H5P_DEFAULT);
    const hid_t d =
        H5Dcreate2(c, "converged", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Gclose(c);
    H5Sclose(space);
  });
  const Fingerprint r = load_fingerprint(p);
  EXPECT_EQ(r.converged, (std::vector<uint8_t>{1, 0, 1, 1, 0}));
  EXPECT_EQ(r.model_sha256, "");
}

TEST_F(FingerprintFile, MissingNotHdf5AndTruncatedFiles) {
  expect_error(path("nope.h5"), {"no such file"});
  const std::string text = path("text.h5");
  std::ofstream(text) << "not an HDF5 file at all\n";
  expect_error(text, {"not an HDF5 file"});
  expect_error(dir_.string(), {"directory"});

  const std::string good = path("good.h5");
  save_fingerprint(fp_, good);
  const auto size = fs::file_size(good);
  for (auto keep : {size / 2, size - 1, uintmax_t{600}, uintmax_t{8}}) {
    const std::string cut = path("cut.h5");
    fs::copy_file(good, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, keep);
    EXPECT_THROW(load_fingerprint(cut), FileError) << "kept " << keep << " bytes";
  }
  EXPECT_THROW(sha256_file(path("nope.h5")), FileError);
}

TEST_F(FingerprintFile, WrongFormatVersionOrAttributes) {
  expect_error(raw(fp_, {"format"}), {"not an ipguard fingerprint file"});
  expect_error(
      raw(fp_, {"format"}, [](h5::FileWriter& w) { w.set_attr_string("format", "ipguard-other"); }),
      {"not an ipguard fingerprint file"});
  expect_error(
      raw(fp_, {"format"}, [](h5::FileWriter& w) { w.set_attr_string("format", "ipguard-model"); }),
      {"an ipguard model, not a fingerprint", "ipguard extract --model"});
  expect_error(raw(fp_, {"format"}, [](h5::FileWriter& w) { w.set_attr_int("format", 1); }),
               {"format", "expected a string scalar, found int64 scalar"});
  expect_error(raw(fp_, {"version"}, [](h5::FileWriter& w) { w.set_attr_int("version", 3); }),
               {"version 3 is not supported"});
  expect_error(raw(fp_, {"seed"}), {"no attribute 'seed'"});
  expect_error(raw(fp_, {"method"}, [](h5::FileWriter& w) { w.set_attr_string("method", ""); }),
               {"'method' is empty"});
  expect_error(raw(fp_, {"model_sha256"},
                   [](h5::FileWriter& w) { w.set_attr_string("model_sha256", "ABC"); }),
               {"model_sha256"});
  expect_error(raw(fp_, {}, [](h5::FileWriter& w) { w.set_attr_double("param_lr", NAN); }),
               {"param_lr"});
  expect_error(raw(fp_, {}, [](h5::FileWriter& w) { w.set_attr_int("param_iters", -1); }),
               {"param_iters"});
}

TEST_F(FingerprintFile, MissingDatasets) {
  expect_error(raw(fp_, {"points"}), {"/points", "missing"});
  expect_error(raw(fp_, {"labels"}), {"/labels", "missing"});
  expect_error(raw(fp_, {"candidates/converged"}), {"/candidates/converged", "missing"});
  expect_error(raw(fp_, {"candidates/source", "candidates/target", "candidates/iterations",
                         "candidates/final_loss", "candidates/converged"}),
               {"/candidates", "missing"});
}

TEST_F(FingerprintFile, ShapeAndTypeMismatches) {
  Fingerprint f = fp_;
  f.labels = Tensor::from_vector_i32({1, 2, 3, 4}, {4});
  expect_error(raw(f), {"/labels", "expected shape [5], found [4]"});

  f = fp_;
  f.points = Tensor::zeros({5, 6, 5});
  expect_error(raw(f), {"/points", "rank 4"});

  f = fp_;
  f.points = Tensor::zeros({5, 0, 6, 5});
  expect_error(raw(f), {"/points", "empty dimension"});

  f = fp_;
  f.points = Tensor::zeros({5, 1, 6, 5}, Device::cpu(), DType::I32);
  expect_error(raw(f), {"/points", "expected float32, found int32"});

  expect_error(
      raw(fp_, {"candidates/iterations"},
          [](h5::FileWriter& w) {
            w.write("candidates/iterations", Tensor::zeros({5, 1}, Device::cpu(), DType::I32));
          }),
      {"/candidates/iterations", "expected shape [5]"});
  expect_error(raw(fp_, {"candidates/final_loss"},
                   [](h5::FileWriter& w) {
                     w.write("candidates/final_loss",
                             Tensor::zeros({5}, Device::cpu(), DType::I32));
                   }),
               {"/candidates/final_loss", "expected float32"});
  expect_error(raw(fp_, {"candidates/converged"},
                   [](h5::FileWriter& w) { w.write("candidates/converged", Tensor::zeros({5})); }),
               {"/candidates/converged", "expected int32 or uint8, found float32"});
  expect_error(raw(fp_, {"candidates/converged"},
                   [](h5::FileWriter& w) {
                     w.write("candidates/converged", Tensor::from_vector_i32({0, 1, 2, 0, 0}, {5}));
                   }),
               {"/candidates/converged", "not 0 or 1"});
  // A group where a dataset belongs.
  expect_error(raw(fp_, {"labels"}, [](h5::FileWriter& w) { w.create_group("labels"); }),
               {"/labels"});
}

TEST_F(FingerprintFile, BadValues) {
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity(), 1.0001f, -1e-7f}) {
    Fingerprint f = fp_;
    f.points = fp_.points.clone();
    f.points.data()[13] = bad;
    expect_error(raw(f), {"/points", "value 13", "in [0, 1]"});
    EXPECT_THROW(save_fingerprint(f, path("never.h5")), std::invalid_argument);
  }
  Fingerprint f = fp_;
  f.labels = Tensor::from_vector_i32({0, 1, -3, 2, 2}, {5});
  expect_error(raw(f), {"/labels", "label 2 is negative"});
  f = fp_;
  f.source[4] = -1;
  expect_error(raw(f), {"/candidates/source", "negative"});
  f = fp_;
  f.iterations[0] = -1;
  expect_error(raw(f), {"/candidates/iterations", "negative"});
  EXPECT_FALSE(fs::exists(path("never.h5")));
}

// Version-1 files (no digest: sealing refuses datasets declared without data), read
// past the integrity check with one notice each.
TEST_F(FingerprintFile, AbsurdDimensionsAreRefusedBeforeAllocating) {
  std::vector<std::string> notices;
  const h5::NoticeSink old =
      h5::set_notice_sink([&](const std::string& line) { notices.push_back(line); });
  const h5::Sealing legacy = h5::Sealing::Unsealed;
  // 2^20 x 3 x 1024 x 1024 floats would be 12 TiB; the header alone claims it.
  expect_error(raw(
                   fp_, {"points"},
                   [](h5::FileWriter& w) {
                     declare_only(w, "points", {hsize_t{1} << 20, 3, 1024, 1024}, H5T_IEEE_F32LE);
                   },
                   legacy),
               {"/points", "refusing to read"});
  expect_error(raw(
                   fp_, {"points"},
                   [](h5::FileWriter& w) {
                     declare_only(w, "points", {hsize_t{1} << 40, 1, 1, 1}, H5T_IEEE_F32LE);
                   },
                   legacy),
               {"/points"});
  // Within the limits, but declared without data: the file holds no points.
  expect_error(raw(
                   fp_, {"points"},
                   [](h5::FileWriter& w) {
                     declare_only(w, "points", {5, 3, 512, 512}, H5T_IEEE_F32LE);
                   },
                   legacy),
               {"/points", "stores"});
  // Labels claiming more than the points: refused by shape before reading.
  expect_error(
      raw(
          fp_, {"labels"},
          [](h5::FileWriter& w) { declare_only(w, "labels", {hsize_t{1} << 40}, H5T_STD_I32LE); },
          legacy),
      {"/labels", "expected shape [5]"});
  h5::set_notice_sink(old);
  EXPECT_EQ(notices.size(), 4u);
  // Sealing reads the file back, so such a file cannot be committed sealed at all.
  EXPECT_THROW(raw(fp_, {"points"},
                   [](h5::FileWriter& w) {
                     declare_only(w, "points", {5, 3, 512, 512}, H5T_IEEE_F32LE);
                   }),
               FileError);
}

TEST_F(FingerprintFile, FailedSaveLeavesNoFile) {
  const std::string p = path("fp.h5");
  save_fingerprint(fp_, p);
  const std::string before = sha256_file(p);

  Fingerprint bad = fp_;
  bad.converged.pop_back();
  EXPECT_THROW(save_fingerprint(bad, p), std::invalid_argument);
  bad = fp_;
  bad.points = Tensor();
  EXPECT_THROW(save_fingerprint(bad, p), std::invalid_argument);
  EXPECT_EQ(sha256_file(p), before);  // the old file is untouched

  // The rename onto a directory fails after everything was written: no temp file stays.
  fs::create_directories(dir_ / "sub" / "x");
  EXPECT_THROW(save_fingerprint(fp_, (dir_ / "sub").string()), FileError);
  EXPECT_THROW(save_fingerprint(fp_, path("no/such/dir/fp.h5")), FileError);
  EXPECT_EQ(listing(), (std::vector<std::string>{"fp.h5", "sub"}));
  std::vector<std::string> sub;
  for (const auto& e : fs::directory_iterator(dir_ / "sub")) sub.push_back(e.path().filename());
  EXPECT_EQ(sub, std::vector<std::string>{"x"});
}

// Issue 11: every byte of the points and candidates, every byte of the first 4 KiB and
// every 3rd byte of the rest, flipped one at a time: load_fingerprint refuses each, and
// never returns changed points or labels (a wrong verdict).
TEST_F(FingerprintFile, EveryFlippedByteIsRefused) {
  const std::string good = path("fp.h5"), bad = path("bad.h5");
  save_fingerprint(fp_, good);
  const std::vector<size_t> positions = test::flip_positions(good, 4096, 3);
  ASSERT_GT(positions.size(), 4500u);
  const size_t refused = test::count_flips(good, bad, positions, [&](size_t at) {
    try {
      const Fingerprint r = load_fingerprint(bad);
      ADD_FAILURE() << "byte " << at << " was accepted";
      EXPECT_EQ(0, std::memcmp(r.points.data(), fp_.points.data(), fp_.points.nbytes()));
      EXPECT_EQ(r.labels.to_vector_i32(), fp_.labels.to_vector_i32());
      return false;
    } catch (const FileError&) {
      return true;
    }
  });
  EXPECT_EQ(refused, positions.size());
}

// Every attribute must have its writer's class and a scalar shape.
TEST_F(FingerprintFile, AttributesOfTheWrongTypeOrShapeAreRefused) {
  expect_error(raw(fp_, {}, [](h5::FileWriter& w) { w.set_attr_string("param_k", "10"); }),
               {"attribute 'param_k': expected a float scalar, found string scalar"});
  expect_error(raw(fp_, {}, [](h5::FileWriter& w) { w.set_attr_int("param_lr", 1); }),
               {"attribute 'param_lr': expected a float scalar, found int64 scalar"});
  expect_error(raw(fp_, {"seed"}, [](h5::FileWriter& w) { w.set_attr_double("seed", 42); }),
               {"attribute 'seed': expected an integer scalar, found float64 scalar"});
  expect_error(raw(fp_, {"created"}, [](h5::FileWriter& w) { w.set_attr_int("created", 0); }),
               {"attribute 'created': expected a string scalar"});
  expect_error(
      raw(fp_, {"method"}, [](h5::FileWriter& w) { w.set_attr_strings("method", {"ipguard"}); }),
      {"attribute 'method': expected a string scalar, found string [1]"});
  expect_error(raw(fp_, {}, [](h5::FileWriter& w) { w.set_attr_floats("param_eps", {0.f}); }),
               {"attribute 'param_eps': expected a float scalar, found float32 [1]"});
}

// A version-1 fingerprint (no digest) still loads, with exactly one notice line; saved
// again it is sealed and loads without one.
TEST_F(FingerprintFile, LegacyFileLoadsWithExactlyOneNotice) {
  const std::string p = raw(fp_, {}, {}, h5::Sealing::Unsealed);
  std::vector<std::string> lines;
  const h5::NoticeSink old =
      h5::set_notice_sink([&](const std::string& line) { lines.push_back(line); });
  const Fingerprint r = load_fingerprint(p);
  EXPECT_EQ(r.labels.to_vector_i32(), fp_.labels.to_vector_i32());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "notice: " + p +
                          " has no integrity digest (format 1); re-save it with `ipguard convert "
                          "--upgrade` to add one");
  save_fingerprint(r, path("again.h5"));
  load_fingerprint(path("again.h5"));
  h5::set_notice_sink(old);
  EXPECT_EQ(lines.size(), 1u);
}

// SOURCE_DATE_EPOCH stands for the current time (reproducible outputs); a value that is
// not a whole number of seconds is an error naming the variable, and empty means unset.
TEST(UtcTimestamp, SourceDateEpochStandsForNow) {
  const char* saved = std::getenv("SOURCE_DATE_EPOCH");
  const std::string old = saved ? saved : "";
  ::setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  EXPECT_EQ(utc_timestamp(), "2023-11-14T22:13:20Z");
  ::setenv("SOURCE_DATE_EPOCH", "0", 1);
  EXPECT_EQ(utc_timestamp(), "1970-01-01T00:00:00Z");
  for (const char* bad : {"17e8", "-1", "+5", " 5", "5 ", "0x10", "1.5", "99999999999999999999",
                          "253402300800"}) {
    ::setenv("SOURCE_DATE_EPOCH", bad, 1);
    try {
      utc_timestamp();
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("SOURCE_DATE_EPOCH"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  ::setenv("SOURCE_DATE_EPOCH", "", 1);
  EXPECT_EQ(utc_timestamp().size(), 20u);
  if (saved)
    ::setenv("SOURCE_DATE_EPOCH", old.c_str(), 1);
  else
    ::unsetenv("SOURCE_DATE_EPOCH");
}

}  // namespace
}  // namespace ipg
