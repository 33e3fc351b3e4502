// ipguard: one binary, one subcommand per job (design.md, "CLI"). This file only parses
// arguments and hands over to the library; errors become one line on stderr (and, under
// --json, a JSON object on stdout) and an exit code (1 runtime failure, 2 usage error).
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/terminal_text.h"
#include "engine/threads.h"
#include "tools/ipguard/build_info.h"
#include "tools/ipguard/cli.h"
#include "tools/ipguard/mpi_comm.h"

namespace {

// The first argument that is neither an option nor the value of one of app's options:
// what the user meant as the subcommand ("" when there is none).
std::string first_word(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (!a.empty() && a[0] != '-') return a;
    const CLI::Option* o = app.get_option_no_throw(a);
    if (o && o->get_items_expected_min() > 0) ++i;  // "--seed 3": 3 is its value
  }
  return "";
}

// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > n) return false;
    unsigned cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const unsigned kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// An error said on stderr (one line) and, under --json, as a JSON object on stdout too, so a
// script reading stdout gets something it can parse: {"error": "...", "exit_code": N}.
int report_error(bool json, const std::string& line, int code) {
  std::cerr << ipg::terminal_text(line) << "\n";
  if (json)
    std::cout << nlohmann::json{{"error", line}, {"exit_code", code}}.dump(
                     2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  return code;
}

// Whether --json is among the arguments (for errors found before parsing finished).
bool asked_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--json") return true;
  return false;
}

// CLI11's message in the project's words where it reads badly: an option given twice
// ("--n: At Most 1 required but received 2") says so.
std::string parse_error_text(const CLI::ParseError& e) {
  const std::string text = e.what();
  const std::string at_most = ": At Most 1 required but received ";
  const size_t at = text.find(at_most);
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && at != std::string::npos)
    return text.substr(0, at) + " is given " + text.substr(at + at_most.size()) +
           " times; give it once";
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  // File names and options end up in JSON (manifests, results, reports, --json), which
  // holds UTF-8 only: refused here, before any work, rather than failing after it.
  for (int i = 1; i < argc; ++i)
    if (!valid_utf8(argv[i])) {
      std::string shown;
      for (const char ch : std::string(argv[i]).substr(0, 60)) shown += (ch & 0x80) ? '?' : ch;
      return report_error(asked_json(argc, argv),
                          "ipguard: argument " + std::to_string(i) + " ('" + shown +
                              "') is not valid UTF-8; ipguard records file names in JSON, which "
                              "must be UTF-8: rename the file or use a UTF-8 locale's name",
                          ipg::cli::kExitUsage);
    }
  using namespace ipg::cli;
  CLI::App app{
      "ipguard: fingerprint image classifiers by points near their decision boundary,\n"
      "and verify suspect models against the fingerprint (IPGuard, AsiaCCS'21)."};
  app.set_version_flag("--version", std::string("ipguard ") + IPG_VERSION);
  app.require_subcommand(1);
  // The global options may also follow the subcommand (`ipguard serve ... --json`, as
  // serve --help words it): a subcommand passes the options it does not know up here.
  app.fallthrough();
  GlobalOptions g;
  device_spec(
      app.add_option("--device", g.device, "auto | cpu | cuda[:N] (auto: CUDA when present)")
          ->capture_default_str());
  // Bounded here, not by libgomp: 100,000 threads overflowed its stacks (SIGSEGV).
  Bounds threads;
  threads.lo = 0;
  threads.hi = ipg::max_threads_allowed();
  threads.integer = true;
  threads.note = "0: the idle cores";
  bounded(app.add_option("--threads", g.threads,
                         "CPU threads (0: OMP_NUM_THREADS when set, else the cores idle at start)")
              ->capture_default_str(),
          threads);
  Bounds seed;
  seed.lo = 0;
  seed.integer = seed.u64 = true;
  bounded(app.add_option("--seed", g.seed, "random seed")->capture_default_str(), seed);
  app.add_flag("--json", g.json, "machine-readable result on stdout");

  Runners runners;
  add_doctor(app, g, runners);
  add_model_commands(app, g, runners);
  add_convert(app, g, runners);
  add_fingerprint_commands(app, g, runners);
  add_experiment(app, g, runners);
  add_zoo(app, g, runners);
  add_serve(app, g, runners);

  // `ipguard nosuch --help` printed the main help and exited 0, as if nosuch existed.
  {
    const std::string word = first_word(app, argc, argv);
    bool known = false;
    for (const auto& r : runners) known = known || r.first->get_name() == word;
    if (!word.empty() && !known)
      return report_error(
          asked_json(argc, argv),
          "ipguard: unknown subcommand '" + word + "' (ipguard --help lists the subcommands)",
          kExitUsage);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version
      if (dynamic_cast<const CLI::CallForVersion*>(&e) && asked_json(argc, argv)) {
        std::cout << nlohmann::json{{"name", "ipguard"},
                                    {"version", IPG_VERSION},
                                    {"commit", build_commit()}}
                         .dump(2)
                  << "\n";
        return 0;
      }
      return app.exit(e);
    }
    // One line, named like every later error ("ipguard extract: ..."), not CLI11's message
    // plus a second "Run with --help" line.
    std::string where = "ipguard";
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    if (app.get_subcommands().empty()) {
      // CLI11 says "A subcommand is required" for `ipguard nosuch` too: name the word.
      const std::string word = first_word(app, argc, argv);
      if (!word.empty())
        return report_error(
            asked_json(argc, argv),
            "ipguard: unknown subcommand '" + word + "' (ipguard --help lists the subcommands)",
            kExitUsage);
    }
    return report_error(asked_json(argc, argv),
                        where + ": " + parse_error_text(e) + " (see --help)", kExitUsage);
  }
  configure_rank(g);  // under mpirun: this rank's share of the node's cores and GPUs
  try {
    ipg::set_threads(g.threads);
  } catch (const std::exception& e) {
    return report_error(g.json, std::string("ipguard: --threads: ") + e.what(), kExitUsage);
  }
  for (const CLI::App* sub : app.get_subcommands()) {
    auto it = runners.find(sub);
    if (it == runners.end()) {  // every subcommand registers a runner
      std::cerr << "ipguard " << sub->get_name() << ": internal error: no runner\n";
      return kExitFailure;
    }
    try {
      return it->second();
    } catch (const UsageError& e) {  // found before the work started
      report_error(g.json, "ipguard " + sub->get_name() + ": " + e.what(), kExitUsage);
      end_run_after_error(kExitUsage);  // under mpirun the other ranks may wait for this one
      return kExitUsage;
    } catch (const std::bad_alloc&) {  // its what() is only "std::bad_alloc"
      report_error(g.json,
                   "ipguard " + sub->get_name() +
                       ": error: out of memory: the job needs more than this machine could give "
                       "(fewer points, a smaller batch or fewer images need less)",
                   kExitFailure);
      end_run_after_error(kExitFailure);
      return kExitFailure;
    } catch (const std::exception& e) {
      report_error(g.json, "ipguard " + sub->get_name() + ": error: " + e.what(), kExitFailure);
      end_run_after_error(kExitFailure);
      return kExitFailure;
    }
  }
  return kExitUsage;
}
