// The parts of the label API client (models/remote_classifier.h) that need no server: the
// query log's count and timestamps, parsing an address, and the label of a row of scores.
#include "models/remote_classifier.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace ipg {

int64_t QueryLog::answered() const {
  int64_t n = 0;
  for (int32_t a : answers) n += a >= 0;
  return n;
}

std::string utc_timestamp_ms() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t t = std::time_t(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[96];  // room for any int in every field, which is what the compiler checks
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                int(ms.count() % 1000));
  return b;
}

bool is_remote_address(const std::string& s) { return s.rfind("http://", 0) == 0; }

RemoteAddress parse_remote_address(const std::string& url) {
  const std::string bad = "'" + url + "' is not an address http://HOST[:PORT]/v2/models/NAME";
  if (!is_remote_address(url)) throw RemoteError(bad);
  const std::string rest = url.substr(7);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) throw RemoteError(bad);
  RemoteAddress a;
  std::string hostport = rest.substr(0, slash);
  const size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    const std::string p = hostport.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(p) < 1 || std::stoi(p) > 65535)
      throw RemoteError(bad + " (port '" + p + "')");
    a.port = std::stoi(p);
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) throw RemoteError(bad);
  a.host = hostport;
  std::string path = rest.substr(slash);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::string prefix = "/v2/models/";
  if (path.rfind(prefix, 0) != 0) throw RemoteError(bad);
  a.model = path.substr(prefix.size());
  if (a.model.empty() || a.model.find_first_of("/?#% ") != std::string::npos)
    throw RemoteError(bad + " (model name '" + a.model + "')");
  a.base = path;
  return a;
}

int32_t argmax_label(const double* row, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (row[c] > row[best]) best = c;  // strictly greater: the first of equal maxima wins
  return int32_t(best);
}

}  // namespace ipg
