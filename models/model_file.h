// The native model file (HDF5, design.md "Files"): architecture and input attributes at
// the root, parameters under /params/<module path>, buffers (BN running statistics)
// under /buffers/<module path>. Files are written atomically (temp name + rename).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/network.h"

namespace ipg {

// The root `format` attribute of every native model file.
constexpr const char* kModelFormat = "ipguard-model";

// How a model was made, recorded in the file for whoever inspects it later.
struct Provenance {
  std::string data;   // e.g. "fashion-mnist"
  int64_t seed = -1;  // -1: unknown
  int64_t epochs = -1;
  double accuracy = -1;  // test accuracy in [0, 1]; -1: not measured
  std::string recipe;    // free text: optimizer, schedule, post-processing
};

struct ModelInfo {
  ModelConfig config;
  Provenance provenance;
  int64_t num_parameters = 0;
  std::vector<std::pair<std::string, Shape>> tensors;  // "params/..." and "buffers/..."
};

void save_model(Network& net, const std::string& path, const Provenance& provenance = {});

// Loads a network (on the CPU). Every tensor's name and shape is checked against the
// architecture; all mismatches (missing, extra, wrong shape) are reported in one
// FileError. NaN or Inf values are refused, naming the tensor.
std::unique_ptr<Network> load_model(const std::string& path, Provenance* provenance = nullptr);

// Reads the attributes and tensor shapes without building the network.
ModelInfo read_model_info(const std::string& path);

// The root attributes every native model file carries, networks and random forests
// (models/forest_file.cpp) alike: format, version, arch, input, classes, mean/std and the
// provenance. Reading checks format and version and the int range of the dimensions.
namespace h5 {
class File;
class Group;
}  // namespace h5
void write_model_attributes(h5::Group& root, const ModelConfig& cfg, const Provenance& p);
ModelConfig read_model_attributes(const h5::File& f);
Provenance read_provenance(const h5::File& f);

}  // namespace ipg
