// load_classifier: dispatch on the arch attribute.
#include "models/load.h"

#include "models/data/dataset.h"
#include "models/forest_file.h"
#include "models/train.h"

namespace ipg {

std::unique_ptr<Classifier> load_classifier(const std::string& path, Provenance* provenance) {
  if (is_forest_file(path)) return load_forest(path, provenance);
  return load_model(path, provenance);
}

double classifier_accuracy(Classifier& model, const Dataset& data, Device device, int batch) {
  if (auto* net = dynamic_cast<Network*>(&model)) {
    net->to(device);
    return evaluate(*net, data, device, batch);
  }
  int64_t correct = 0;
  const int64_t n = data.size();
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t e = std::min(n, b + batch);
    const std::vector<int32_t> pred =
        model.labels(data.images.narrow0(b, e - b).to(device)).to_vector_i32();
    const int32_t* y = data.labels.data_i32() + b;
    for (int64_t i = 0; i < e - b; ++i) correct += pred[i] == y[i];
  }
  return n ? double(correct) / double(n) : 0.0;
}

}  // namespace ipg
