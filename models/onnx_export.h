// ONNX out: a network written as an ONNX model (opset 13), so a model protected with
// ipguard can be served by any ONNX runtime (Triton, ONNX Runtime, KServe) and checked
// through the same reader (models/onnx_model.h) that takes exports from PyTorch or Keras.
//
// The graph is the network's own trace (engine/trace.h: the one description of each
// architecture, its `forward`, recorded in eval mode), input normalization included, so
// the ONNX model takes [0, 1] pixels like the native one: input "pixels" [n, C, H, W]
// with a symbolic batch n, output "logits" [n, classes]. Each traced op becomes one node
// (Conv, BatchNormalization, Add/Sub/Mul/Div, Relu, MaxPool, Pad, GlobalAveragePool +
// Flatten, Reshape, Gemm); weights become initializers. An op the trace knows only by name
// stops the export with its name.
//
// Integrity: the model's last metadata_props entry is "ipguard.sha256", the SHA-256 of the
// model serialized without that entry; the reader checks it when present
// (onnx_digest_matches), so a flipped bit in a file we wrote is an error, not a different
// model.
#pragma once

#include <string>

#include "models/network.h"

namespace ipg {

constexpr const char* kOnnxDigestKey = "ipguard.sha256";

// The network (any device; traced on a copy of nothing: the network's own weights, in
// eval mode, weights not requiring gradients afterwards) as ONNX ModelProto bytes.
// Throws std::invalid_argument naming an op that has no ONNX form.
std::string onnx_export_bytes(Network& net);

// onnx_export_bytes written to `path` atomically (temporary name in the same folder,
// then a rename). Throws FileError when the file cannot be written.
void save_onnx(Network& net, const std::string& path);

}  // namespace ipg
