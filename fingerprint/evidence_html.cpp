// The evidence report as one readable, self-contained HTML page (fingerprint/evidence.h):
// the verdict and what it means first, then the fingerprint and its provenance, the
// suspect, and every query with its timestamps. Built from the report's JSON alone, so the
// page says nothing the JSON does not.
#include <sstream>

#include "fingerprint/evidence.h"
#include "fingerprint/report_svg.h"

namespace ipg {

namespace {

using json = nlohmann::json;

std::string text(const json& v) {
  if (v.is_null()) return "—";
  if (v.is_string()) return xml_escape(v.get<std::string>());
  return xml_escape(v.dump());
}

void row(std::ostringstream& h, const std::string& key, const std::string& value_html) {
  h << "<tr><th>" << xml_escape(key) << "</th><td>" << value_html << "</td></tr>\n";
}

}  // namespace

std::string evidence_html(const json& r) {
  std::ostringstream h;
  const json& res = r.at("result");
  const json& fp = r.at("fingerprint");
  const json& prov = fp.at("provenance");
  const json& sus = r.at("suspect");
  const bool complete = r.at("complete").get<bool>();
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<title>ipguard evidence: " << text(sus.at("what")) << "</title>\n"
    << "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
       "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.25em "
       ".5em;text-align:left;vertical-align:top}th{background:#f2f2f2}.bad{color:#a00}"
       ".mono{font-family:monospace;word-break:break-all}.small{font-size:.85em}</style>\n"
    << "</head><body>\n<h1>Fingerprint verification: evidence</h1>\n";
  if (!complete)
    h << "<p class=\"bad\"><b>INCOMPLETE:</b> the verification was cut short: "
      << text(r.at("error")) << ". The result below counts only the " << text(res.at("answered"))
      << " answers received and gives no verdict.</p>\n";

  h << "<h2>Result</h2>\n<table>\n";
  row(h, "matching rate", text(res.at("matching_rate")) + " (" + text(res.at("matches")) + " of " +
                              text(res.at("answered")) + " answered points; " +
                              text(res.at("points")) + " in the fingerprint)");
  row(h, "threshold", text(res.at("threshold")));
  row(h, "verdict", res.at("copy").is_null() ? "none (incomplete)"
                    : res.at("copy").get<bool>()
                        ? "<b>labels the fingerprint like the target: a copy</b>"
                        : "does not match the fingerprint");
  row(h, "what the threshold means", text(res.at("meaning")));
  const json& fpr = r.at("false_positive_rate");
  if (!fpr.is_null()) {
    std::string v = text(fpr.at("value")) + " (from " + text(fpr.at("source"));
    if (!fpr.at("setting").is_null())
      v += ", setting " + text(fpr.at("setting")) + ": " +
           text(fpr.at("negatives_at_or_above_threshold")) + " of " + text(fpr.at("negatives")) +
           " negative models at or above the threshold";
    row(h, "false-positive rate of this threshold", v + ")<br><span class=\"small\">" +
                                                       text(fpr.at("meaning")) + "</span>");
  }
  h << "</table>\n";

  h << "<h2>Fingerprint</h2>\n<table>\n";
  row(h, "file", text(fp.at("file")));
  row(h, "SHA-256", "<span class=\"mono\">" + text(fp.at("sha256")) + "</span>");
  row(h, "points", text(fp.at("points")));
  row(h, "method", text(prov.at("method")));
  row(h, "parameters", text(prov.at("params")));
  row(h, "seed", text(prov.at("seed")));
  row(h, "target architecture", text(prov.at("arch")));
  row(h, "target model SHA-256", "<span class=\"mono\">" + text(prov.at("model_sha256")) + "</span>");
  row(h, "extracted", text(prov.at("created")));
  h << "</table>\n";

  h << "<h2>Suspect</h2>\n<table>\n";
  row(h, std::string("kind"), text(sus.at("kind")));
  row(h, sus.at("kind") == "command" ? "command" : sus.at("kind") == "file" ? "file" : "address",
      "<span class=\"mono\">" + text(sus.at("what")) + "</span>");
  if (!sus.at("sha256").is_null())
    row(h, "SHA-256", "<span class=\"mono\">" + text(sus.at("sha256")) + "</span>");
  row(h, "points sent (retries included)", text(r.at("points_sent")));
  row(h, "points answered", text(r.at("points_answered")));
  h << "</table>\n";

  h << "<h2>Queries</h2>\n<p class=\"small\">Every request (or batch) in order; times are "
       "UTC. Labels: what the suspect answered for points first .. first+count-1.</p>\n"
    << "<table class=\"small\"><tr><th>#</th><th>points</th><th>attempt</th><th>sent</th>"
       "<th>answered</th><th>HTTP</th><th>outcome</th><th>labels</th></tr>\n";
  size_t i = 0;
  for (const json& q : r.at("queries")) {
    const int64_t first = q.at("first"), count = q.at("count");
    h << "<tr><td>" << ++i << "</td><td>" << first << "–" << first + count - 1 << "</td><td>"
      << text(q.at("attempt")) << "</td><td>" << text(q.at("sent")) << "</td><td>"
      << text(q.at("answered")) << "</td><td>" << text(q.at("http_status")) << "</td><td>"
      << (q.at("ok").get<bool>() ? "ok " + text(q.at("output"))
                                 : "<span class=\"bad\">" + text(q.at("error")) + "</span>")
      << "</td><td class=\"mono\">" << text(q.at("labels")) << "</td></tr>\n";
  }
  h << "</table>\n<p class=\"small\">Fingerprint labels (the target's), in point order: "
    << "<span class=\"mono\">" << text(fp.at("labels")) << "</span></p>\n"
    << "<p class=\"small\">Made by " << text(r.at("tool").at("name")) << " "
    << text(r.at("tool").at("version")) << " at " << text(r.at("created"))
    << ". The machine-readable record, with its own SHA-256, is evidence.json next to this "
       "page.</p>\n</body></html>\n";
  return h.str();
}

}  // namespace ipg
