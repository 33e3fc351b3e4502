// Writes the seed inputs for the mutation kinds that found libhdf5's own bugs and the
// accepted-corruption bugs of issue 11, for both structure-aware targets:
//   flip-*     a valid file, sealed, with one byte flipped: in the integrity header, the
//              superblock, the object headers and link tables, and the tensor data;
//   retype-*   one root attribute stored with another class or shape (mean as a float64
//              scalar, dims as a string, version as a float, ...), in a legacy
//              (unsealed) file and in a sealed one, whose digest then matches;
//   valid-sealed  the base file, sealed.
// A seed is the list of choices the target's FuzzedDataProvider will read; each one is
// run through the same build and finish code the target runs and checked to produce
// what its name says (a harness change that shifts the choices fails here, loudly).
//   make_fuzz_seeds OUT_DIR    writes OUT_DIR/model/* and OUT_DIR/fingerprint/*
// tools/fuzz.sh runs it before fuzzing (build/fuzz/seeds) and fuzzes from both corpora.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "fuzz_fingerprint_build.h"
#include "fuzz_h5.h"
#include "fuzz_model_build.h"

namespace {

using Build = std::function<void(FuzzedDataProvider&, const std::string&)>;

// Choices in the order the target reads them; FuzzedDataProvider reads integers from
// the end of the input backwards, so the input is this list reversed.
struct Script {
  std::vector<uint8_t> order;
  Script& bytes(std::initializer_list<uint8_t> b) {
    order.insert(order.end(), b);
    return *this;
  }
  Script& zeros(size_t n) {
    order.insert(order.end(), n, 0);
    return *this;
  }
  Script& u32(uint32_t v) {  // most significant byte first: read first
    return bytes({static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                  static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
  }
  // finish(): sealed (a mutation byte >= 160), then one flip of `mask` at `at`.
  Script& seal() { return bytes({160, 0}); }
  Script& seal_and_flip(uint32_t at, uint8_t mask) {
    bytes({160, 160});
    u32(at);
    return bytes({static_cast<uint8_t>(mask - 1)});
  }
  std::vector<uint8_t> input() const { return {order.rbegin(), order.rend()}; }
};

int failures = 0;

void fail(const std::string& what) {
  std::fprintf(stderr, "make_fuzz_seeds: %s\n", what.c_str());
  ++failures;
}

// Runs the target's build and finish on `s` into `scratch`.
fuzz::Finished run(const Build& build, const Script& s, const std::string& scratch) {
  const std::vector<uint8_t> in = s.input();
  FuzzedDataProvider p(in.data(), in.size());
  build(p, scratch);
  fuzz::Finished done = fuzz::finish(p, scratch);
  if (p.remaining_bytes() != 0)
    fail("a seed has " + std::to_string(p.remaining_bytes()) + " bytes the target does not read");
  return done;
}

// How many one-byte choices the valid build makes after `prefix`.
size_t valid_choices(const Build& build, const Script& prefix, const std::string& scratch) {
  Script s = prefix;
  s.zeros(4096);
  const std::vector<uint8_t> in = s.input();
  FuzzedDataProvider p(in.data(), in.size());
  build(p, scratch);
  return in.size() - p.remaining_bytes() - prefix.order.size();
}

void write(const std::string& dir, const std::string& name, const Script& s) {
  const std::vector<uint8_t> in = s.input();
  FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
  if (!f || std::fwrite(in.data(), 1, in.size(), f) != in.size()) fail("cannot write " + name);
  if (f) std::fclose(f);
}

// Class and rank of root attribute `name` in `file` ("float64 scalar", "string [1]").
std::string attribute_kind(const std::string& file, const char* name) {
  std::string out = "missing";
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return "unreadable";
  if (H5Aexists(f, name) > 0) {
    const hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    const hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    const H5T_class_t c = H5Tget_class(t);
    out = c == H5T_STRING  ? "string"
          : c == H5T_FLOAT ? "float" + std::to_string(8 * H5Tget_size(t))
                           : "int" + std::to_string(8 * H5Tget_size(t));
    const int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t n = 0;
    if (rank == 1) H5Sget_simple_extent_dims(sp, &n, nullptr);
    out += rank == 0 ? " scalar" : " [" + std::to_string(n) + "]";
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
  }
  H5Fclose(f);
  return out;
}

struct Retype {
  const char* name;        // seed name
  const char* attr;        // the attribute it retypes
  size_t choice;           // its index among the build's choices
  std::vector<uint8_t> b;  // the mutation byte and its sub-choices
  const char* kind;        // what the attribute must then be
};

// Writes the seeds for one target: `prefix` picks the base file (its first choices).
void seeds(const std::string& dir, const Build& build, const Script& prefix,
           const std::vector<Retype>& retypes, const std::string& scratch) {
  ::mkdir(dir.c_str(), 0755);
  const size_t z = valid_choices(build, prefix, scratch);
  Script valid = prefix;
  valid.zeros(z);
  Script sealed = valid;
  sealed.seal();
  const fuzz::Finished base = run(build, sealed, scratch);
  if (!base.sealed || base.size < 2200) {
    fail(dir + ": the valid file did not seal");
    return;
  }
  write(dir, "valid-sealed", sealed);
  // Spread over the file: the integrity header (its prefix, digest and zero padding),
  // the HDF5 superblock, object headers and link tables, and the data near the end.
  const std::pair<const char*, size_t> where[] = {
      {"header-prefix", 3},    {"header-digest", 40},         {"header-padding", 300},
      {"superblock", 512 + 9}, {"superblock-root", 512 + 60}, {"metadata-1k", 1100},
      {"metadata-2k", 2100},   {"middle", base.size / 2},     {"end", base.size - 5}};
  int i = 0;
  for (const auto& [name, at] : where) {
    Script s = valid;
    const uint8_t mask = static_cast<uint8_t>(1u << (i++ % 8));
    s.seal_and_flip(static_cast<uint32_t>(at), mask);
    const fuzz::Finished done = run(build, s, scratch);
    if (!done.sealed || done.flips.size() != 1 || done.flips[0].first != at ||
        done.flips[0].second != mask)
      fail(dir + "/flip-" + name + ": the seed does not flip byte " + std::to_string(at));
    write(dir, std::string("flip-") + name, s);
  }
  for (const Retype& r : retypes) {
    for (const bool seal : {false, true}) {
      Script s = prefix;
      s.zeros(r.choice - prefix.order.size());
      s.order.insert(s.order.end(), r.b.begin(), r.b.end());
      s.zeros(z - (r.choice - prefix.order.size()) - 1);
      if (seal) s.seal();
      const fuzz::Finished done = run(build, s, scratch);
      const std::string name = std::string("retype-") + r.name + (seal ? "-sealed" : "");
      const std::string kind = attribute_kind(scratch, r.attr);
      if (kind != r.kind)
        fail(dir + "/" + name + ": " + r.attr + " is " + kind + ", not " + r.kind);
      if (done.sealed != seal) fail(dir + "/" + name + ": sealing is not as named");
      write(dir, name, s);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds OUT_DIR\n");
    return 2;
  }
  fuzz::init();
  const std::string out = argv[1];
  ::mkdir(out.c_str(), 0755);
  const std::string scratch = fuzz::scratch_path("seeds");
  // mutate_attr's cases (fuzz_h5.h): byte 160 + k - 1 picks case k; 4 int64 scalar, 7
  // float64 scalar, 10 string array, 11 int32 array; interesting_float 11 is 0.5,
  // 5 is 1.0; interesting_int 14 is 1; a string array of 1 element.
  // Model choices: 0 base, 1 format, 2 version, 3 arch name, 4 arch, 5 in_channels,
  // 6 height, 7 width, 8 classes, 9 mean, 10 std.
  seeds(out + "/model", fuzz_model::build, Script().bytes({0}),
        {{"mean-f64-scalar", "mean", 9, {166, 11}, "float64 scalar"},
         {"std-int-array", "std", 10, {170}, "int32 [2]"},
         {"in_channels-string", "in_channels", 5, {169, 1}, "string [1]"},
         {"height-f64", "height", 6, {166, 5}, "float64 scalar"},
         {"version-f64", "version", 2, {166, 5}, "float64 scalar"},
         {"arch-int", "arch", 4, {163, 14}, "int64 scalar"}},
        scratch);
  // Fingerprint choices: 0 n, 1 channels, 2 height, 3 width (4 points of 3x6x6), 4 format,
  // 5 version, 6 method, 7 seed, 8 model_sha256, 9 arch, 10 created, 11 param_k, ...
  seeds(out + "/fingerprint", fuzz_fingerprint::build, Script().bytes({3, 1, 5, 5}),
        {{"param_k-string", "param_k", 11, {169, 1}, "string [1]"},
         {"seed-f64", "seed", 7, {166, 5}, "float64 scalar"},
         {"created-int", "created", 10, {163, 14}, "int64 scalar"},
         {"version-f64", "version", 5, {166, 5}, "float64 scalar"}},
        scratch);
  std::remove(scratch.c_str());
  if (failures) return 1;
  std::printf("make_fuzz_seeds: wrote the seeds to %s/model and %s/fingerprint\n", out.c_str(),
              out.c_str());
  return 0;
}
