// Keras HDF5 weight import (design.md, "Files: Keras HDF5 import"). Reads the files that
// Keras's `model.save_weights(...h5)` writes (layer groups at the root) and that
// `model.save(...h5)` writes (the same layout under /model_weights): the `layer_names`
// and per-layer `weight_names` attributes, fixed- or variable-length strings, possibly
// chunked as layer_names0, layer_names1, ... Datasets are opened by the names those
// attributes list, never by a hard-coded path.
//
// Layers are matched to our modules by name when the file uses the Keras applications
// naming (our module path with '/' -> '_': "conv2/block1/0_conv" <-> conv2_block1_0_conv,
// "block1/conv1" <-> block1_conv1), otherwise by position: the layers that carry weights,
// in `layer_names` order, against our modules in registration order (the order of a
// Sequential / applications VGG16 or LeNet). Every shape is checked; kernels are
// transposed (Conv2D HWIO -> OIHW, Dense [in, out] -> [out, in]); a Dense layer that
// follows a Flatten of a spatial map gets its rows reordered from Keras's NHWC flatten
// order (h, w, c) to ours (c, h, w).
//
// Logits: Keras applications end in a softmax Dense layer; the imported network's
// logits are that layer's pre-softmax values (argmax, hence labels, are unchanged).
#pragma once

#include <memory>
#include <string>

#include "models/network.h"

namespace ipg {

struct KerasImportOptions {
  // resnet50, vgg16 (an alias of vgg16-imagenet, the Keras layout), vgg16-imagenet, or
  // lenet5 (a small Sequential conv net; used by the tests).
  std::string arch;
  // Input size; 0: inferred. Networks with a Flatten head (vgg16-imagenet, lenet5) infer a
  // square input from the first Dense kernel; resnet50 (global pooling) defaults to 224.
  int height = 0;
  int width = 0;
  // How the Keras model expects its input, folded into the imported network so that it
  // takes [0,1] RGB pixels like every other model here:
  //  "caffe": keras.applications ResNet50 / VGG16 preprocess_input (RGB -> BGR, x255,
  //           minus the ImageNet BGR mean [103.939, 116.779, 123.68]); needs 3 channels.
  //  "none":  the Keras model is fed the [0,1] pixels unchanged.
  std::string preprocess = "caffe";
};

struct KerasImportSummary {
  std::string root;           // "/" (save_weights) or "/model_weights" (model.save)
  bool by_name = false;       // false: matched by position
  int layers_loaded = 0;      // layers with weights
  std::string keras_version;  // the file's keras_version attribute, if any
};

// Builds the network and loads the weights (on the CPU). Any problem (missing or non-Keras
// file, missing or extra layer or weight, wrong shape, NaN/Inf) throws FileError naming the
// file and the layer or weight.
std::unique_ptr<Network> import_keras(const std::string& path, const KerasImportOptions& options,
                                      KerasImportSummary* summary = nullptr);

// import_keras, then save_model to `out` (written atomically).
KerasImportSummary convert_keras(const std::string& path, const KerasImportOptions& options,
                                 const std::string& out);

// ImageNet mean in Keras's BGR channel order, as keras.applications' 'caffe' mode uses it.
inline constexpr float kCaffeMeanBgr[3] = {103.939f, 116.779f, 123.68f};

}  // namespace ipg
