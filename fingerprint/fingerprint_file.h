// The fingerprint file (HDF5, design.md "Files"):
//
//   /            attrs: format = "ipguard-fingerprint", version = 2 (int64), method,
//                seed (int64: the uint64 seed's bit pattern), model_sha256 (64 lowercase
//                hex digits, or "" when unknown), arch, created (ISO 8601 UTC), and the
//                extraction parameters as one attribute each: param_k, param_lr,
//                param_eps (float64), param_iters (int64), param_init, param_target
//                (strings). Strings are variable-length UTF-8, as h5py writes str.
//                Sealing adds content_sha256 (engine/hdf5.h, docs/file-integrity.md).
//   /points                  float32 [n, C, H, W], every value finite and in [0, 1]
//   /labels                  int32 [n], >= 0: the labels the target model gives the points
//   /candidates/source       int32 [n]   label i the point started from
//   /candidates/target       int32 [n]   label j it was pushed towards
//   /candidates/iterations   int32 [n]   iterations run, >= 0
//   /candidates/final_loss   float32 [n] loss at the end (diagnostic: any value, NaN too)
//   /candidates/converged    int32 [n]   0 or 1 (uint8 also accepted when reading)
//
// Files are written atomically (temp name + rename): a failed save leaves no file. The
// reader checks the file's integrity first (a changed byte is "content digest mismatch";
// a version-1 file without a digest loads after one notice line), then everything it
// returns (each attribute's type and shape too), and throws ipg::FileError naming the
// file and the object on any problem; it never allocates for sizes a file merely claims.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ipg {

// How the points were extracted (the CLI's extract flags). Fields a method does not use
// keep their defaults.
struct FingerprintParams {
  double k = 0;        // IPGuard margin (Eq. 5)
  double lr = 0;       // step size
  int64_t iters = 0;   // iteration budget per point
  double eps = 0;      // FGSM/IGSM perturbation bound
  std::string init;    // "train" | "random"
  std::string target;  // "random" | "least-likely"
  bool operator==(const FingerprintParams& o) const {
    return k == o.k && lr == o.lr && iters == o.iters && eps == o.eps && init == o.init &&
           target == o.target;
  }
};

struct Fingerprint {
  std::string method;  // "ipguard" | "random" | "fgsm" | "igsm" | "cwl2" | ...
  FingerprintParams params;
  uint64_t seed = 0;
  std::string model_sha256;  // of the target model file; "" when unknown
  std::string arch;          // the target model's architecture
  std::string created;       // ISO 8601 UTC, e.g. "2026-11-28T19:30:00Z"

  Tensor points;  // float32 [n, C, H, W] in [0, 1], on the CPU after loading
  Tensor labels;  // int32 [n]

  // Per candidate point, each of length n.
  std::vector<int32_t> source;
  std::vector<int32_t> target;
  std::vector<int32_t> iterations;
  std::vector<float> final_loss;   // diagnostic only: any value (a diverged run may be NaN)
  std::vector<uint8_t> converged;  // 0 or 1

  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
};

// Limits the reader enforces before allocating (a header can claim anything).
constexpr int64_t kMaxFingerprintPoints = 1 << 20;
constexpr int64_t kMaxFingerprintElements = int64_t{1} << 28;  // n*C*H*W: 1 GiB of float32

// Validates `fp` (the same rules the reader applies; throws std::invalid_argument) and
// writes it atomically to `path` (FileError on I/O failure; no file is left behind).
void save_fingerprint(const Fingerprint& fp, const std::string& path);

// Reads and validates a fingerprint file; throws FileError "<path>: <object>: problem".
Fingerprint load_fingerprint(const std::string& path);

// The current time as "YYYY-MM-DDTHH:MM:SSZ", for Fingerprint::created; SOURCE_DATE_EPOCH
// (seconds since 1970), when set, stands for the current time. Throws std::invalid_argument
// naming the variable when it is set to anything but a whole number of seconds.
std::string utc_timestamp();

}  // namespace ipg
