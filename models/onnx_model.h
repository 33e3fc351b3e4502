// ONNX models as targets and suspects (issue 14): an ONNX file (a ModelProto, read with
// Debian's libonnx-dev protobuf classes) becomes a Network whose forward runs the graph's
// nodes in topological order with our engine ops, so autodiff gives input gradients and
// the frozen network's traced plan (models/frozen_network.h) picks it up like our own
// networks: the plan lowers what it can, and what it refuses runs through autodiff.
//
// The graph: one float input [n, C, H, W] (n symbolic or any value; C, H, W fixed) and one
// output, the logits [n, classes]; a Softmax that computes the output is dropped (the
// labels are unchanged; fingerprinting searches on logits) and `notice` says so.
// Initializers are constant weights; nodes whose inputs are all constant (the Shape /
// Gather / Unsqueeze / Concat chains exporters emit for a flatten, Pad amounts, Constant
// nodes) are evaluated once at load time. Operators: onnx_supported_operators(). An
// unsupported operator or attribute stops loading with the node's index, name and
// operator, e.g. "x.onnx: node 12 'Resize_12': operator Resize is not supported
// (supported: ...)". Truncated or malformed files, cycles, inputs nothing produces, huge
// dimensions and initializers of the wrong type or size are refused with one FileError.
//
// The batch: a graph is read once for every batch size, the batch a symbol that must stay
// first in every shape. A graph whose shapes follow the batch otherwise (a vision
// transformer's attention reshapes [T, n, C] to [T, n * heads, d] with arithmetic on the
// batch size) is read per batch size instead: built again, with every shape a number, the
// first time it runs at a batch size (the weights shared, a few sizes kept), and checked
// at load to give three images together the logits each gets alone.
//
// Normalization: an exported graph normally includes its own, so the Network's mean and
// std are 0 and 1 unless a sidecar file "<model>.json" next to the model (e.g.
// "m.onnx.json") says {"mean": [...], "std": [...]} (one value per input channel), for a
// graph that expects normalized input. The model digest a fingerprint records is the
// ONNX file's SHA-256 (the sidecar is not part of it): an ONNX file is not ours to seal,
// its integrity is its digest.
//
// The network is for inference and fingerprinting: its arch is "onnx"; it cannot be
// post-processed or saved as a native file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/network.h"

namespace ipg {

constexpr const char* kOnnxArch = "onnx";

struct OnnxOptions {
  std::vector<float> mean, std;  // per input channel; empty: 0 and 1
  // The image's [C, H, W] where the graph's input leaves them symbolic (an export with
  // dynamic height and width); the graph is then read at that size. Empty: the graph's.
  std::vector<int64_t> input_shape;
  // The graph output holding the logits, for a graph with several (a network that also
  // returns its features). Empty: the graph's one output.
  std::string output;
  // Read "<path>.json" for mean, std, input_shape and output when present (load_onnx_model
  // only).
  bool sidecar = true;
};

// Whether `path` holds an ONNX model: by content (a protobuf whose first field is
// ir_version), or by the .onnx extension for a file that is not HDF5 (so a damaged .onnx
// file gets the ONNX reader's error). Never throws for a readable file.
bool is_onnx_file(const std::string& path);

// Loads an ONNX model on the CPU, in evaluation mode. Throws FileError naming the file.
std::unique_ptr<Network> load_onnx_model(const std::string& path, const OnnxOptions& opts = {});
// The same from the file's bytes; `display` names it in errors.
std::unique_ptr<Network> load_onnx_bytes(const std::string& bytes, const std::string& display,
                                         const OnnxOptions& opts = {});

// The operator types the reader takes.
std::vector<std::string> onnx_supported_operators();

}  // namespace ipg
