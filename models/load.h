// Any model file -> the Classifier it holds: a network (models/model_file.h) or a random
// forest (models/forest_file.h), told apart by the file's arch attribute. What suspects
// are loaded through: a verifier needs labels() and nothing else.
#pragma once

#include <memory>
#include <string>

#include "models/classifier.h"
#include "models/model_file.h"

namespace ipg {

std::unique_ptr<Classifier> load_classifier(const std::string& path,
                                            Provenance* provenance = nullptr);

// Loads a model file of any supported version (a network or a forest, with every check
// the loaders make) and saves it to `out` at the current version, sealed: the same
// tensors, attributes and provenance. What `ipguard convert --upgrade` is for: a
// version-1 file loads with a notice until it is re-saved this way.
void resave_model_file(const std::string& in, const std::string& out);

}  // namespace ipg
