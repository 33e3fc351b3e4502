// Checks every writing subcommand makes on its output paths before any work starts: an
// output must not be one of the command's inputs (writing it would destroy the input), and
// it must be writable where it is, so that a long training or fit does not end in an error
// at save time. Failures are UsageErrors (exit 2) naming the path.
#pragma once

#include <string>
#include <vector>

namespace ipg::cli {

struct Input {
  std::string flag;  // the option that names it, e.g. "--model"
  std::string path;  // empty: no such input this time (skipped)
};

// `inputs` and every file the dataset spec `data` reads (models/data/dataset.h
// dataset_files: h5:FILE, and the files of a folder such as fashion-mnist:DIR), as --data.
std::vector<Input> with_data(std::vector<Input> inputs, const std::string& data);

// `out` is none of `inputs` (same path, or the same file through a symlink or a hard link)
// and not an existing directory, device, pipe or socket (the output is renamed over it).
void check_output_path(const std::string& flag, const std::string& out,
                       const std::vector<Input>& inputs);

// check_output_path, and the folder `out` goes into exists and is writable.
void check_output_file(const std::string& flag, const std::string& out,
                       const std::vector<Input>& inputs);

// None of `inputs` is `dir` or lies in it (through symlinks too): `dir` is a folder whose
// files the command replaces or removes (experiment --out's fingerprints/). `why` ends the
// message ("whose fingerprint files the experiment replaces").
void check_inputs_outside(const std::string& dir, const std::vector<Input>& inputs,
                          const std::string& why);

// An output folder that is created when missing (zoo --out): an existing one must be a
// writable folder; a missing one needs a writable existing folder above it.
void check_output_dir(const std::string& flag, const std::string& dir);

}  // namespace ipg::cli
