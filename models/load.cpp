// load_classifier: dispatch on the arch attribute.
#include "models/load.h"

#include "models/forest_file.h"

namespace ipg {

std::unique_ptr<Classifier> load_classifier(const std::string& path, Provenance* provenance) {
  if (is_forest_file(path)) return load_forest(path, provenance);
  return load_model(path, provenance);
}

void resave_model_file(const std::string& in, const std::string& out) {
  Provenance p;
  if (is_forest_file(in)) {
    save_forest(*load_forest(in, &p), out, p);
    return;
  }
  save_model(*load_model(in, &p), out, p);
}

}  // namespace ipg
