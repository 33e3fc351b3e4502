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

}  // namespace ipg
