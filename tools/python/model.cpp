// ipguard.load and the Model class: a network or a random forest from a model file, its
// logits and labels on numpy batches, on the CPU or a CUDA device.
#include <algorithm>
#include <cstring>

#include "engine/autograd.h"
#include "engine/sha256.h"
#include "models/forest.h"
#include "models/load.h"
#include "models/train.h"
#include "tools/python/bindings.h"
#include "tools/python/fingerprint.h"

namespace ipg::py {

std::vector<int64_t> Model::input_shape() const {
  if (network) {
    const ModelConfig& c = network->config();
    return {c.in_channels, c.height, c.width};
  }
  if (const auto* f = dynamic_cast<const RandomForest*>(classifier.get()))
    return {f->arrays().in_channels, f->arrays().height, f->arrays().width};
  return {};
}

namespace {

void check_batch(int batch) {
  if (batch < 1) throw std::invalid_argument("batch must be at least 1, not " + std::to_string(batch));
}

pyb::array_t<float> logits_of(Model& m, const pyb::object& x, int batch) {
  check_batch(batch);
  if (!m.classifier->has_logits())
    throw std::invalid_argument(m.classifier->arch() +
                                ": this model gives labels only, not logits (use labels())");
  const Tensor images = image_batch(x, m.input_shape(), "x");
  const int64_t n = images.dim(0), classes = m.classifier->num_classes();
  std::vector<float> out(size_t(n * classes));
  {
    pyb::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(m.mutex);
    NoGradGuard no_grad;
    if (m.network) m.network->eval();
    for (int64_t start = 0; start < n; start += batch) {
      const int64_t len = std::min<int64_t>(batch, n - start);
      const Tensor z = m.classifier->logits(images.narrow0(start, len).to(m.device)).cpu();
      std::memcpy(out.data() + start * classes, z.data(), z.nbytes());
    }
  }
  pyb::array_t<float> a({pyb::ssize_t(n), pyb::ssize_t(classes)});
  std::memcpy(a.mutable_data(), out.data(), out.size() * sizeof(float));
  return a;
}

pyb::array_t<int32_t> labels_of(Model& m, const pyb::object& x, int batch) {
  check_batch(batch);
  const Tensor images = image_batch(x, m.input_shape(), "x");
  std::vector<int32_t> got;
  {
    pyb::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(m.mutex);
    got = predict(*m.classifier, images, m.device, batch);
  }
  return to_numpy(got);
}

}  // namespace

std::shared_ptr<Model> load_model_file(const std::string& path, const std::string& device) {
  const Device dev = parse_device(device);
  auto model = std::make_shared<Model>();
  model->path = path;
  model->device = dev;
  pyb::gil_scoped_release nogil;
  model->classifier = load_classifier(path);
  model->sha256 = sha256_file(path);
  model->network = dynamic_cast<Network*>(model->classifier.get());
  if (model->network) {
    model->network->to(dev);
    model->network->eval();
  } else if (auto* f = dynamic_cast<RandomForest*>(model->classifier.get())) {
    f->to(dev);
  }
  return model;
}

void register_model(pyb::module_& m) {
  pyb::class_<Model, std::shared_ptr<Model>>(
      m, "Model",
      "A model loaded by ipguard.load: a network (logits and labels) or a random forest "
      "(labels only), on one device.")
      .def_property_readonly("arch", [](const Model& s) { return s.classifier->arch(); },
                             "architecture name, e.g. 'lenet5', 'resnet20', 'rf'")
      .def_property_readonly("classes", [](const Model& s) { return s.classifier->num_classes(); })
      .def_property_readonly(
          "input_shape",
          [](const Model& s) -> pyb::object {
            const std::vector<int64_t> chw = s.input_shape();
            if (chw.empty()) return pyb::none();
            return pyb::make_tuple(chw[0], chw[1], chw[2]);
          },
          "(C, H, W) of one image (None when the model does not say)")
      .def_property_readonly("device", [](const Model& s) { return s.device.str(); })
      .def_property_readonly("path", [](const Model& s) { return s.path; })
      .def_property_readonly("sha256", [](const Model& s) { return s.sha256; },
                             "SHA-256 of the file as it was loaded (a fingerprint's model digest)")
      .def_property_readonly("has_logits",
                             [](const Model& s) { return s.classifier->has_logits(); })
      .def("logits", &logits_of, pyb::arg("x"), pyb::arg("batch") = 500,
           "float32 [n, classes] logits of float32 [n, C, H, W] images (evaluation mode), "
           "`batch` rows at a time")
      .def("labels", &labels_of, pyb::arg("x"), pyb::arg("batch") = 500,
           "int32 [n] predicted classes of float32 [n, C, H, W] images")
      .def("__repr__", [](const Model& s) {
        return "<ipguard.Model " + s.classifier->arch() + " (" +
               std::to_string(s.classifier->num_classes()) + " classes) from '" + s.path +
               "' on " + s.device.str() + ">";
      });

  m.def("load", [](const pyb::object& path, const std::string& device) {
        return load_model_file(path_arg(path, "path"), device);
      },
      pyb::arg("path"), pyb::arg("device") = "cpu",
      "Loads a model file (our HDF5 networks and random forests, or an ONNX network with the "
      "mean, std, input_shape and output of its '<path>.json' sidecar when there is one; every "
      "check the CLI makes) onto device 'cpu', 'cuda', 'cuda:N' or 'auto'. OSError for a bad "
      "file.");
}

}  // namespace ipg::py
