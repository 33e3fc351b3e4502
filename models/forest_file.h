// Random forests in the native model file (design.md "Files"): the root attributes of a
// network file with arch "rf" (identity mean/std: a forest reads raw [0,1] pixels), the
// training options as attributes of /forest, and the flattened trees as datasets:
//   /forest/feature int32 [nodes]     /forest/threshold float32 [nodes]
//   /forest/left int32 [nodes]        /forest/right int32 [nodes]
//   /forest/value float32 [nodes, classes]   /forest/tree_offsets int32 [trees + 1]
// (meaning in models/forest.h, ForestArrays). Written atomically (temp name + rename)
// and sealed like every model file (version 2, models/model_file.h).
#pragma once

#include <memory>
#include <string>

#include "models/forest.h"
#include "models/model_file.h"

namespace ipg {

void save_forest(const RandomForest& forest, const std::string& path,
                 const Provenance& provenance = {});

// Loads and validates a forest (on the CPU; labels() copies it to a GPU on first use).
// Any problem (a changed byte: "content digest mismatch"; not an ipguard model, an
// attribute of the wrong type or shape, arch not "rf", missing or mistyped dataset,
// inconsistent sizes, node or feature index out of range, a child not after its parent,
// non-finite threshold or value) throws FileError naming the file and the dataset.
std::unique_ptr<RandomForest> load_forest(const std::string& path,
                                          Provenance* provenance = nullptr);

// Whether `path` is an ipguard model file whose arch attribute is "rf". Throws FileError
// when the file cannot be opened as HDF5 at all.
bool is_forest_file(const std::string& path);

// The root attributes of a forest's file: arch "rf", the input shape and classes of its
// arrays, identity normalization (a forest reads raw [0,1] pixels).
ModelConfig forest_file_config(const ForestArrays& a);

}  // namespace ipg
