// A suspect behind a label API: a Classifier whose labels() asks a server that speaks the
// Open Inference Protocol (KServe v2 REST, models/oip.h), e.g. `ipguard serve`, Triton,
// KServe or Seldon, at http://HOST:PORT/v2/models/NAME.
//
// What a verifier needs from someone else's service: it queries in batches, with timeouts,
// retries with exponential backoff (connection failures, timeouts and 5xx answers only: a
// 4xx or a malformed answer is not retried), a query budget counted in points (every point
// sent counts, retries included, and no point is asked twice once answered), and a rate
// limit. Logits or probabilities [n, C] are reduced to labels by argmax (the first of equal
// maxima, so the same answer always gives the same label); labels [n] are taken as they
// are. Anything else — a wrong shape or count, a class out of range, an HTTP error, no
// answer in time, a dropped connection — is a RemoteError with one clear line, and every
// answer received before it stays in the QueryLog, which records each query with its
// timestamps for the evidence report (fingerprint/evidence.h).
#pragma once

#include <stdint.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/classifier.h"

namespace ipg {

struct RemoteOptions {
  int batch = 100;              // points per request
  double timeout_s = 30;        // connect, send and read timeout of each request
  int retries = 3;              // extra attempts of a request after a retryable failure
  double backoff_s = 0.5;       // wait before retry r (1-based): backoff_s * 2^(r-1)
  int64_t max_queries = 0;      // points that may be sent, retries included; 0: no cap
  double max_rate_per_s = 0;    // points per second at most; 0: no limit
  // Asked before each request (and each retry): true stops the labelling with a
  // RemoteError "stopped", the answers so far kept in the log. How a caller that cannot
  // interrupt the call otherwise (Python's Ctrl-C) gets control back between requests.
  std::function<bool()> stop;
};

class RemoteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One request (or, for suspects that are files or commands, one batch): which points, when
// it was sent and answered, and what came back.
struct QueryRecord {
  int64_t first = 0;  // index of the first point of the batch
  int64_t count = 0;  // points in the batch
  int attempt = 1;    // 1 for the first try of the batch, 2.. for retries
  std::string sent;      // ISO 8601 UTC with milliseconds
  std::string answered;  // when the answer (or the failure) came
  int http_status = 0;   // 0: no HTTP answer (connection failure, timeout)
  bool ok = false;       // the answer was read and checked
  std::string error;     // why not, when !ok
  std::string output_datatype;        // as answered
  std::vector<int64_t> output_shape;  // as answered
  std::vector<int32_t> labels;        // the labels taken from the answer (ok only)
};

// Every query of a verification, in order. Shared by the remote client, the command
// suspect and file suspects, so the evidence report reads one thing.
struct QueryLog {
  std::string suspect;  // the address, command or file asked
  std::vector<QueryRecord> queries;
  // Labels received so far by point index; -1 where no answer came.
  std::vector<int32_t> answers;
  int64_t points_sent = 0;  // what the budget counts
  // The number of points answered.
  int64_t answered() const;
};

// "YYYY-MM-DDTHH:MM:SS.mmmZ" now, for QueryRecord's timestamps.
std::string utc_timestamp_ms();

// An address of a remote suspect: starts with "http://" (https is not built in).
bool is_remote_address(const std::string& s);

// Connects to `url` (http://HOST[:PORT]/v2/models/NAME), checks the server is ready and
// reads the model's metadata (input shape, output kind, classes); RemoteError when it
// cannot. The classifier records into `log` when given (it must outlive the classifier).
// labels() takes a CPU float32 [n, C, H, W] batch whose [C, H, W] must match the input
// shape the server states.
std::unique_ptr<Classifier> open_remote_classifier(const std::string& url,
                                                   const RemoteOptions& options,
                                                   QueryLog* log = nullptr);

// The pieces of such an address (for messages and tests); RemoteError when malformed.
struct RemoteAddress {
  std::string host;
  int port = 80;
  std::string model;  // NAME
  std::string base;   // "/v2/models/NAME"
};
RemoteAddress parse_remote_address(const std::string& url);

// The label of one row of scores: the index of the largest value, the first of equal ones.
int32_t argmax_label(const double* row, int64_t classes);

}  // namespace ipg
