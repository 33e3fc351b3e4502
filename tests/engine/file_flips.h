// Single-byte corruption of saved files, for the integrity tests of every file format
// (tests/engine/test_integrity.cpp, tests/models/test_model_file.cpp, test_forest.cpp,
// tests/fingerprint/test_fingerprint_file.cpp): where a file's dataset bytes lie, which
// positions to flip, and a loop that flips each one in a copy and restores it.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace ipg::test {

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// [begin, end) byte ranges of every contiguous dataset's raw data in the file: where a
// flipped bit changes a value (a weight, a point) rather than the file's structure.
inline std::vector<std::pair<size_t, size_t>> data_regions(const std::string& path) {
  std::vector<std::pair<size_t, size_t>> out;
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return out;
  hsize_t user_block = 0;
  const hid_t fcpl = H5Fget_create_plist(f);
  H5Pget_userblock(fcpl, &user_block);
  H5Pclose(fcpl);
  struct Ctx {
    hsize_t base;
    std::vector<std::pair<size_t, size_t>>* out;
  } ctx{user_block, &out};
#if H5_VERSION_GE(1, 12, 0)
  using Info = H5O_info2_t;
#else
  using Info = H5O_info_t;
#endif
  auto visit = [](hid_t root, const char* name, const Info* info, void* data) -> herr_t {
    if (info->type != H5O_TYPE_DATASET) return 0;
    auto* c = static_cast<Ctx*>(data);
    const hid_t d = H5Dopen2(root, name, H5P_DEFAULT);
    const haddr_t at = H5Dget_offset(d);  // relative to the base address (after the block)
    const hsize_t n = H5Dget_storage_size(d);
    if (at != HADDR_UNDEF && n > 0)
      c->out->emplace_back(static_cast<size_t>(c->base + at),
                           static_cast<size_t>(c->base + at + n));
    H5Dclose(d);
    return 0;
  };
#if H5_VERSION_GE(1, 12, 0)
  H5Ovisit3(f, H5_INDEX_NAME, H5_ITER_INC, visit, &ctx, H5O_INFO_BASIC);
#else
  H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit, &ctx, H5O_INFO_BASIC);
#endif
  H5Fclose(f);
  std::sort(out.begin(), out.end());
  return out;
}

// Every byte of every dataset's data, every byte of the first `head` bytes (integrity
// header, superblock, root group), and every `stride`-th byte of the rest.
inline std::vector<size_t> flip_positions(const std::string& path, size_t head, size_t stride) {
  const size_t size = read_bytes(path).size();
  std::vector<char> pick(size, 0);
  for (size_t i = 0; i < size; ++i) pick[i] = i < head || i % stride == 0;
  for (const auto& [b, e] : data_regions(path))
    for (size_t i = b; i < e && i < size; ++i) pick[i] = 1;
  std::vector<size_t> out;
  for (size_t i = 0; i < size; ++i)
    if (pick[i]) out.push_back(i);
  return out;
}

// For each position: `scratch` holds `good` with that byte flipped (each position flips
// another bit) while check(position) runs; returns how many calls returned true. The
// byte is changed and restored in place: rewriting the whole file per position would
// cost more than the checks.
inline size_t count_flips(const std::string& good, const std::string& scratch,
                          const std::vector<size_t>& positions,
                          const std::function<bool(size_t)>& check) {
  const std::string bytes = read_bytes(good);
  write_bytes(scratch, bytes);
  // One stream for the whole loop, flushed after each change (the check reopens the file).
  std::fstream f(scratch, std::ios::binary | std::ios::in | std::ios::out);
  auto put = [&](size_t at, char c) {
    f.seekp(static_cast<std::streamoff>(at));
    f.put(c);
    f.flush();
  };
  size_t n = 0;
  for (size_t at : positions) {
    put(at, static_cast<char>(bytes[at] ^ static_cast<char>(1u << (at % 8))));
    if (check(at)) ++n;
    put(at, bytes[at]);
  }
  return n;
}

}  // namespace ipg::test
