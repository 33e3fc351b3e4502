// `ipguard zoo`: a target model's suspects in the folder layout `ipguard experiment`
// reads: target.h5, positive/<attack>.h5 (post-processed copies, as `postprocess`
// makes them) and negative/<arch>-seed<S>.h5 (independently trained, as `train` does).
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/model_file.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

namespace {

// "wp:0.2" -> "wp-0.2": file names without ':'.
std::string file_name(std::string s) {
  for (char& c : s)
    if (c == ':') c = '-';
  return s;
}

}  // namespace

void add_zoo(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  struct Args {
    std::string target, out, data = "fashion-mnist";
    std::string positives = "ftll,ftal,rtll,rtal,wp:0.2,wp:0.4,fp:0.125,fp:0.25";
    std::string negatives = "same:2,rf:1";
    int epochs = 2;
    int64_t limit = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "zoo", "build a target's zoo: post-processed copies and independent models in a folder");
  cmd->add_option("--target", a->target, "the protected model (HDF5 network)")->required();
  cmd->add_option("--out", a->out, "zoo folder to fill (created)")->required();
  data_spec(
      cmd->add_option("--data", a->data, "training data (dataset spec)")->capture_default_str());
  cmd->add_option("--positives", a->positives, "post-processing attacks (see postprocess)")
      ->capture_default_str();
  cmd->add_option("--negatives", a->negatives,
                  "ARCH:COUNT list of independent models ('same': the target's arch; rf: "
                  "random forests)")
      ->capture_default_str();
  at_least(cmd->add_option("--epochs", a->epochs, "epochs for every model trained")
               ->capture_default_str(),
           1);
  at_least(cmd->add_option("--limit", a->limit, "train on the first N images only (0: all)"), 0);
  runners[cmd] = [&g, a]() {
    namespace fs = std::filesystem;
    check_output_dir("--out", a->out);
    const ModelInfo info = read_model_info(a->target);  // a network file, checked
    // Parse everything before training anything.
    std::vector<TrainArgs> jobs;
    for (const std::string& attack : split_list(a->positives)) {
      TrainArgs t;
      t.init = a->target;
      t.data = a->data;
      t.limit = a->limit;
      t.opt.epochs = a->epochs;
      t.opt.lr = 0.01;
      t.init_flag = "--target";
      try {
        apply_attack(t, attack);
      } catch (const UsageError& e) {
        throw UsageError("--positives: " + std::string(e.what()));
      }
      t.out = (fs::path(a->out) / "positive" / (file_name(attack) + ".h5")).string();
      jobs.push_back(t);
    }
    for (const std::string& item : split_list(a->negatives)) {
      const size_t colon = item.find(':');
      std::string arch = item.substr(0, colon);
      double count = 1;
      if (colon != std::string::npos) {
        try {
          count = parse_number(item.substr(colon + 1), "--negatives " + item);
        } catch (const std::invalid_argument& e) {
          throw UsageError(e.what());
        }
      }
      if (!(count >= 1 && count <= 100) || count != std::floor(count))
        throw UsageError("--negatives " + item + ": COUNT must be 1-100");
      if (arch == "same") arch = info.config.arch;
      check_architecture("--negatives", arch);
      for (int i = 0; i < count; ++i) {
        TrainArgs t;
        t.arch = arch;
        t.data = a->data;
        t.limit = a->limit;
        t.opt.epochs = a->epochs;
        t.out = (fs::path(a->out) / "negative" / (arch + "-seed" + std::to_string(i + 1) + ".h5"))
                    .string();
        jobs.push_back(t);
      }
    }
    // Nothing written may replace the target or the data (a zoo made inside an old one).
    const std::vector<Input> inputs = {{"--target", a->target}, {"--data", data_file(a->data)}};
    check_output_path("--out", (fs::path(a->out) / "target.h5").string(),
                      {{"--data", data_file(a->data)}});
    for (const TrainArgs& t : jobs) check_output_path("--out", t.out, inputs);
    fs::create_directories(fs::path(a->out) / "positive");
    fs::create_directories(fs::path(a->out) / "negative");
    const fs::path target_copy = fs::path(a->out) / "target.h5";
    std::error_code ec;
    if (!fs::equivalent(a->target, target_copy, ec))  // a rerun over --out DIR/target.h5
      fs::copy_file(a->target, target_copy, fs::copy_options::overwrite_existing);
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!g.json)
        std::cerr << "zoo: [" << i + 1 << "/" << jobs.size() << "] " << jobs[i].out << "\n";
      GlobalOptions gi = g;
      gi.seed = g.seed + 1000 * (i + 1);  // every model its own seed
      // Each model's result line goes to stdout; with --json only the zoo's summary.
      std::ostream none(nullptr);
      run_train(gi, jobs[i], g.json ? none : std::cout);
    }
    const size_t positives = split_list(a->positives).size();
    if (g.json)
      std::cout << nlohmann::json{{"zoo", a->out},
                                  {"positives", positives},
                                  {"negatives", jobs.size() - positives}}
                       .dump(2)
                << "\n";
    else
      std::cout << "zoo " << a->out << ": target.h5, " << positives << " positive and "
                << jobs.size() - positives << " negative suspects\n";
    return 0;
  };
}

}  // namespace ipg::cli
