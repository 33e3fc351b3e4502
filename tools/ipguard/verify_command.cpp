// `ipguard verify`: the matching rate of a suspect on a fingerprint, and the verdict. The
// suspect is a model file, a label API (http://HOST:PORT/v2/models/NAME, the Open
// Inference Protocol: models/remote_classifier.h) or a command (--suspect-cmd,
// tools/ipguard/suspect_command.h). With --report DIR every query and answer goes into an
// evidence report (fingerprint/evidence.h); a verification cut short still writes it,
// marked incomplete, and exits 1.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>

#include "engine/error.h"
#include "engine/sha256.h"
#include "fingerprint/evidence.h"
#include "fingerprint/verify.h"
#include "models/load.h"
#include "models/remote_classifier.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/output_check.h"
#include "tools/ipguard/suspect_command.h"

namespace ipg::cli {

namespace {

// --suspect-cmd's default --timeout, for the whole command: generous, since a command may
// start an interpreter and load a model before it labels anything (minutes on a slow or
// busy machine), yet a hung command still ends.
constexpr double kCommandTimeoutS = 600;

struct VerifyArgs {
  std::string fingerprint, suspect, suspect_cmd, report, evaluation;
  double threshold = 0.5;
  int batch = 500;
  RemoteOptions remote;
  double negatives_fpr = -1;
  int64_t classes = 0;  // --classes (0: not given)
};

// --suspect-cmd's classes: --classes, else those the fingerprint shows (its labels and its
// candidates' classes: the target gives them all). A command states no class count, and a
// label that is no class would silently count as a mismatch.
SuspectCommandOptions command_options(const VerifyArgs& va, const CLI::App& cmd,
                                      const Fingerprint& fp) {
  const int64_t shown = classes_shown(fp);
  SuspectCommandOptions o;
  o.timeout_s = cmd.count("--timeout") ? va.remote.timeout_s : kCommandTimeoutS;
  if (va.classes > 0) {
    if (va.classes < shown)
      throw UsageError("--classes " + std::to_string(va.classes) + ": the fingerprint's target "
                       "gives class " + std::to_string(shown - 1) + "; give its number of classes");
    o.classes = va.classes;
  } else {
    o.classes = shown;
    o.classes_note = "(the classes the fingerprint shows; --classes N if the target has more)";
  }
  return o;
}

// A label API that refused a batch for its size (HTTP 400 saying "this server takes 1 to
// N", as ipguard serve --max-batch does): what to give verify instead ("" otherwise).
std::string batch_hint(const QueryLog& log) {
  if (log.queries.empty() || log.queries.back().http_status != 400) return "";
  static const std::regex takes("this server takes 1 to ([0-9]+)");
  std::smatch m;
  if (!std::regex_search(log.queries.back().error, m, takes)) return "";
  return "; give --query-batch " + m[1].str() + " or less";
}

// The file suspect, a batch at a time, each batch one entry of the log.
std::vector<int32_t> label_file(const VerifyArgs& va, const Tensor& points, Device dev,
                                QueryLog& log) {
  auto suspect = load_classifier(va.suspect);
  const int64_t n = points.dim(0);
  log.answers.assign(size_t(n), -1);
  std::vector<int32_t> got;
  for (int64_t b = 0; b < n; b += va.batch) {
    const int64_t count = std::min<int64_t>(va.batch, n - b);
    QueryRecord rec;
    rec.first = b;
    rec.count = count;
    rec.sent = utc_timestamp_ms();
    try {
      rec.labels = predict(*suspect, points.narrow0(b, count), dev, va.batch);
    } catch (const ShapeError& e) {  // the points do not fit: name both files
      throw ShapeError(va.suspect + ": " + e.what() + " (the points of " + va.fingerprint + ")");
    }
    rec.answered = utc_timestamp_ms();
    rec.ok = true;
    rec.output_datatype = "labels";
    rec.output_shape = {count};
    log.points_sent += count;
    for (int64_t i = 0; i < count; ++i) log.answers[size_t(b + i)] = rec.labels[size_t(i)];
    got.insert(got.end(), rec.labels.begin(), rec.labels.end());
    log.queries.push_back(std::move(rec));
  }
  return got;
}

int run_verify(const GlobalOptions& g, const VerifyArgs& va, const CLI::App& cmd) {
  const bool remote = is_remote_address(va.suspect);
  const bool by_cmd = !va.suspect_cmd.empty();
  if (va.suspect.empty() == !by_cmd)
    throw UsageError("give one of --suspect (a model file or an http:// address) or --suspect-cmd");
  if (!remote)
    for (const char* o : {"--query-batch", "--timeout", "--retries", "--max-queries", "--max-rate"})
      if (cmd.count(o) && !(by_cmd && std::string(o) == "--timeout"))
        throw UsageError(std::string(o) + " is for a suspect at an http:// address" +
                         (std::string(o) == "--timeout" ? " or --suspect-cmd" : ""));
  if (cmd.count("--classes") && !by_cmd)
    throw UsageError("--classes is for --suspect-cmd (a label API states its classes, a model "
                     "file has its own)");
  if (va.suspect.rfind("https://", 0) == 0)
    throw UsageError("--suspect: " + va.suspect +
                     ": https is not supported; give the label API's plain http:// address "
                     "(a local proxy that forwards to the https service will do)");
  if (remote) {
    try {  // a malformed address is the user's to fix, found before any work
      (void)parse_remote_address(va.suspect);
    } catch (const std::exception& e) {
      throw UsageError(std::string("--suspect: ") + e.what());
    }
  }
  if (!va.report.empty()) {
    try {
      check_report_dir(va.report);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    check_output_dir("--report", va.report);  // takes files (root passes access() in /sys)
  }
  const Fingerprint fp = load_fingerprint(va.fingerprint);
  const SuspectCommandOptions cmd_options =
      by_cmd ? command_options(va, cmd, fp) : SuspectCommandOptions{};
  const std::string fp_sha = va.report.empty() ? "" : sha256_file(va.fingerprint);
  if (remote && va.remote.max_queries > 0 && va.remote.max_queries < fp.size())
    throw UsageError("--max-queries " + std::to_string(va.remote.max_queries) + " is below the " +
                     std::to_string(fp.size()) + " points of the fingerprint: every point is asked once");
  std::optional<EvidenceFpr> fpr;
  if (!va.evaluation.empty()) fpr = evaluation_fpr(va.evaluation, fp_sha, va.threshold);
  if (va.negatives_fpr >= 0) {
    fpr = EvidenceFpr{};
    fpr->value = va.negatives_fpr;
    fpr->source = "--negatives-fpr";
  }

  QueryLog log;
  log.suspect = by_cmd ? va.suspect_cmd : va.suspect;
  std::vector<int32_t> got;
  std::string failure;
  const Device dev = resolve_device(g.device, g.json ? nullptr : &std::cerr);
  if (remote || by_cmd) {
    if (!g.json)
      std::cerr << "verify: asking " << log.suspect << " for " << fp.size() << " labels"
                << (remote ? " in batches of " + std::to_string(va.remote.batch) : "") << "\n";
    try {
      if (remote) {
        auto suspect = open_remote_classifier(va.suspect, va.remote, &log);
        got = suspect->labels(fp.points).to_vector_i32();
      } else {
        got = run_suspect_command(va.suspect_cmd, fp.points, log, cmd_options);
      }
    } catch (const RemoteError& e) {
      failure = e.what() + batch_hint(log);
    } catch (const SuspectCommandError& e) {
      failure = e.what();
    }
  } else {
    got = label_file(va, fp.points, dev, log);
  }
  const std::string sha = remote || by_cmd ? "" : sha256_file(va.suspect);

  if (!va.report.empty()) {
    EvidenceInput in;
    in.tool_version = IPG_VERSION;
    in.fingerprint_file = va.fingerprint;
    in.fingerprint_sha256 = fp_sha;
    in.fingerprint = &fp;
    in.suspect_kind = remote ? "address" : by_cmd ? "command" : "file";
    in.suspect = log.suspect;
    in.suspect_sha256 = sha;
    in.log = &log;
    in.complete = failure.empty();
    in.error = failure;
    in.threshold = va.threshold;
    in.fpr = fpr;
    write_evidence(va.report, in);
    if (!g.json)
      std::cerr << "verify: evidence " << (failure.empty() ? "" : "(incomplete) ") << "in "
                << va.report << "/evidence.json and evidence.html\n";
  }
  if (!failure.empty()) throw std::runtime_error(failure);

  const Tensor labels = Tensor::from_vector_i32(got, {fp.size()});
  const double rate = matching_rate(fp.labels, labels);
  const int64_t matches = std::llround(rate * double(fp.size()));
  const bool copy = rate >= va.threshold;
  const bool same_file = !sha.empty() && !fp.model_sha256.empty() && sha == fp.model_sha256;
  if (g.json) {
    nlohmann::json j{{"fingerprint", va.fingerprint},
                     {"suspect", log.suspect},
                     {"points", fp.size()},
                     {"matches", matches},
                     {"matching_rate", rate},
                     {"threshold", va.threshold},
                     {"copy", copy},
                     {"same_file_as_target", same_file}};
    if (remote || by_cmd) {
      j["suspect_kind"] = remote ? "address" : "command";
      j["points_sent"] = log.points_sent;
    }
    if (!va.report.empty()) j["report"] = j["out"] = va.report;  // "out": every writer's key
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << log.suspect << ": matching rate " << rate << " (" << matches << "/" << fp.size()
              << ") -> "
              << (copy ? "labels the fingerprint like the target: likely a copy"
                       : "does not match the fingerprint")
              << " (threshold " << va.threshold << ")"
              << (same_file ? "; this is the target model's own file" : "") << "\n";
  }
  return 0;
}

}  // namespace

void add_verify(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  auto va = std::make_shared<VerifyArgs>();
  CLI::App* vf = app.add_subcommand(
      "verify", "matching rate of a suspect model on a fingerprint, and the verdict");
  vf->add_option("--fingerprint", va->fingerprint, "fingerprint file (HDF5)")->required();
  vf->add_option("--suspect", va->suspect,
                 "suspect model file (a network or forest (HDF5) or an ONNX network), or the address of a label "
                 "API: http://HOST:PORT/v2/models/NAME (Open Inference Protocol, e.g. ipguard "
                 "serve, Triton, KServe)");
  vf->add_option("--suspect-cmd", va->suspect_cmd,
                 "a command that labels the points: run through /bin/sh with the path of a "
                 "float32 .npy [n,C,H,W] in $IPG_POINTS; prints n integer labels (one per line, "
                 "or a JSON array) and exits 0");
  bounded(vf->add_option("--threshold", va->threshold,
                         "matching rate at or above which the suspect is called a copy")
              ->capture_default_str(),
          unit_interval_bounds());
  at_least(vf->add_option("--batch", va->batch, "batch size")->capture_default_str(), 1);
  RemoteOptions& r = va->remote;
  at_least(vf->add_option("--query-batch", r.batch, "http suspect: points per request")
               ->capture_default_str(),
           1);
  positive(vf->add_option("--timeout", r.timeout_s,
                          "http suspect: seconds to wait for each answer (default 30); "
                          "--suspect-cmd: seconds the whole command may run before it (and "
                          "its process group) is killed (default 600)"));
  at_least(vf->add_option("--classes", va->classes,
                          "--suspect-cmd: the target's number of classes; a label outside "
                          "0..N-1 ends the verification (default: the classes the "
                          "fingerprint shows, its labels and candidates' classes)"),
           1);
  at_least(vf->add_option("--retries", r.retries,
                          "http suspect: extra tries of a request after a connection failure, "
                          "timeout or 5xx (backoff 0.5 s, doubling)")
               ->capture_default_str(),
           0);
  at_least(vf->add_option("--max-queries", r.max_queries,
                          "http suspect: points that may be sent, retries included (0: no cap; "
                          "at least the fingerprint's points)")
               ->capture_default_str(),
           0);
  Bounds per_s;
  per_s.lo = 0;
  per_s.note = "0: no limit";
  bounded(vf->add_option("--max-rate", r.max_rate_per_s,
                         "http suspect: points per second at most (0: no limit)")
              ->capture_default_str(),
          per_s);
  CLI::Option* report = vf->add_option(
      "--report", va->report,
      "write the evidence (DIR/evidence.json, DIR/evidence.html) into DIR, a new or empty folder");
  CLI::Option* nf = bounded(
      vf->add_option("--negatives-fpr", va->negatives_fpr,
                     "report: the false-positive rate of --threshold on negative models, as known")
          ->needs(report),
      unit_interval_bounds());
  vf->add_option("--evaluation", va->evaluation,
                 "report: results.json of ipguard experiment that saved this fingerprint: the "
                 "false-positive rate of --threshold on its negatives")
      ->needs(report)
      ->excludes(nf);
  vf->footer(
      "A verification cut short (no answer in time, a dropped connection, an HTTP error or a\n"
      "malformed answer after the retries) exits 1; with --report its report is written with\n"
      "the answers received and marked incomplete.");
  runners[vf] = [&g, va, vf]() { return run_verify(g, *va, *vf); };
}

}  // namespace ipg::cli
