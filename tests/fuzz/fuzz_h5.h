// Structure-aware HDF5 file construction for the fuzz targets: the fuzz input does not
// become the file's bytes, it drives the HDF5 C API that builds a file, choosing
// attribute values and types, dataset shapes, dtypes, layouts, links and values. So
// every file is well-formed HDF5 (libhdf5's own parser is not what we test) but says
// anything at all about the model or fingerprint it claims to be.
//
// Every choice reads from the input with FuzzedDataProvider, which yields 0 once the
// input is used up, and 0 always means "as a valid file has it": the empty input builds
// a valid file, and a mutation is a few non-zero bytes. HDF5 calls that fail while
// building (HDF5 refuses some combinations) are ignored; the reader then sees whatever
// was built.
//
// After the file is built, finish() may seal it as ipguard's writer does and then flip
// single bytes anywhere in it (below the HDF5 level: headers, B-trees, data), the
// mutations that found libhdf5's own crashes (issue 11).
#pragma once

#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/hdf5.h"  // seal_file, the notice sink

namespace fuzz {

using Dims = std::vector<hsize_t>;

// For LLVMFuzzerInitialize: one OpenMP thread (idle OpenMP workers spin, and the readers
// have no parallel work worth it), HDF5's error printing off, and no notice line per
// legacy (unsealed) file.
inline void init() {
  setenv("OMP_NUM_THREADS", "1", 0);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  ipg::h5::set_notice_sink([](const std::string&) {});
}

// A file in /dev/shm (memory) unique to this process.
inline std::string scratch_path(const char* tag) {
  const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/ipg_fuzz_" + tag + "_" + std::to_string(::getpid()) + ".h5";
}

// Closes an HDF5 identifier of any kind.
struct Id {
  hid_t id = -1;
  Id() = default;
  explicit Id(hid_t i) : id(i) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& o) noexcept : id(o.id) { o.id = -1; }
  Id& operator=(Id&& o) noexcept {
    std::swap(id, o.id);
    return *this;
  }
  ~Id() {
    if (id >= 0 && H5Iis_valid(id) > 0) H5Idec_ref(id);
  }
  bool ok() const { return id >= 0; }
};

// One byte: below 160 (and always once the input is used up) keeps the valid choice
// (returns 0); otherwise one of `n` mutations, 1..n.
inline int mutation(FuzzedDataProvider& p, int n) {
  const int b = p.ConsumeIntegral<uint8_t>();
  return b < 160 ? 0 : 1 + (b - 160) % n;
}

inline int64_t interesting_int(FuzzedDataProvider& p, int64_t right) {
  switch (p.ConsumeIntegralInRange<int>(0, 15)) {
    case 0:
      return right + 1;
    case 1:
      return right - 1;
    case 2:
      return 0;
    case 3:
      return -1;
    case 4:
      return std::numeric_limits<int32_t>::max();
    case 5:
      return std::numeric_limits<int32_t>::min();
    case 6:
      return int64_t{1} << 31;
    case 7:
      return (int64_t{1} << 32) + right;  // truncates to `right` as an int
    case 8:
      return std::numeric_limits<int64_t>::max();
    case 9:
      return std::numeric_limits<int64_t>::min();
    case 10:
      return 4096;
    case 11:
      return 4097;
    case 12:
      return 100000;
    case 13:
      return 2 * right;
    case 14:
      return 1;
    default:
      return p.ConsumeIntegral<int64_t>();
  }
}

inline float interesting_float(FuzzedDataProvider& p) {
  switch (p.ConsumeIntegralInRange<int>(0, 12)) {
    case 0:
      return std::numeric_limits<float>::quiet_NaN();
    case 1:
      return std::numeric_limits<float>::infinity();
    case 2:
      return -std::numeric_limits<float>::infinity();
    case 3:
      return 0.f;
    case 4:
      return -0.f;
    case 5:
      return 1.f;
    case 6:
      return std::nextafter(1.f, 2.f);
    case 7:
      return -std::numeric_limits<float>::denorm_min();
    case 8:
      return std::numeric_limits<float>::denorm_min();
    case 9:
      return std::numeric_limits<float>::max();
    case 10:
      return -1.f;
    case 11:
      return 0.5f;
    default: {
      uint32_t bits = p.ConsumeIntegral<uint32_t>();
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
  }
}

inline std::string some_name(FuzzedDataProvider& p) {
  static const char* names[] = {"x",      "weight", "bias",       "a/b",         "",
                                ".",      "..",     "/",          "params",      "buffers",
                                "points", "labels", "candidates", "conv1/weight"};
  const int i = p.ConsumeIntegralInRange<int>(0, 14);
  return i < 14 ? names[i] : p.ConsumeRandomLengthString(12);
}

// ---- attributes ----------------------------------------------------------------------

inline void delete_attr(hid_t loc, const char* name) {
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
}

// An attribute of `count` elements of `file_type` (a scalar when rank is 0; a null
// dataspace when count < 0), written from `data` in `mem_type`.
inline void put_attr_raw(hid_t loc, const char* name, hid_t file_type, hid_t mem_type, int rank,
                         int64_t count, const void* data) {
  delete_attr(loc, name);
  Id space;
  if (count < 0) {
    space = Id(H5Screate(H5S_NULL));
  } else if (rank == 0) {
    space = Id(H5Screate(H5S_SCALAR));
  } else {
    const hsize_t d = static_cast<hsize_t>(count);
    space = Id(H5Screate_simple(1, &d, nullptr));
  }
  if (!space.ok()) return;
  Id a(H5Acreate2(loc, name, file_type, space.id, H5P_DEFAULT, H5P_DEFAULT));
  if (a.ok() && count > 0 && data) H5Awrite(a.id, mem_type, data);
}

inline void put_attr_string(hid_t loc, const char* name, const std::string& s, bool fixed = false,
                            int rank = 0) {
  Id t(H5Tcopy(H5T_C_S1));
  if (fixed) {
    H5Tset_size(t.id, s.empty() ? 1 : s.size());
    H5Tset_strpad(t.id, H5T_STR_NULLPAD);
    std::string buf = s.empty() ? std::string(1, '\0') : s;
    put_attr_raw(loc, name, t.id, t.id, rank, 1, buf.data());
  } else {
    H5Tset_size(t.id, H5T_VARIABLE);
    H5Tset_cset(t.id, H5T_CSET_UTF8);
    const char* ptr = s.c_str();
    put_attr_raw(loc, name, t.id, t.id, rank, 1, &ptr);
  }
}

// Numbers of any width: HDF5 converts from the int64 or double values given.
inline void put_attr_ints(hid_t loc, const char* name, hid_t file_type,
                          const std::vector<int64_t>& v, int rank) {
  put_attr_raw(loc, name, file_type, H5T_NATIVE_INT64, rank, static_cast<int64_t>(v.size()),
               v.data());
}
inline void put_attr_doubles(hid_t loc, const char* name, hid_t file_type,
                             const std::vector<double>& v, int rank) {
  put_attr_raw(loc, name, file_type, H5T_NATIVE_DOUBLE, rank, static_cast<int64_t>(v.size()),
               v.data());
}

// Writes attribute `name` as a valid file has it (`right`, written by `write_right`), or
// missing, or as another type, shape or value.
template <typename WriteRight>
void mutate_attr(FuzzedDataProvider& p, hid_t loc, const char* name, WriteRight write_right,
                 int64_t int_hint) {
  switch (mutation(p, 11)) {
    case 0:
      write_right();
      return;
    case 1:
      return;  // missing
    case 2:
      put_attr_string(loc, name, p.ConsumeRandomLengthString(24));
      return;
    case 3:
      put_attr_string(loc, name, p.ConsumeRandomLengthString(24), true);
      return;
    case 4:
      put_attr_ints(loc, name, H5T_STD_I64LE, {interesting_int(p, int_hint)}, 0);
      return;
    case 5:
      put_attr_ints(loc, name, H5T_STD_U8LE, {interesting_int(p, int_hint)}, 0);
      return;
    case 6:
      put_attr_ints(loc, name, H5T_STD_U64BE, {interesting_int(p, int_hint)}, 0);
      return;
    case 7:
      put_attr_doubles(loc, name, H5T_IEEE_F64LE, {interesting_float(p)}, 0);
      return;
    case 8: {  // an array of 0..9 numbers
      std::vector<double> v(p.ConsumeIntegralInRange<size_t>(0, 9));
      for (double& x : v) x = interesting_float(p);
      put_attr_doubles(loc, name, p.ConsumeBool() ? H5T_IEEE_F32LE : H5T_IEEE_F64BE, v, 1);
      return;
    }
    case 9:
      put_attr_raw(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, -1, nullptr);
      return;
    case 10: {  // a string array
      Id t(H5Tcopy(H5T_C_S1));
      H5Tset_size(t.id, H5T_VARIABLE);
      const char* ptrs[2] = {"lenet5", "x"};
      put_attr_raw(loc, name, t.id, t.id, 1, p.ConsumeIntegralInRange<int>(0, 2), ptrs);
      return;
    }
    default: {  // a right value stored as an integer array
      put_attr_ints(loc, name, H5T_STD_I32LE, {int_hint, int_hint}, 1);
      return;
    }
  }
}

inline void attr_string(FuzzedDataProvider& p, hid_t loc, const char* name,
                        const std::string& right) {
  mutate_attr(
      p, loc, name, [&] { put_attr_string(loc, name, right); }, 1);
}
inline void attr_int(FuzzedDataProvider& p, hid_t loc, const char* name, int64_t right) {
  mutate_attr(
      p, loc, name, [&] { put_attr_ints(loc, name, H5T_STD_I64LE, {right}, 0); }, right);
}
inline void attr_double(FuzzedDataProvider& p, hid_t loc, const char* name, double right) {
  mutate_attr(
      p, loc, name, [&] { put_attr_doubles(loc, name, H5T_IEEE_F64LE, {right}, 0); },
      static_cast<int64_t>(right));
}
inline void attr_floats(FuzzedDataProvider& p, hid_t loc, const char* name,
                        const std::vector<double>& right) {
  mutate_attr(
      p, loc, name, [&] { put_attr_doubles(loc, name, H5T_IEEE_F32LE, right, 1); },
      static_cast<int64_t>(right.size()));
}

// ---- datasets ------------------------------------------------------------------------

enum class Kind { F32, I32 };

inline hid_t link_plist() {
  static hid_t lcpl = [] {
    hid_t l = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(l, 1);
    return l;
  }();
  return lcpl;
}

// Creates dataset `path` with `dims` and `file_type`; writes `values` (converted from
// double) when given and the sizes agree. Layout: 0 contiguous, 1 chunked, 2 chunked +
// deflate, 3 compact; `maxdims` may be unlimited.
inline void make_dataset(hid_t file, const std::string& path, const Dims& dims, hid_t file_type,
                         const std::vector<double>* values, int layout = 0,
                         bool unlimited = false) {
  Id space;
  if (dims.empty()) {
    space = Id(H5Screate(H5S_SCALAR));
  } else {
    Dims maxdims(dims.size(), H5S_UNLIMITED);
    space = Id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                unlimited ? maxdims.data() : nullptr));
  }
  if (!space.ok()) return;
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if ((layout == 1 || layout == 2 || unlimited) && !dims.empty()) {
    Dims chunk(dims.size());
    for (size_t i = 0; i < dims.size(); ++i)
      chunk[i] = dims[i] == 0 ? 1 : std::min<hsize_t>(dims[i], 4);
    H5Pset_chunk(dcpl.id, static_cast<int>(chunk.size()), chunk.data());
    if (layout == 2) {
      H5Pset_shuffle(dcpl.id);
      H5Pset_deflate(dcpl.id, 6);
    }
  } else if (layout == 3) {
    H5Pset_layout(dcpl.id, H5D_COMPACT);
  }
  Id d(H5Dcreate2(file, path.c_str(), file_type, space.id, link_plist(), dcpl.id, H5P_DEFAULT));
  if (!d.ok() || !values) return;
  hsize_t n = 1;
  for (hsize_t x : dims) n *= x;
  if (n == values->size() && n > 0)
    H5Dwrite(d.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values->data());
}

// Writes dataset `path` as a valid file has it (shape `dims`, type `kind`, `values`),
// or one of many wrong versions of it.
inline void dataset(FuzzedDataProvider& p, hid_t file, const std::string& path, const Dims& dims,
                    Kind kind, std::vector<double> values) {
  const hid_t right_type = kind == Kind::F32 ? H5T_IEEE_F32LE : H5T_STD_I32LE;
  hsize_t n = 1;
  for (hsize_t x : dims) n *= x;
  switch (mutation(p, 20)) {
    case 0:
      break;
    case 1:
      return;  // missing
    case 2:    // renamed
      make_dataset(file, path + "_" + some_name(p), dims, right_type, &values);
      return;
    case 3: {  // another rank and shape, with data
      Dims d(p.ConsumeIntegralInRange<size_t>(0, 5));
      hsize_t m = 1;
      for (hsize_t& x : d) m *= (x = p.ConsumeIntegralInRange<hsize_t>(0, 6));
      std::vector<double> v(m, 0.25);
      make_dataset(file, path, d, right_type, &v);
      return;
    }
    case 4: {  // one dimension off by a little
      Dims d = dims;
      if (!d.empty()) {
        hsize_t& x = d[p.ConsumeIntegralInRange<size_t>(0, d.size() - 1)];
        x = p.ConsumeBool() ? x + 1 : (x > 0 ? x - 1 : 0);
      }
      hsize_t m = 1;
      for (hsize_t y : d) m *= y;
      std::vector<double> v(m, 0.25);
      make_dataset(file, path, d, right_type, &v);
      return;
    }
    case 5:
    case 6: {  // huge dimensions declared, no data (HDF5 allocates storage lazily)
      Dims d = dims.empty() ? Dims{1} : dims;
      d[p.ConsumeIntegralInRange<size_t>(0, d.size() - 1)] =
          hsize_t{1} << p.ConsumeIntegralInRange<int>(20, 62);
      make_dataset(file, path, d, right_type, nullptr, p.ConsumeIntegralInRange<int>(0, 2),
                   p.ConsumeBool());
      return;
    }
    case 7: {  // right shape, another type
      static const hid_t types[] = {H5T_IEEE_F64LE, H5T_STD_I64LE,  H5T_STD_U8LE,
                                    H5T_STD_I16BE,  H5T_STD_U32LE,  H5T_IEEE_F32BE,
                                    H5T_STD_I32BE,  H5T_IEEE_F32LE, H5T_STD_I32LE};
      make_dataset(file, path, dims, types[p.ConsumeIntegralInRange<int>(0, 8)], &values,
                   p.ConsumeIntegralInRange<int>(0, 3));
      return;
    }
    case 8: {  // strings
      Id t(H5Tcopy(H5T_C_S1));
      H5Tset_size(t.id, H5T_VARIABLE);
      make_dataset(file, path, dims, t.id, nullptr);
      return;
    }
    case 9: {  // a scalar
      std::vector<double> v{0.5};
      make_dataset(file, path, {}, right_type, &v);
      return;
    }
    case 10: {  // a null dataspace
      Id space(H5Screate(H5S_NULL));
      Id d(H5Dcreate2(file, path.c_str(), right_type, space.id, link_plist(), H5P_DEFAULT,
                      H5P_DEFAULT));
      return;
    }
    case 11: {
      Id g(H5Gcreate2(file, path.c_str(), link_plist(), H5P_DEFAULT, H5P_DEFAULT));
      return;
    }
    case 12: {  // a dangling or looping soft link
      H5Lcreate_soft(p.ConsumeBool() ? path.c_str() : "/nowhere/at/all", file, path.c_str(),
                     link_plist(), H5P_DEFAULT);
      return;
    }
    case 13:  // an external link to a file that is not there
      H5Lcreate_external("/nonexistent/ipg_fuzz.h5", "/x", file, path.c_str(), link_plist(),
                         H5P_DEFAULT);
      return;
    case 14:  // right shape and values, chunked and compressed (valid)
      make_dataset(file, path, dims, right_type, &values, 2);
      return;
    case 15:  // right shape, declared but never written (fill values only)
      make_dataset(file, path, dims, right_type, nullptr, p.ConsumeIntegralInRange<int>(0, 3));
      return;
    case 16:  // right shape, compact layout (data in the object header)
      make_dataset(file, path, dims, right_type, &values, 3);
      return;
    default: {  // right shape, some values replaced
      if (n == 0) break;
      const int k = p.ConsumeIntegralInRange<int>(1, 4);
      for (int i = 0; i < k; ++i) {
        const size_t at = p.ConsumeIntegralInRange<size_t>(0, n - 1);
        values[at] = kind == Kind::F32
                         ? static_cast<double>(interesting_float(p))
                         : static_cast<double>(static_cast<int32_t>(interesting_int(p, 1)));
      }
      break;
    }
  }
  make_dataset(file, path, dims, right_type, &values);
}

// Up to 3 objects nobody asked for under `parent`: datasets, groups, and links that
// loop back to the parent or the root (soft or hard), or lead out of the file.
inline void extras(FuzzedDataProvider& p, hid_t file, const std::string& parent) {
  const int k = mutation(p, 3);
  for (int i = 0; i < k; ++i) {
    const std::string path = parent + "/" + some_name(p);
    const std::string up = parent.empty() ? "/" : parent;
    std::vector<double> v(4, 0.5);
    switch (p.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
        make_dataset(file, path, {4}, H5T_IEEE_F32LE, &v);
        break;
      case 1:
        Id(H5Gcreate2(file, path.c_str(), link_plist(), H5P_DEFAULT, H5P_DEFAULT));
        break;
      case 2:
        H5Lcreate_soft(up.c_str(), file, path.c_str(), link_plist(), H5P_DEFAULT);
        break;
      case 3:
        H5Lcreate_hard(file, up.c_str(), file, path.c_str(), link_plist(), H5P_DEFAULT);
        break;
      case 4:
        H5Lcreate_soft("/", file, path.c_str(), link_plist(), H5P_DEFAULT);
        break;
      default:
        H5Lcreate_external(p.ConsumeBool() ? "/dev/zero" : "/nonexistent.h5", "/", file,
                           path.c_str(), link_plist(), H5P_DEFAULT);
        break;
    }
  }
}

// A new file at `path` (truncating); H5F_CLOSE_STRONG so closing it closes everything.
// It has a user block the size of ipguard's integrity header, as the files FileWriter
// writes: zeros (no header) unless finish() seals it.
inline Id create_file(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fclose_degree(fapl.id, H5F_CLOSE_STRONG);
  Id fcpl(H5Pcreate(H5P_FILE_CREATE));
  H5Pset_userblock(fcpl.id, static_cast<hsize_t>(ipg::h5::kIntegrityHeaderSize));
  return Id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.id, fapl.id));
}

inline void close_file(Id& f) {
  if (f.ok()) H5Fclose(f.id);
  f.id = -1;
}

// What finish() did: for the seed generator (make_fuzz_seeds.cpp), which checks that
// each seed it writes does what its name says.
struct Finished {
  bool sealed = false;
  size_t size = 0;                                // bytes of the sealed file
  std::vector<std::pair<size_t, uint8_t>> flips;  // position, xor mask
  // Whether the flips left the file changed (two flips of one byte can cancel).
  bool changed() const {
    std::vector<std::pair<size_t, uint8_t>> net;
    for (const auto& [at, mask] : flips) {
      bool merged = false;
      for (auto& n : net) {
        if (n.first != at) continue;
        n.second = static_cast<uint8_t>(n.second ^ mask);
        merged = true;
      }
      if (!merged) net.emplace_back(at, mask);
    }
    for (const auto& n : net)
      if (n.second != 0) return true;
    return false;
  }
};

// The last stage of every structure-aware input, after the file is built and closed:
// sealed (content digest and integrity header, ipg::h5::seal_file) or not, then, for a
// sealed file only, up to 4 single-byte flips at any position (4 bytes, modulo the
// size) with any non-zero mask. Unsealed (legacy) files get no flips here: for them
// nothing of ours stands before libhdf5's parser, which has known crashes, leaks and
// huge allocations on corrupt metadata that we cannot fix (fuzz_raw_file covers them,
// on request).
inline Finished finish(FuzzedDataProvider& p, const std::string& path) {
  Finished r;
  if (mutation(p, 1) == 0) return r;
  try {
    ipg::h5::seal_file(path, path);
  } catch (const std::exception&) {
    return r;  // content sealing refuses (links elsewhere, declared-only data): unsealed
  }
  r.sealed = true;
  FILE* f = std::fopen(path.c_str(), "r+b");
  if (!f) return r;
  std::fseek(f, 0, SEEK_END);
  r.size = static_cast<size_t>(std::ftell(f));
  const int k = r.size > 0 ? mutation(p, 4) : 0;
  for (int i = 0; i < k; ++i) {
    const size_t at = p.ConsumeIntegral<uint32_t>() % r.size;
    const uint8_t mask = p.ConsumeIntegralInRange<uint8_t>(1, 255);
    std::fseek(f, static_cast<long>(at), SEEK_SET);
    const int c = std::fgetc(f);
    std::fseek(f, static_cast<long>(at), SEEK_SET);
    std::fputc(c ^ mask, f);
    r.flips.emplace_back(at, mask);
  }
  std::fclose(f);
  return r;
}

}  // namespace fuzz
