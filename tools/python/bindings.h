// Shared pieces of the Python module `ipguard` (tools/python): the loaded-model handle,
// numpy <-> tensor conversion with its checks, and each file's registration function.
// Errors are C++ exceptions mapped once in module.cpp: std::invalid_argument (and the
// CLI's UsageError) -> ValueError, FileError / DataError -> OSError, anything else ->
// RuntimeError; the message is the library's own one line.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::vector and std::string in and out (tables, lists of names)

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"
#include "models/classifier.h"
#include "models/network.h"

namespace ipg::py {

namespace pyb = pybind11;

// A model loaded from a file, on one device. Work runs with the GIL released, so each
// model takes one call at a time (`mutex`).
struct Model {
  std::unique_ptr<Classifier> classifier;
  Network* network = nullptr;  // the classifier, when it is a network (it has gradients)
  Device device;
  std::string path;  // the file it was loaded from
  // The SHA-256 of that file as it was read, so a fingerprint's digest and a suspect's
  // same-file check name what was loaded, even after the file is changed or deleted.
  std::string sha256;
  std::mutex mutex;
  // (C, H, W) the model takes; empty when the classifier does not say.
  std::vector<int64_t> input_shape() const;
};

// "cpu", "cuda", "cuda:N" or "auto" (CUDA when available, else the CPU); ValueError for
// anything else, RuntimeError when CUDA is asked for and not available.
Device parse_device(const std::string& text);

// A float32, C-contiguous numpy array [n, C, H, W] with n >= 1, every value finite and
// (when `chw` is not empty) its last three dimensions equal to chw, copied into a CPU
// tensor. Anything else is a ValueError naming `what` and saying what was expected;
// nothing is converted silently. Needs the GIL.
Tensor image_batch(const pyb::handle& x, const std::vector<int64_t>& chw, const std::string& what);

// A file path given as str or os.PathLike (pathlib.Path), as text; nullopt for anything else.
// An empty path is a ValueError.
std::optional<std::string> maybe_path(const pyb::handle& x);
// The same, or a TypeError naming `what` for anything else.
std::string path_arg(const pyb::handle& x, const std::string& what);

// A seed: a Python int in 0 .. 2^64 - 1 (as --seed); ValueError for one outside, TypeError
// for anything but an int (bool included).
uint64_t seed_arg(const pyb::handle& x);

// Copies of a CPU tensor as new numpy arrays.
pyb::array_t<float> to_numpy(const Tensor& t);
pyb::array_t<int32_t> to_numpy_i32(const Tensor& t);
template <class T>
pyb::array_t<T> to_numpy(const std::vector<T>& v) {
  pyb::array_t<T> a(static_cast<pyb::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// A C++ callback for long work that runs without the GIL: each call takes the GIL, lets
// Python handle a pending signal (Ctrl-C raises KeyboardInterrupt there, which ends the
// work), and calls `fn` (when not None) with what make_args gives. A Python exception
// thrown by either propagates through the work as pyb::error_already_set.
template <class P>
std::function<void(const P&)> python_progress(pyb::object fn,
                                              std::function<pyb::dict(const P&)> make_args) {
  return [fn, make_args](const P& p) {
    pyb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw pyb::error_already_set();
    if (!fn.is_none()) fn(make_args(p));
  };
}

// The registrations, one per file.
void register_model(pyb::module_& m);        // model.cpp: load, Model
void register_fingerprint(pyb::module_& m);  // fingerprint.cpp: extract, Fingerprint
void register_verify(pyb::module_& m);       // verify.cpp: verify
void register_experiment(pyb::module_& m);   // experiment.cpp: experiment

}  // namespace ipg::py
