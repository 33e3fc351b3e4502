// load_classifier: dispatch on the arch attribute.
#include "models/load.h"

#include "models/forest_file.h"

namespace ipg {

std::unique_ptr<Classifier> load_classifier(const std::string& path, Provenance* provenance) {
  if (is_forest_file(path)) return load_forest(path, provenance);
  return load_model(path, provenance);
}

}  // namespace ipg
