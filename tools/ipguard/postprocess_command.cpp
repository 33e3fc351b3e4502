// `ipguard postprocess`: a positive suspect made from a model by name (fine-tuning,
// retraining the last layer, pruning, or an extraction), run as `train` with the matching
// options (run_train in tools/ipguard/train_command.cpp).
#include <iostream>
#include <memory>
#include <stdexcept>

#include "models/extraction.h"
#include "models/model_file.h"
#include "models/postprocess.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

void add_postprocess(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  // The paper's positive suspects (section 5.1.2) by name; the same training as
  // `train --init` with the matching options. Beyond the paper, extractions of the model
  // (models/extraction.h): a fresh network distilled from it or trained on its labels.
  struct PostArgs {
    std::string model, attack, data = "fashion-mnist", out;
    TrainArgs train;
    CLI::Option* lr = nullptr;
    CLI::Option* temperature = nullptr;
  };
  auto pa = std::make_shared<PostArgs>();
  pa->train.opt.epochs = 2;
  pa->train.opt.lr = 0.01;
  CLI::App* post_cmd = app.add_subcommand(
      "postprocess",
      "make a positive suspect: fine-tune, retrain the last layer, or prune (or extract the "
      "model into a fresh network)");
  post_cmd->add_option("--model", pa->model, "the model to post-process (HDF5 network; for distill and label-only also an ONNX network)")
      ->required();
  post_cmd
      ->add_option("--attack", pa->attack,
                   "ftll | ftal | rtll | rtal (fine-tune / re-initialize then train the last "
                   "layer or all layers) | wp:P (prune fraction P of weights) | fp:C (prune "
                   "fraction C of filters per layer), then retrain | distill:ARCH (a fresh ARCH "
                   "network on the model's soft labels) | label-only:ARCH (on its labels); "
                   "ARCH 'same': the model's own architecture")
      ->required();
  data_spec(post_cmd->add_option("--data", pa->data, "training data (dataset spec)")
                ->capture_default_str());
  post_cmd->add_option("--out", pa->out, "suspect model file to write (HDF5)")->required();
  at_least(post_cmd->add_option("--epochs", pa->train.opt.epochs, "epochs of (re)training")
               ->capture_default_str(),
           1);
  pa->lr = positive(post_cmd->add_option(
      "--lr", pa->train.opt.lr,
      "peak learning rate (default 0.01; for a fresh network 0.05 for label-only, 0.02 for "
      "distill, whose T^2-scaled loss steps further)"));
  pa->temperature =
      positive(post_cmd->add_option("--temperature", pa->train.temperature,
                                    "distill: the softmax temperature of the soft labels")
                   ->capture_default_str());
  at_least(
      post_cmd->add_option("--batch", pa->train.opt.batch, "batch size")->capture_default_str(), 1);
  at_least(
      post_cmd->add_option("--limit", pa->train.limit, "train on the first N images only (0: all)"),
      0);
  runners[post_cmd] = [&g, pa]() {
    TrainArgs t = pa->train;
    t.init_flag = "--model";
    t.data = pa->data;
    t.out = pa->out;
    const std::string& a = pa->attack;
    const size_t colon = a.find(':');
    const std::string kind = a.substr(0, colon);
    if (kind == "distill" || kind == "label-only") {
      t.extraction = parse_extraction(kind);
      t.teacher = pa->model;
      t.arch = colon == std::string::npos ? "" : a.substr(colon + 1);
      if (t.arch.empty()) throw UsageError("--attack " + a + ": give the student, " + kind + ":ARCH");
      if (t.arch == "same") {
        t.arch = read_model_info(pa->model).config.arch;
        if (t.arch == "onnx")
          throw UsageError("--attack " + a + ": " + pa->model + " is an ONNX network, not one " +
                           "of ours: name the student, " + kind + ":ARCH");
      }
      if (t.arch == "rf") throw UsageError("--attack " + a + ": the student is a network");
      check_architecture("--attack " + kind, t.arch);
      if (!pa->lr->count()) t.opt.lr = *t.extraction == Extraction::Distill ? 0.02f : 0.05f;
    } else {
      PostProcess p;
      try {
        p = parse_post_process(a);
      } catch (const std::invalid_argument& e) {
        // The library knows the post-processing attacks; the extraction ones are this
        // command's too.
        std::string why = e.what();
        if (why.find("unknown attack") != std::string::npos && why.back() == ')')
          why.insert(why.size() - 1, ", distill:ARCH, label-only:ARCH");
        throw UsageError("--attack " + why);
      }
      const Modifications m = modifications(p);
      t.init = pa->model;
      t.reinit_last = m.reinit_last;
      t.opt.last_layer_only = m.last_layer_only;
      t.prune_weights = m.prune_weights;
      t.prune_filters = m.prune_filters;
    }
    if (pa->temperature->count() && t.extraction != Extraction::Distill)
      throw UsageError("--temperature is for --attack distill:ARCH");
    return run_train(g, t, std::cout);
  };
}

}  // namespace ipg::cli
