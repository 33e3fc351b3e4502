// The native model file (HDF5, design.md "Files"): architecture and input attributes at
// the root, parameters under /params/<module path>, buffers (BN running statistics)
// under /buffers/<module path>. Files are written atomically (temp name + rename).
// Version 2 (written now) is sealed against corruption (engine/hdf5.h, content_sha256
// and the integrity header; docs/file-integrity.md); version 1 files still load, with
// one notice line.
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

// Loads a network (on the CPU). The file's integrity is checked first (a changed byte is
// "content digest mismatch"), then every attribute's type and shape, then every
// tensor's name and shape against the architecture; mismatches (missing, extra, wrong
// shape) are reported in one FileError, listing the first few. NaN or Inf values are
// refused, naming the tensor; a random forest's file, as such.
std::unique_ptr<Network> load_model(const std::string& path, Provenance* provenance = nullptr);

// What `ipguard info` shows: load_model's checks, then the attributes and the tensors
// as loaded (sorted by name), so that info refuses exactly the files eval refuses.
ModelInfo read_model_info(const std::string& path);

// The root attributes every native model file carries, networks and random forests
// (models/forest_file.cpp) alike: format, version, arch, input, classes, mean/std and the
// provenance. Reading checks format and version, the file's integrity (one notice line
// for a version-1 file), each attribute's type and shape (ints, floats and strings as
// scalars; mean and std float vectors of in_channels values) and the int range of the
// dimensions.
namespace h5 {
class File;
class Group;
}  // namespace h5
void write_model_attributes(h5::Group& root, const ModelConfig& cfg, const Provenance& p);
// The end of the notice a legacy (version 1) model or fingerprint file loads with: how to
// re-save it sealed.
std::string resave_hint(const std::string& path);
ModelConfig read_model_attributes(const h5::File& f);
Provenance read_provenance(const h5::File& f);

}  // namespace ipg
