// The Fingerprint handle of the Python module and the argument resolution verify and
// extract share (tools/python/fingerprint.cpp, model.cpp).
#pragma once

#include <memory>
#include <string>

#include "fingerprint/fingerprint_file.h"
#include "tools/python/bindings.h"

namespace ipg::py {

struct PyFingerprint {
  Fingerprint fp;
  std::string file;        // the file it was loaded from or saved to ("" before)
  std::string model_path;  // the target model's file, when extracted here from one
};

// A Model as given (`device`, when given and not "auto", must be its device: ValueError
// otherwise), or a model file path loaded onto `device` (default cpu); TypeError otherwise.
std::shared_ptr<Model> resolve_model(const pyb::object& model,
                                     const std::optional<std::string>& device);
// A Fingerprint as given, or a fingerprint file path read; TypeError otherwise.
std::shared_ptr<PyFingerprint> fingerprint_arg(const pyb::object& fp);
// ipguard.load's work (model.cpp).
std::shared_ptr<Model> load_model_file(const std::string& path, const std::string& device);

}  // namespace ipg::py
