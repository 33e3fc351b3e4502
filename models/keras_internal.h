// Inside the Keras import (models/keras_import.cpp, keras_file.cpp, keras_weights.cpp): our
// layers and the file's, and the steps between them. Not part of the models' API.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "models/keras_import.h"
#include "models/network.h"

namespace ipg::keras_detail {

// One of our layers: the parameters and buffers that share a module path.
struct Slot {
  enum Kind { Conv, Dense, BatchNorm } kind = Conv;
  std::string path;                // "conv2/block1/0_conv"
  std::string keras_name;          // "conv2_block1_0_conv"
  std::vector<std::string> roles;  // Keras weight roles, in Keras's own order
  std::vector<Tensor*> tensors;    // ours, same order as roles
};

// One Keras layer that carries weights.
struct Layer {
  std::string name;  // as listed in layer_names
  std::string path;  // "/model_weights/fc1"
  std::vector<std::string> weight_names;
  std::vector<h5::Dataset> datasets;
};

// The path of `name` in the group at `root`.
std::string join_path(const std::string& root, const std::string& name);
// "Conv2D", "Dense" or "BatchNormalization".
std::string kind_name(Slot::Kind k);

// The file (models/keras_file.cpp).
// The file's root: "/" for save_weights, "/model_weights" for model.save.
h5::Group keras_root(const h5::File& f, const std::string& path);
// The layers that carry weights, in layer_names order, their datasets opened.
std::vector<Layer> read_layers(const h5::Group& root, const std::string& file);
// Our configuration from the file's shapes and the options.
ModelConfig config_from(const std::vector<Layer>& layers, const KerasImportOptions& opt,
                        const std::string& file);

// Our side (models/keras_weights.cpp).
// Groups our parameters and buffers by module path, in registration order.
std::vector<Slot> slots_of(Network& net);
// Copies one Keras layer into our slot, checking shapes and values.
void load_layer(const Slot& s, const Layer& l, const std::vector<int64_t>& flatten,
                bool reverse_input, const std::string& file);

}  // namespace ipg::keras_detail
