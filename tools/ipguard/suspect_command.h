// `verify --suspect-cmd "CMD"`: a suspect we cannot load or serve, asked through any
// program. The convention (one, documented in --help and the README):
//   - the points are written to a temporary NumPy file (.npy, float32 [n, C, H, W],
//     C order, values in [0, 1]) whose path is in the environment variable IPG_POINTS;
//   - CMD runs through /bin/sh -c, with stdin from /dev/null and stderr passed through;
//   - it prints n labels on stdout: integers >= 0, one per line (or separated by any
//     whitespace), or one JSON array of integers;
//   - it exits 0. The temporary file is removed afterwards.
// A wrong count, a non-integer, a non-zero exit or a signal is a SuspectCommandError with
// one clear line; the attempt is recorded in the QueryLog either way.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/remote_classifier.h"

namespace ipg::cli {

class SuspectCommandError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Labels of `points` (CPU float32 [n, ...]) by CMD; records one query in `log`.
std::vector<int32_t> run_suspect_command(const std::string& cmd, const Tensor& points,
                                         QueryLog& log);

// The labels in a command's output (exposed for tests); SuspectCommandError when it is not
// exactly `n` of them.
std::vector<int32_t> parse_label_output(const std::string& text, int64_t n);

// Writes a float32 C-order tensor as a .npy file (version 1.0).
void write_npy(const std::string& path, const Tensor& t);

}  // namespace ipg::cli
