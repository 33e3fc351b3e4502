// `ipguard extract`, `ipguard verify` and `ipguard compare`: thin wrappers over fingerprint/.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <utility>

#include "engine/sha256.h"
#include "fingerprint/extract.h"
#include "fingerprint/verify.h"
#include "models/data/dataset.h"
#include "models/forest_file.h"
#include "models/load.h"
#include "models/model_file.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/mpi_run.h"
#include "tools/ipguard/output_check.h"

namespace ipg::cli {

namespace {

double median(std::vector<int32_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The method-specific options that `o.method` does not read, and --data without --init
// train, are refused when given (refuse_given).
void refuse_options_of_other_methods(const CLI::App* ex, const ExtractOptions& o) {
  static const std::pair<MethodOption, const char*> kFlags[] = {
      {MethodOption::K, "--k"},         {MethodOption::Lr, "--lr"},
      {MethodOption::Iters, "--iters"}, {MethodOption::Eps, "--eps"},
      {MethodOption::Alpha, "--alpha"}, {MethodOption::BinarySteps, "--binary-steps"},
      {MethodOption::C0, "--c0"},       {MethodOption::Target, "--target"}};
  const std::string& m = o.method;
  std::vector<std::string> unused;
  for (const auto& [option, flag] : kFlags)
    if (!reads_option(m, option)) unused.push_back(flag);
  refuse_given(ex, unused, "to --method " + m);
  if (o.init != "train")
    refuse_given(
        ex, {"--data"},
        "with --init " + o.init + " (it gives the training images --init train starts from)");
}

}  // namespace

void add_extract_options(CLI::App* cmd, ExtractOptions& o) {
  at_least(cmd->add_option("--n", o.n, "number of points")->capture_default_str(), 1);
  cmd->add_option("--init", o.init, "train (random training images) | random (uniform)")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "random"}));
  cmd->add_option("--target", o.target, "least-likely | random: the label j to push towards")
      ->capture_default_str()
      ->check(CLI::IsMember({"least-likely", "random"}));
  positive(
      cmd->add_option("--lr", o.lr, "ipguard / cwl2: Adam learning rate")->capture_default_str());
  at_least(cmd->add_option("--iters", o.iters,
                           "ipguard / igsm: iteration budget per point; cwl2: per binary-search "
                           "step (Carlini's default is 10000)")
               ->capture_default_str(),
           1);
  bounded(cmd->add_option("--alpha", o.alpha, "igsm: step size")->capture_default_str(),
          unit_step_bounds());
  at_least(cmd->add_option("--binary-steps", o.binary_steps, "cwl2: binary search steps over c")
               ->capture_default_str(),
           1);
  positive(cmd->add_option("--c0", o.c0, "cwl2: initial constant c")->capture_default_str());
  at_least(cmd->add_option("--batch", o.batch,
                           "candidates run together (0: 100 on the CPU; on a GPU as many as "
                           "fit in half its free memory)")
               ->capture_default_str(),
           0);
}

void add_fingerprint_commands(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  // ---- extract ----
  struct ExtractArgs {
    std::string model, out, data = "fashion-mnist";
    ExtractOptions o;
  };
  auto xa = std::make_shared<ExtractArgs>();
  CLI::App* ex = app.add_subcommand(
      "extract", "extract a fingerprint: points near the model's decision boundary");
  ex->add_option("--model", xa->model, "target model file: a network (HDF5) or an ONNX network")
      ->required();
  ex->add_option("--out", xa->out, "fingerprint file to write (HDF5)")->required();
  ex->add_option("--method", xa->o.method, "ipguard | cwl2 | fgsm | igsm | random")
      ->capture_default_str()
      ->check(CLI::IsMember({"ipguard", "cwl2", "fgsm", "igsm", "random"}));
  bounded(
      ex->add_option("--k", xa->o.k, "ipguard: margin in logits (Eq. 5); cwl2: confidence kappa")
          ->capture_default_str(),
      k_bounds());
  bounded(ex->add_option("--eps", xa->o.eps, "fgsm / igsm: L-inf bound around the initial point")
              ->capture_default_str(),
          unit_step_bounds());
  add_extract_options(ex, xa->o);
  data_spec(ex->add_option("--data", xa->data, "training images for --init train (dataset spec)")
                ->capture_default_str());
  runners[ex] = [&g, xa, ex]() {
    ExtractOptions o = xa->o;
    o.seed = g.seed;
    refuse_options_of_other_methods(ex, o);
    try {
      validate(o);  // the parse-time checks cover every option; this is the library's word
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    check_output_file("--out", xa->out, with_data({{"--model", xa->model}}, xa->data));
    const Device dev = resolve_device(g.device, g.json ? nullptr : &std::cerr);
    if (is_forest_file(xa->model))
      throw std::invalid_argument(xa->model +
                                  ": a random forest has no gradient to search along; extract "
                                  "needs a network (forests can be verified as suspects)");
    Provenance prov;
    auto net = load_model(xa->model, &prov);
    net->to(dev);
    Dataset train_set;
    if (o.init == "train") {
      train_set = load_dataset(xa->data, Split::Train);
      const ModelConfig& c = net->config();
      const Shape takes = {c.in_channels, c.height, c.width};
      const Shape& all = train_set.images.shape();  // [n, C, H, W] (the loaders' form)
      const Shape has(all.begin() + 1, all.end());
      if (has != takes)
        throw UsageError("--data " + train_set.name + ": its images are " + shape_str(has) + ", " +
                         xa->model + " takes " + shape_str(takes) +
                         " (give its dataset with --data, or --init random)");
    }
    // Progress on stderr: one line rewritten in place on a terminal; into a log (not a
    // terminal, or --json), a line every ten seconds, so a long CW-L2 run is not silent.
    const bool tty = !g.json && ::isatty(2);
    const auto t0 = std::chrono::steady_clock::now();
    auto last_line = t0;
    double plan_seconds = 0;  // of this process (rank 0's under mpirun)
    int64_t plans = 0;
    // Under mpirun the chunks are shared over the ranks; rank 0 writes the file.
    Communicator& comm = world();
    Fingerprint fp = extract_on_ranks(
        comm, *net, o, o.init == "train" ? &train_set.images : nullptr,
        [&](const ExtractProgress& p) {
          plan_seconds = p.plan_seconds;
          plans = p.plans;
          if (tty) {
            std::fprintf(stderr, "\r  points %lld/%lld  iteration %lld  still searching %lld   ",
                         (long long)(p.done), (long long)o.n, (long long)p.iteration,
                         (long long)p.active);
            std::fflush(stderr);
            return;
          }
          const auto now = std::chrono::steady_clock::now();
          if (now - last_line < std::chrono::seconds(10)) return;
          last_line = now;
          std::fprintf(stderr,
                       "  points %lld/%lld done, iteration %lld, %lld of %lld still searching\n",
                       (long long)(p.done), (long long)o.n, (long long)p.iteration,
                       (long long)p.active, (long long)p.chunk_rows);
        });
    if (tty) std::fprintf(stderr, "\n");
    if (comm.rank() != 0) {
      comm.barrier(kTagBarrier);
      return 0;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fp.model_sha256 = sha256_file(xa->model);
    save_fingerprint(fp, xa->out);
    int64_t converged = 0;
    for (uint8_t c : fp.converged) converged += c;
    const double med = median(fp.iterations);
    if (g.json) {
      std::cout << nlohmann::json{{"fingerprint", xa->out},      {"out", xa->out},
                                  {"model", xa->model},          {"method", fp.method},
                                  {"points", fp.size()},         {"converged", converged},
                                  {"median_iterations", med},    {"seconds", seconds},
                                  {"device", dev.str()},         {"plans", plans},
                                  {"plan_seconds", plan_seconds}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "saved " << xa->out << ": " << counted(fp.size(), "point") << " (" << fp.method
                << ", init " << o.init << ", target " << o.target << "), " << converged
                << " converged, median " << med << " iterations, " << seconds << " s on "
                << dev.str() << "\n";
    }
    std::cout << std::flush;
    if (comm.distributed()) comm.barrier(kTagBarrier);
    return 0;
  };

  // ---- verify: tools/ipguard/verify_command.cpp ----
  add_verify(app, g, runners);

  // compare: two fingerprints of the same target and options (e.g. one extracted on the
  // CPU, one on CUDA): how far their points and labels agree.
  struct CompareArgs {
    std::string a, b;
    double min_agreement = 0;
  };
  auto ca = std::make_shared<CompareArgs>();
  CLI::App* cmp = app.add_subcommand(
      "compare",
      "how far two fingerprints agree (labels, converged sets, points), e.g. the "
      "same extraction on two devices");
  cmp->add_option("first", ca->a, "fingerprint file (HDF5)")->required();
  cmp->add_option("second", ca->b, "fingerprint file (HDF5)")->required();
  bounded(cmp->add_option("--min-agreement", ca->min_agreement,
                          "exit 1 when fewer than this fraction of the labels agree")
              ->capture_default_str(),
          unit_interval_bounds());
  runners[cmp] = [&g, ca, cmp]() {
    const Fingerprint a = load_fingerprint(ca->a), b = load_fingerprint(ca->b);
    if (a.points.shape() != b.points.shape())
      throw std::invalid_argument(
          "the fingerprints have different shapes: " + shape_str(a.points.shape()) + " and " +
          shape_str(b.points.shape()));
    const std::vector<int32_t> la = a.labels.to_vector_i32(), lb = b.labels.to_vector_i32();
    const std::vector<float> pa = a.points.to_vector(), pb = b.points.to_vector();
    const int64_t n = a.size(), per = n ? int64_t(pa.size()) / n : 0;
    int64_t same_labels = 0, both = 0, only_a = 0, only_b = 0, same_points = 0;
    double max_diff = 0;
    for (int64_t r = 0; r < n; ++r) {
      same_labels += la[size_t(r)] == lb[size_t(r)];
      const bool ca_ = a.converged[size_t(r)] != 0, cb = b.converged[size_t(r)] != 0;
      both += ca_ && cb;
      only_a += ca_ && !cb;
      only_b += cb && !ca_;
      double row = 0;
      for (int64_t e = r * per; e < (r + 1) * per; ++e)
        row = std::max(row, double(std::fabs(pa[size_t(e)] - pb[size_t(e)])));
      same_points += row == 0;
      max_diff = std::max(max_diff, row);
    }
    const double agreement = n ? double(same_labels) / double(n) : 1;
    const bool enough = agreement >= ca->min_agreement;
    if (g.json) {
      nlohmann::json j{{"first", ca->a},
                       {"second", ca->b},
                       {"points", n},
                       {"same_labels", same_labels},
                       {"label_agreement", agreement},
                       {"converged_both", both},
                       {"converged_first_only", only_a},
                       {"converged_second_only", only_b},
                       {"identical_points", same_points},
                       {"max_abs_point_difference", max_diff}};
      if (cmp->count("--min-agreement")) {  // what the exit status says, in the result itself
        j["min_agreement"] = ca->min_agreement;
        j["meets_min_agreement"] = enough;
      }
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << n << " points: labels agree on " << same_labels << " (" << agreement * 100
                << "%); converged in both " << both << ", only the first " << only_a
                << ", only the second " << only_b << "; " << same_points
                << " points identical, largest pixel difference " << max_diff << "\n";
    }
    std::cout << std::flush;
    if (enough) return 0;
    // Exit 1 on its own would read as a failure to compare.
    std::cerr << "ipguard compare: labels agree on " << same_labels << " of " << n << " points ("
              << agreement << "), below --min-agreement " << ca->min_agreement << "\n";
    return kExitFailure;
  };
}

}  // namespace ipg::cli
