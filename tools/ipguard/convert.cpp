// `ipguard convert --keras in.h5 --arch resnet50|vgg16 --out m.h5`: a thin wrapper over
// models/keras_import.
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/keras_import.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

void add_convert(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  struct Args {
    std::string keras, out;
    KerasImportOptions opt;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("convert", "import Keras .h5 weights into an ipguard model file");
  cmd->add_option("--keras", a->keras, "Keras weights (save_weights or model.save .h5)")
      ->required();
  cmd->add_option("--arch", a->opt.arch, "resnet50 | vgg16 (Keras applications layouts) | lenet5")
      ->required()
      ->check(CLI::IsMember({"resnet50", "vgg16", "vgg16-imagenet", "lenet5"}));
  cmd->add_option("--out", a->out, "model file to write (HDF5)")->required();
  Bounds side;  // make_network's limit on an input side
  side.lo = 0;
  side.hi = 4096;
  side.integer = true;
  bounded(cmd->add_option("--height", a->opt.height,
                          "input height (0: inferred from the head, or 224 for resnet50)")
              ->capture_default_str(),
          side);
  bounded(cmd->add_option("--width", a->opt.width, "input width (0: as --height)")
              ->capture_default_str(),
          side);
  cmd->add_option("--preprocess", a->opt.preprocess,
                  "the Keras model's input preprocessing, folded into the model: caffe "
                  "(ResNet50/VGG16: BGR, x255, minus the ImageNet mean) | none")
      ->capture_default_str()
      ->check(CLI::IsMember({"caffe", "none"}));
  runners[cmd] = [&g, a]() {
    check_output_file("--out", a->out, {{"--keras", a->keras}});
    KerasImportOptions opt = a->opt;
    if (opt.width == 0) opt.width = opt.height;
    const KerasImportSummary s = convert_keras(a->keras, opt, a->out);
    if (g.json) {
      std::cout << nlohmann::json{{"keras", a->keras},
                                  {"model", a->out},
                                  {"arch", opt.arch == "vgg16" ? "vgg16-imagenet" : opt.arch},
                                  {"root", s.root},
                                  {"matched", s.by_name ? "by name" : "by position"},
                                  {"layers", s.layers_loaded},
                                  {"keras_version", s.keras_version},
                                  {"preprocess", opt.preprocess}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "converted " << a->keras << " (" << s.layers_loaded << " layers, matched "
                << (s.by_name ? "by name" : "by position") << ") -> " << a->out << "\n";
    }
    return 0;
  };
}

}  // namespace ipg::cli
