// `ipguard convert --keras in.h5 --arch resnet50|vgg16 --out m.h5`: a thin wrapper over
// models/keras_import. `ipguard convert --upgrade old.h5 --out new.h5`: a model, forest or
// fingerprint file of an older format version re-saved at the current one, sealed
// (docs/file-integrity.md). `ipguard convert --to-onnx m.h5 --out m.onnx`: a network as an
// ONNX model (models/onnx_export.h), for ONNX runtimes.
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/hdf5.h"
#include "fingerprint/fingerprint_file.h"
#include "models/keras_import.h"
#include "models/load.h"
#include "models/onnx_export.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

void add_convert(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  struct Args {
    std::string keras, upgrade, to_onnx, out;
    KerasImportOptions opt;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "import Keras .h5 weights into an ipguard model file (--keras), re-save an older "
      "model, forest or fingerprint file at the current format version (--upgrade), or write "
      "a network as an ONNX model (--to-onnx)");
  // Declared first: CLI11 checks excludes and needs in this order, so that --upgrade with
  // --keras is refused as a conflict, not as --keras missing its --arch.
  CLI::Option* upgrade = cmd->add_option(
      "--upgrade", a->upgrade,
      "a model, forest or fingerprint file to re-save at the current format version, with "
      "its integrity digest (version-1 files load with a notice until then)");
  CLI::Option* to_onnx = cmd->add_option(
      "--to-onnx", a->to_onnx,
      "a network model file (HDF5 or ONNX) to write as an ONNX model (opset 13; [0, 1] pixels "
      "in, normalization included; logits out)");
  upgrade->excludes(to_onnx);
  CLI::Option* keras =
      cmd->add_option("--keras", a->keras, "Keras weights (save_weights or model.save .h5)");
  CLI::Option* arch =
      cmd->add_option("--arch", a->opt.arch,
                      "resnet50 | vgg16 (Keras applications layouts) | lenet5 (with --keras)")
          ->check(CLI::IsMember({"resnet50", "vgg16", "vgg16-imagenet", "lenet5"}));
  keras->needs(arch);
  arch->needs(keras);
  cmd->add_option("--out", a->out, "the file to write (HDF5; ONNX with --to-onnx)")->required();
  Bounds side;  // make_network's limit on an input side
  side.lo = 0;
  side.hi = 4096;
  side.integer = true;
  CLI::Option* height =
      bounded(cmd->add_option("--height", a->opt.height,
                              "input height (0: inferred from the head, or 224 for resnet50)")
                  ->capture_default_str(),
              side);
  CLI::Option* width =
      bounded(cmd->add_option("--width", a->opt.width, "input width (0: as --height)")
                  ->capture_default_str(),
              side);
  CLI::Option* preprocess =
      cmd->add_option("--preprocess", a->opt.preprocess,
                      "the Keras model's input preprocessing, folded into the model: caffe "
                      "(ResNet50/VGG16: BGR, x255, minus the ImageNet mean) | none")
          ->capture_default_str()
          ->check(CLI::IsMember({"caffe", "none"}));
  for (CLI::Option* o : {keras, arch, height, width, preprocess}) {
    upgrade->excludes(o);
    to_onnx->excludes(o);
  }
  runners[cmd] = [&g, a]() {
    if (!a->to_onnx.empty()) {
      check_output_file("--out", a->out, {{"--to-onnx", a->to_onnx}});
      const std::unique_ptr<Network> net = load_model(a->to_onnx);
      try {
        save_onnx(*net, a->out);
      } catch (const std::invalid_argument& e) {  // what the network holds: name its file
        throw std::invalid_argument(a->to_onnx + ": " + e.what());
      }
      if (g.json) {
        std::cout << nlohmann::json{{"model", a->to_onnx},
                                    {"onnx", a->out},
                                    {"out", a->out},
                                    {"arch", net->arch()},
                                    {"opset", 13}}
                         .dump(2)
                  << "\n";
      } else {
        std::cout << "wrote " << a->to_onnx << " (" << net->arch() << ") as ONNX -> " << a->out
                  << "\n";
      }
      return 0;
    }
    if (!a->upgrade.empty()) {
      check_output_file("--out", a->out, {{"--upgrade", a->upgrade}});
      // A fingerprint file says so in its root attribute format (fingerprint_file.h);
      // anything else is taken for a model or forest file, whose loader says what is wrong.
      // The loaders' notice about a version-1 file asks for this very command: not shown.
      struct QuietNotices {
        h5::NoticeSink saved = h5::set_notice_sink([](const std::string&) {});
        ~QuietNotices() { h5::set_notice_sink(saved); }
      } quiet;
      bool fingerprint = false;
      {
        const h5::File f(a->upgrade);
        if (f.has_attr("format")) {
          try {
            fingerprint = f.attr_string("format") == "ipguard-fingerprint";
          } catch (const FileError&) {  // not a string: not ours; the loader will say so
          }
        }
      }
      if (fingerprint)
        save_fingerprint(load_fingerprint(a->upgrade), a->out);
      else
        resave_model_file(a->upgrade, a->out);
      if (g.json) {
        std::cout << nlohmann::json{{"upgraded", a->upgrade},
                                    {"out", a->out},
                                    {"kind", fingerprint ? "fingerprint" : "model"},
                                    {"version", 2}}
                         .dump(2)
                  << "\n";
      } else {
        std::cout << "upgraded " << a->upgrade << " -> " << a->out << " (format 2)\n";
      }
      return 0;
    }
    if (a->keras.empty())
      throw UsageError("give --keras FILE --arch NAME, --upgrade FILE or --to-onnx FILE (and --out)");
    check_output_file("--out", a->out, {{"--keras", a->keras}});
    KerasImportOptions opt = a->opt;
    if (opt.width == 0) opt.width = opt.height;
    const KerasImportSummary s = convert_keras(a->keras, opt, a->out);
    if (g.json) {
      std::cout << nlohmann::json{{"keras", a->keras},
                                  {"model", a->out},
                                  {"out", a->out},
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
