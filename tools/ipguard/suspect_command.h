// `verify --suspect-cmd "CMD"`: a suspect we cannot load or serve, asked through any
// program. The convention (one, documented in --help and the README):
//   - the points are written to a temporary NumPy file (.npy, float32 [n, C, H, W],
//     C order, values in [0, 1]) whose path is in the environment variable IPG_POINTS;
//   - CMD runs through /bin/sh -c, with stdin from /dev/null and stderr passed through;
//   - it prints n labels on stdout: integers >= 0, one per line (or separated by any
//     whitespace), or one JSON array of integers;
//   - it exits 0. The temporary file is removed afterwards.
// A wrong count, a non-integer, a label outside the classes, a non-zero exit or a signal
// is a SuspectCommandError with one clear line; the attempt is recorded in the QueryLog
// either way. CMD runs in its own process group: when it runs past the timeout or prints
// far more than n labels need, the whole group is killed (a shell's children too); when
// ipguard itself takes SIGINT, SIGTERM or SIGHUP meanwhile, the group is killed and the
// points' file removed before ipguard dies of that signal.
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

struct SuspectCommandOptions {
  double timeout_s = 600;  // the whole run of CMD, from start to its last output
  int64_t classes = 0;     // a label must be below this (0: any label >= 0)
  std::string classes_note;  // said after a label out of range: where `classes` came from
};

// Labels of `points` (CPU float32 [n, ...]) by CMD; records one query in `log`.
std::vector<int32_t> run_suspect_command(const std::string& cmd, const Tensor& points,
                                         QueryLog& log, const SuspectCommandOptions& options);

// The labels in a command's output (exposed for tests); SuspectCommandError when it is not
// exactly `n` of them, or one is not below `classes` (when > 0; the message then ends with
// `classes_note`, where the bound came from).
std::vector<int32_t> parse_label_output(const std::string& text, int64_t n, int64_t classes = 0,
                                        const std::string& classes_note = "");

// The most bytes of output read for n labels: far more than any layout of them needs.
size_t max_label_output_bytes(int64_t n);

// Writes a float32 C-order tensor as a .npy file (version 1.0).
void write_npy(const std::string& path, const Tensor& t);

}  // namespace ipg::cli
