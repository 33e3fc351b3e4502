// The experiment end to end on a tiny zoo (tiny_zoo.h), through the library the CLI calls:
// IPGuard's ARUC beats Random's (and the same check fails on a zoo whose positives and
// negatives are swapped), results.json and report.html read back with the numbers of the
// tables equal to the JSON's, a resumed run equals one uninterrupted run, a changed byte in
// results.json is found, and an unloadable suspect is named while the rest are evaluated.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "fingerprint/experiment_report.h"
#include "fingerprint/experiment_folder.h"
#include "fingerprint/experiment_tables.h"
#include "fingerprint/fingerprint_file.h"
#include "models/model_file.h"
#include "tests/fingerprint/tiny_zoo.h"

namespace ipg {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<Setting> grid() {
  std::vector<Setting> s(3);
  s[0].method = Method::IPGuard;
  s[0].param = 3;
  s[1].method = Method::Random;
  s[2].method = Method::FGSM;  // about a quarter of its points succeed: more are drawn
  s[2].param = 0.1;
  s[2].mode.target = TargetLabel::Random;
  s[2].convergence = Convergence::UntilConverged;
  return s;
}

ExperimentOptions options() {
  ExperimentOptions o;
  o.n = 30;
  o.seed = 7;
  o.max_draws_factor = 3;
  return o;
}

// IPGuard separates the copies from the independent models far better than random points
// do: what the paper's Table 4 shows, and what a swapped zoo must fail.
bool ipguard_beats_random(const ExperimentRecord& r) {
  const SettingResult* ip = best_result(r.results, Method::IPGuard, nullptr, Convergence::Paper);
  const SettingResult* rnd = best_result(r.results, Method::Random, nullptr, Convergence::Paper);
  return ip && rnd && ip->aruc >= 0.5 && ip->aruc > rnd->aruc + 0.2;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

class ExperimentRun : public test::TinyZooSuite {
 protected:
  // One run as `ipguard experiment` makes it: scan, load, record, run (into `out` if given).
  static ExperimentRecord run(const fs::path& zoo_dir, const std::vector<Setting>& planned,
                              const std::string& out = "", bool resume = false,
                              const std::function<void(const ExperimentProgress&)>& progress = {},
                              std::string* report = nullptr) {
    Zoo zoo = scan_zoo(zoo_dir.string());
    LoadedZoo loaded = load_zoo(zoo, Device::cpu());
    ExperimentRecord rec = new_record(zoo, loaded);
    rec.version = "test";
    rec.device = "cpu";
    rec.threads = 3;  // what the CLI reads from OpenMP: recorded with every timing
    rec.data = "fashion-mnist";
    rec.options = options();
    rec.planned = planned;
    std::optional<ResultsFolder> folder;
    if (!out.empty()) folder = ResultsFolder::open(out, resume);
    if (folder && folder->previous()) {
      EXPECT_EQ(resume_mismatch(*folder->previous(), rec), "");
    }
    run_recorded(rec, loaded, &train().images, Device::cpu(), folder ? &*folder : nullptr, progress);
    if (report && folder)
      *report = report_html(rec, report_points(rec, out, *loaded.target, &train().images), {});
    return rec;
  }

};

// ---- reading the tables back ----

// A text table's data rows: cells split at runs of two or more spaces.
std::vector<std::vector<std::string>> text_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // title
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::regex sep(" {2,}");
    for (std::sregex_token_iterator it(line.begin() + 2, line.end(), sep, -1), end; it != end; ++it)
      cells.push_back(*it);
    rows.push_back(cells);
  }
  return rows;
}

// The rows of <table id="ID">'s body: each <td>'s text.
std::vector<std::vector<std::string>> html_rows(const std::string& html, const std::string& id) {
  const size_t at = html.find("<table id=\"" + id + "\">");
  EXPECT_NE(at, std::string::npos) << id;
  const std::string table = html.substr(at, html.find("</table>", at) - at);
  const size_t body = table.find("<tbody>");
  std::vector<std::vector<std::string>> rows;
  std::regex tr("<tr>(.*?)</tr>"), td("<td>(.*?)</td>");
  const std::string b = table.substr(body);
  for (std::sregex_iterator r(b.begin(), b.end(), tr), end; r != end; ++r) {
    std::vector<std::string> cells;
    const std::string row = (*r)[1];
    for (std::sregex_iterator c(row.begin(), row.end(), td); c != end; ++c) cells.push_back((*c)[1]);
    rows.push_back(cells);
  }
  return rows;
}

// Table 4's rows against the JSON: each row names a method, mode and policy; its best
// setting must be the JSON's highest ARUC among those settings (first on ties), and its
// ARUC, AUC, TPR and converged count that setting's.
void expect_table4_matches(const std::vector<std::vector<std::string>>& rows, const json& j) {
  ASSERT_FALSE(rows.empty());
  size_t checked = 0;
  for (const auto& row : rows) {
    if (row.size() != 8) continue;  // a note line
    const json* best = nullptr;
    for (const json& s : j["settings"]) {
      const std::string policy = s["convergence"] == "paper" ? "paper" : "until-conv";
      if (s["method"] != row[0] || s["mode"] != row[1] || policy != row[2]) continue;
      if (!best || s["aruc"].get<double>() > (*best)["aruc"].get<double>()) best = &s;
    }
    ASSERT_NE(best, nullptr) << row[0] << " " << row[1];
    EXPECT_NEAR(std::stod(row[4]), (*best)["aruc"].get<double>(), 5e-4) << row[0];
    EXPECT_NEAR(std::stod(row[5]), (*best)["auc"].get<double>(), 5e-4) << row[0];
    EXPECT_NEAR(std::stod(row[6]), (*best)["tpr_at_fpr5"].get<double>(), 5e-4) << row[0];
    EXPECT_EQ(row[7].substr(0, row[7].find(' ')),
              std::to_string((*best)["converged"].get<int>()) + "/" +
                  std::to_string((*best)["points"].get<int>()));
    if ((*best)["method"] != "random") {
      EXPECT_NEAR(std::stod(row[3].substr(row[3].find('=') + 1)), (*best)["param"].get<double>(),
                  1e-9);
    }
    ++checked;
  }
  EXPECT_EQ(checked, j["settings"].size());  // one setting per method, mode and policy here
}

// Every element closed, in order (void elements written as <x/>); returns the problem.
std::string unbalanced_tag(const std::string& html) {
  std::vector<std::string> open;
  std::regex tag("<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*?(/?)>");
  for (std::sregex_iterator t(html.begin(), html.end(), tag), end; t != end; ++t) {
    const std::string name = (*t)[2];
    if ((*t)[3] == "/") continue;
    if ((*t)[1] == "/") {
      if (open.empty() || open.back() != name) return "</" + name + "> closes " +
                                                      (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
    } else {
      open.push_back(name);
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> never closed";
}

// One run into a results folder: IPGuard beats Random, the record and the report read
// back with the tables' numbers equal to the JSON's; then the same grid interrupted and
// resumed equals it, a changed fingerprint file is redone and a changed byte of
// results.json is found. (One test: each process builds the zoo once.)
TEST_F(ExperimentRun, RecordReportResumeAndChecksums) {
  const fs::path out = root() / "out-once";
  std::string html;
  const ExperimentRecord rec = run(root() / "zoo", grid(), out.string(), false, {}, &html);
  ASSERT_EQ(rec.results.size(), 3u);
  EXPECT_EQ(rec.suspects.size(), 6u);
  EXPECT_TRUE(ipguard_beats_random(rec)) << render_text(settings_table(rec));

  // Until converged: every point converged, or the cap was reached; more drawn than kept
  // whenever some candidate failed.
  const SettingResult& fgsm = rec.results[2];
  EXPECT_EQ(fgsm.points, 30);
  EXPECT_TRUE(fgsm.converged == 30 || fgsm.drawn == 90) << fgsm.converged << " " << fgsm.drawn;
  EXPECT_GT(fgsm.drawn, fgsm.points);  // FGSM at eps 0.1 fails on most training images
  EXPECT_GT(fgsm.converged, 0);
  EXPECT_GT(fgsm.origin.back(), 30);  // successes of later rounds among the points
  const Fingerprint fp = load_fingerprint((out / fgsm.fingerprint_file).string());
  int64_t ok = 0;
  for (uint8_t c : fp.converged) ok += c;
  EXPECT_EQ(ok, fgsm.converged);
  // Each point's start, drawn again from its round (what the report shows beside it): FGSM
  // moved every pixel by at most eps from it; Random's points are their starts.
  auto target = load_model((root() / "zoo" / "target.h5").string());
  const Tensor starts = start_images(*target, fgsm, options(), &train().images, 30);
  const std::vector<float> x = fp.points.to_vector(), x0 = starts.to_vector();
  ASSERT_EQ(x.size(), x0.size());
  float moved = 0;
  for (size_t i = 0; i < x.size(); ++i) moved = std::max(moved, std::abs(x[i] - x0[i]));
  EXPECT_LE(moved, 0.1f + 1e-6f);
  EXPECT_GT(moved, 0.09f);  // and it did move them
  const Fingerprint random_fp = load_fingerprint((out / rec.results[1].fingerprint_file).string());
  EXPECT_EQ(start_images(*target, rec.results[1], options(), &train().images, 30).to_vector(),
            random_fp.points.to_vector());

  // results.json: the checksum holds, and the numbers are the record's.
  const json j = json::parse(read(out / "results.json"));
  EXPECT_EQ(j["format"], kResultsFormat);
  EXPECT_EQ(parse_results(read(out / "results.json"), "results.json").results.size(), 3u);
  ASSERT_EQ(j["settings"].size(), 3u);
  EXPECT_EQ(j["settings"][0]["aruc"].get<double>(), rec.results[0].aruc);
  EXPECT_EQ(j["settings"][0]["rates"]["positive"].size(), 3u);
  EXPECT_EQ(j["settings"][0]["rates"]["negative"].size(), 3u);
  for (const char* key : {"n", "seed", "threads", "device", "batch", "max_draws_factor"})
    EXPECT_TRUE(j["parameters"].contains(key)) << key;
  for (const char* key : {"iters", "lr", "binary_steps", "c0", "alpha", "param", "mode"})
    EXPECT_TRUE(j["settings"][0].contains(key)) << key;

  // The tables on stdout and in the report show the JSON's numbers.
  expect_table4_matches(text_rows(render_text(table4(rec))), j);
  expect_table4_matches(html_rows(html, "table4"), j);
  const auto t8 = html_rows(html, "table8");
  ASSERT_EQ(t8.size(), 3u);
  for (const auto& row : t8)
    for (const json& s : j["settings"])
      if (s["method"] == row[0]) {
        EXPECT_NEAR(std::stod(row[4]), s["seconds_per_100"].get<double>(), 0.005) << row[0];
        EXPECT_EQ(row[5], "3");
        EXPECT_EQ(s["threads"], 3);
      }
  const auto t5 = html_rows(html, "table5-0");  // paper's points: ipguard, random columns
  for (const json& r : j["settings"][0]["rates"]["positive"]) {
    const std::string name = fs::path(r["file"].get<std::string>()).stem().string();
    bool found = false;
    for (const auto& row : t5)
      if (row[0] == "positive " + name) {
        EXPECT_NEAR(std::stod(row[1]), r["rate"].get<double>(), 0.005) << name;
        found = true;
      }
    EXPECT_TRUE(found) << name;
  }

  // The report: well formed, with its charts and images inline and nothing fetched.
  EXPECT_EQ(unbalanced_tag(html), "");
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++svgs;
  EXPECT_GE(svgs, 5u);  // ARUC against k and eps, and three robustness-uniqueness charts
  EXPECT_NE(html.find("src=\"data:image/png;base64,iVBORw0KGgo"), std::string::npos);
  EXPECT_EQ(html.find("http://www.w3.org/1999"), std::string::npos);
  EXPECT_EQ(std::regex_search(html, std::regex("(src|href)=\"https?:")), false);
  // ---- resume ----
  const fs::path& once = out;
  const fs::path twice = root() / "out-twice";
  const ExperimentRecord& whole = rec;
  // Interrupted after the first setting was recorded.
  EXPECT_THROW(run(root() / "zoo", grid(), twice.string(), false,
                   [](const ExperimentProgress& p) {
                     if (p.phase == ExperimentProgress::Phase::Done) throw std::runtime_error("stop");
                   }),
               std::runtime_error);
  EXPECT_EQ(parse_results(read(twice / "results.json"), "r").results.size(), 1u);
  // Without --resume the folder is refused; with it, the first setting is not extracted.
  EXPECT_THROW(ResultsFolder::open(twice.string(), false), std::invalid_argument);
  std::set<size_t> extracted;
  const ExperimentRecord resumed =
      run(root() / "zoo", grid(), twice.string(), true, [&](const ExperimentProgress& p) {
        if (p.phase == ExperimentProgress::Phase::Extracting) extracted.insert(p.setting);
      });
  EXPECT_EQ(extracted, (std::set<size_t>{1, 2}));
  ASSERT_EQ(resumed.results.size(), whole.results.size());
  EXPECT_TRUE(resumed.results[0].resumed);
  for (size_t i = 0; i < whole.results.size(); ++i) {
    const SettingResult &a = whole.results[i], &b = resumed.results[i];
    EXPECT_TRUE(a.setting == b.setting);
    EXPECT_EQ(a.aruc, b.aruc);
    EXPECT_EQ(a.auc, b.auc);
    EXPECT_EQ(a.tpr_at_fpr5, b.tpr_at_fpr5);
    EXPECT_EQ(a.converged, b.converged);
    EXPECT_EQ(a.drawn, b.drawn);
    EXPECT_EQ(a.origin, b.origin);
    EXPECT_EQ(a.rates(SuspectGroup::Positive), b.rates(SuspectGroup::Positive));
    EXPECT_EQ(a.rates(SuspectGroup::Negative), b.rates(SuspectGroup::Negative));
    const Fingerprint fa = load_fingerprint((once / a.fingerprint_file).string());
    const Fingerprint fb = load_fingerprint((twice / b.fingerprint_file).string());
    EXPECT_EQ(fa.points.to_vector(), fb.points.to_vector());
    EXPECT_EQ(fa.labels.to_vector_i32(), fb.labels.to_vector_i32());
  }
  // A fingerprint file changed since: its setting is redone, the others are not.
  const fs::path f = twice / resumed.results[1].fingerprint_file;
  std::string bytes = read(f);
  bytes[bytes.size() / 2] ^= 0x20;
  write(f, bytes);
  {  // said before the work starts, naming the setting and the file
    const std::vector<std::string> damaged =
        ResultsFolder::open(twice.string(), true).damaged_fingerprints();
    ASSERT_EQ(damaged.size(), 1u);
    EXPECT_EQ(damaged[0].rfind(setting_label(resumed.results[1].setting) + ": " +
                                   resumed.results[1].fingerprint_file + ": changed",
                               0),
              0u)
        << damaged[0];
  }
  extracted.clear();
  const ExperimentRecord again =
      run(root() / "zoo", grid(), twice.string(), true, [&](const ExperimentProgress& p) {
        if (p.phase == ExperimentProgress::Phase::Extracting) extracted.insert(p.setting);
      });
  EXPECT_EQ(extracted, (std::set<size_t>{1}));
  EXPECT_EQ(again.results[1].aruc, whole.results[1].aruc);
  // A changed byte in results.json: the seed 7 made 6, still valid JSON, so only the
  // checksum can tell; the folder is refused, naming the file.
  const std::string good = read(twice / "results.json");
  const size_t at = good.find("\"seed\": 7");
  ASSERT_NE(at, std::string::npos);
  std::string bad = good;
  bad[at + 8] ^= 0x01;
  write(twice / "results.json", bad);
  try {
    ResultsFolder::open(twice.string(), true);
    FAIL() << "a changed byte was not found";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("results.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("choose another --out"), std::string::npos) << e.what();
  }
}

// A run stopped inside its first setting (a SIGTERM while it labels the suspects) leaves a
// results folder, not an unknown one: --resume continues it, and without --resume it is
// refused as an earlier run's.
TEST_F(ExperimentRun, StoppedInItsFirstSettingIsResumed) {
  const fs::path out = root() / "out-first";
  const std::vector<Setting> one = {grid()[1]};  // Random: quick
  EXPECT_THROW(run(root() / "zoo", one, out.string(), false,
                   [](const ExperimentProgress& p) {
                     if (p.phase == ExperimentProgress::Phase::Labeling)
                       throw std::runtime_error("stop");
                   }),
               std::runtime_error);
  ASSERT_TRUE(fs::exists(out / "results.json"));
  EXPECT_EQ(parse_results(read(out / "results.json"), "r").results.size(), 0u);
  try {
    ResultsFolder::open(out.string(), false);
    FAIL() << "the stopped run's folder was taken without --resume";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("holds an earlier run's results"), std::string::npos)
        << e.what();
  }
  const ExperimentRecord resumed = run(root() / "zoo", one, out.string(), true);
  ASSERT_EQ(resumed.results.size(), 1u);
  EXPECT_FALSE(resumed.results[0].resumed);
  EXPECT_TRUE(fs::exists(out / resumed.results[0].fingerprint_file));
}

// The property the first test checks fails on a zoo whose positives and negatives are
// swapped (so it would catch such a swap); an unloadable suspect is left out, named, and
// the rest evaluated; a broken target is fatal.
TEST_F(ExperimentRun, SwappedZooFailsAndBrokenModelsAreNamed) {
  const fs::path swapped = root() / "zoo-swapped";
  fs::create_directories(swapped);
  fs::copy(root() / "zoo", swapped, fs::copy_options::recursive);
  fs::rename(swapped / "positive", swapped / "tmp");
  fs::rename(swapped / "negative", swapped / "positive");
  fs::rename(swapped / "tmp", swapped / "negative");
  const std::vector<Setting> all = grid(), two(all.begin(), all.begin() + 2);
  const ExperimentRecord swapped_rec = run(swapped, two);
  EXPECT_FALSE(ipguard_beats_random(swapped_rec)) << render_text(settings_table(swapped_rec));

  const fs::path zoo = root() / "zoo-broken";
  fs::create_directories(zoo);
  fs::copy(root() / "zoo", zoo, fs::copy_options::recursive);
  write(zoo / "negative" / "broken.h5", "not an HDF5 file at all");
  const ExperimentRecord rec = run(zoo, {grid()[1]});
  ASSERT_EQ(rec.problems.size(), 1u);
  EXPECT_EQ(rec.problems[0].file, "negative/broken.h5");
  EXPECT_EQ(rec.results[0].negative.size(), 3u);
  const std::string text = render_text(table4(rec));
  EXPECT_NE(text.find("left out: negative/broken.h5"), std::string::npos) << text;
  // The target failing is fatal, naming it.
  write(zoo / "target.h5", "broken");
  try {
    run(zoo, {grid()[1]});
    FAIL() << "a broken target was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("target.h5"), std::string::npos) << e.what();
  }}

}  // namespace
}  // namespace ipg
