// The Open Inference Protocol client (models/remote_classifier.h): cpp-httplib requests,
// retries, budget and rate limit, and the checks that turn a server's answers into labels.
// What needs no server (addresses, timestamps, argmax) is in remote_support.cpp.
#include "models/remote_classifier.h"
#include "engine/number_text.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <thread>

#include "models/oip.h"

namespace ipg {

namespace {

// A label as the answer gave it: an integer in full (100000000000, not %g's 1e+11), else
// as number_text writes it.
std::string label_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
  }
  return number_text(v);
}

using Clock = std::chrono::steady_clock;

void sleep_s(double s) {
  if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

// One HTTP exchange as the client saw it.
struct Exchange {
  bool transport_ok = false;
  std::string transport_error;  // when !transport_ok
  int status = 0;
  std::string body;
  bool too_big = false;
};

class RemoteClassifier : public Classifier {
 public:
  RemoteClassifier(const std::string& url, const RemoteOptions& opt, QueryLog* log)
      : url_(url), addr_(parse_remote_address(url)), opt_(opt), log_(log ? log : &own_log_),
        client_(addr_.host, addr_.port) {
    if (opt_.batch < 1) throw RemoteError(url_ + ": the query batch must be at least 1");
    if (!(opt_.timeout_s > 0)) throw RemoteError(url_ + ": the timeout must be positive");
    const auto whole = [](double s) { return time_t(s); };
    const auto usec = [](double s) { return time_t((s - std::floor(s)) * 1e6); };
    client_.set_connection_timeout(whole(opt_.timeout_s), usec(opt_.timeout_s));
    client_.set_read_timeout(whole(opt_.timeout_s), usec(opt_.timeout_s));
    client_.set_write_timeout(whole(opt_.timeout_s), usec(opt_.timeout_s));
    if (log_->suspect.empty()) log_->suspect = url_;
    read_metadata();
  }

  std::string arch() const override { return "remote model " + addr_.model + " at " + url_; }
  int num_classes() const override { return int(meta_.classes); }

  Tensor labels(const Tensor& batch_in) override {
    const Tensor batch = batch_in.device().is_cpu() ? batch_in : batch_in.to(Device::cpu());
    check_input(batch);
    const int64_t n = batch.dim(0);
    const int64_t offset = int64_t(log_->answers.size());
    log_->answers.resize(size_t(offset + n), -1);
    const int64_t per = n ? batch.numel() / n : 0;
    const float* x = batch.data();
    std::vector<int32_t> out(static_cast<size_t>(n));
    for (int64_t b = 0; b < n; b += opt_.batch) {
      const int64_t count = std::min<int64_t>(opt_.batch, n - b);
      oip::Tensor in;
      in.name = meta_.inputs[0].name;
      in.datatype = "FP32";
      in.shape = batch.shape();
      in.shape[0] = count;
      in.data.assign(x + b * per, x + (b + count) * per);
      const std::vector<int32_t> got = query(offset + b, count, oip::write_infer_request(in));
      for (int64_t i = 0; i < count; ++i) {
        out[size_t(b + i)] = got[size_t(i)];
        log_->answers[size_t(offset + b + i)] = got[size_t(i)];
      }
    }
    return Tensor::from_vector_i32(out, {n});
  }

 private:
  Exchange exchange(const std::string& method, const std::string& path, const std::string& body) {
    httplib::Request req;
    req.method = method;
    req.path = path;
    if (!body.empty()) {
      req.body = body;
      req.set_header("Content-Type", "application/json");
    }
    Exchange ex;
    // The answer is read through a receiver so a server cannot make us hold more than the
    // protocol's cap.
    std::string received;
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      if (received.size() + len > oip::kMaxBodyBytes) {
        ex.too_big = true;
        return false;
      }
      received.append(data, len);
      return true;
    };
    auto res = client_.send(req);
    if (ex.too_big) {
      ex.transport_error = "the answer is over " + std::to_string(oip::kMaxBodyBytes) + " bytes";
      return ex;
    }
    if (!res) {
      const httplib::Error e = res.error();
      ex.transport_error =
          e == httplib::Error::Connection ? "cannot connect"
          : e == httplib::Error::Read
              ? "no complete answer within " + number_text(opt_.timeout_s) +
                    " s (timed out, or the server closed the connection)"
          : e == httplib::Error::ConnectionTimeout
              ? "no connection within " + number_text(opt_.timeout_s) + " s"
              : "HTTP failure (" + httplib::to_string(e) + ")";
      return ex;
    }
    ex.transport_ok = true;
    ex.status = res->status;
    ex.body = std::move(received);
    return ex;
  }

  static std::string status_text(const Exchange& ex) {
    const std::string why = oip::read_error(ex.body);
    return "HTTP " + std::to_string(ex.status) + (why.empty() ? "" : " (" + why + ")");
  }

  // GET with the retry policy (connection failures and 5xx retried).
  std::string get(const std::string& path) {
    for (int attempt = 1;; ++attempt) {
      const Exchange ex = exchange("GET", path, "");
      const bool retryable = !ex.transport_ok || ex.status >= 500;
      if (ex.transport_ok && ex.status == 200) return ex.body;
      const std::string why = ex.transport_ok ? status_text(ex) : ex.transport_error;
      if (!retryable || attempt > opt_.retries)
        throw RemoteError(url_ + ": GET " + path + ": " + why);
      sleep_s(opt_.backoff_s * std::pow(2.0, attempt - 1));
    }
  }

  void read_metadata() {
    try {
      meta_ = oip::read_metadata(get(addr_.base));
    } catch (const oip::OipError& e) {
      throw RemoteError(url_ + ": " + e.what());
    }
    get(addr_.base + "/ready");
    const oip::TensorMeta& in = meta_.inputs[0];
    if (in.datatype != "FP32")
      throw RemoteError(url_ + ": the model's input is " + in.datatype + ", not FP32 images");
    if (in.shape.size() < 2)
      throw RemoteError(url_ + ": the model's input shape " + oip::shape_text(in.shape) +
                        " is not a batch of images");
  }

  void check_input(const Tensor& batch) const {
    if (batch.dtype() != DType::F32 || batch.ndim() < 2)
      throw std::invalid_argument(url_ + ": labels() takes a float32 batch of images");
    const std::vector<int64_t>& want = meta_.inputs[0].shape;
    bool fits = int64_t(want.size()) == batch.ndim();
    for (size_t d = 1; fits && d < want.size(); ++d)
      fits = want[d] == -1 || want[d] == batch.dim(int(d));
    if (!fits) {
      std::vector<int64_t> got = batch.shape();
      got[0] = -1;
      throw RemoteError(url_ + ": the model takes inputs " + oip::shape_text(want) +
                        ", the points are " + oip::shape_text(got));
    }
  }

  void wait_for_rate(int64_t count) {
    if (opt_.max_rate_per_s > 0 && have_last_) {
      const auto due = last_send_ + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(last_count_ / opt_.max_rate_per_s));
      std::this_thread::sleep_until(due);
    }
    have_last_ = true;
    last_send_ = Clock::now();
    last_count_ = double(count);
  }

  [[noreturn]] void fail(const std::string& why, int attempts) {
    throw RemoteError(url_ + ": " + why +
                      (attempts > 1 ? " (after " + std::to_string(attempts) + " attempts)" : "") +
                      "; " + std::to_string(log_->answered()) + " of " +
                      std::to_string(log_->answers.size()) + " points answered");
  }

  // Retries spend the budget: what made the last of them necessary, for the message that
  // says it is spent ("" when no try failed).
  std::string last_failure() const {
    for (auto q = log_->queries.rbegin(); q != log_->queries.rend(); ++q)
      if (!q->ok)
        return "; the last failure, points " + std::to_string(q->first) + "-" +
               std::to_string(q->first + q->count - 1) + ": " + q->error;
    return "";
  }

  // One batch with retries; the labels of its points, checked.
  std::vector<int32_t> query(int64_t first, int64_t count, const std::string& body) {
    for (int attempt = 1;; ++attempt) {
      if (opt_.stop && opt_.stop()) fail("stopped by the caller", 1);
      if (opt_.max_queries > 0 && log_->points_sent + count > opt_.max_queries)
        fail("the query budget of " + std::to_string(opt_.max_queries) + " points is spent (" +
                 std::to_string(log_->points_sent) + " sent)" + last_failure(),
             1);
      wait_for_rate(count);
      QueryRecord rec;
      rec.first = first;
      rec.count = count;
      rec.attempt = attempt;
      rec.sent = utc_timestamp_ms();
      log_->points_sent += count;
      const Exchange ex = exchange("POST", addr_.base + "/infer", body);
      rec.answered = utc_timestamp_ms();
      rec.http_status = ex.status;
      bool retryable = false;
      if (!ex.transport_ok) {
        rec.error = ex.transport_error;
        retryable = !ex.too_big;
      } else if (ex.status != 200) {
        rec.error = status_text(ex);
        retryable = ex.status >= 500;
      } else {
        try {
          const oip::Tensor t = oip::read_infer_response(ex.body);
          rec.output_datatype = t.datatype;
          rec.output_shape = t.shape;
          rec.labels = to_labels(t, count);
          rec.ok = true;
        } catch (const std::exception& e) {  // a lying answer is not asked again
          rec.error = e.what();
        }
      }
      log_->queries.push_back(rec);
      if (rec.ok) return rec.labels;
      if (!retryable || attempt > opt_.retries)
        fail("points " + std::to_string(first) + "-" + std::to_string(first + count - 1) + ": " +
                 rec.error,
             attempt);
      sleep_s(opt_.backoff_s * std::pow(2.0, attempt - 1));
    }
  }

  std::vector<int32_t> to_labels(const oip::Tensor& t, int64_t count) const {
    const int64_t classes = meta_.classes;
    if (t.shape.empty() || t.shape[0] != count)
      throw RemoteError("the answer has shape " + oip::shape_text(t.shape) + " for " +
                        std::to_string(count) + " points");
    std::vector<int32_t> labels(static_cast<size_t>(count));
    if (t.datatype != "FP32" && t.shape.size() == 1) {
      for (int64_t i = 0; i < count; ++i) {
        const double v = t.data[size_t(i)];
        if (v < 0 || (classes > 0 && v >= double(classes)) || v > 2147483647.0)
          throw RemoteError("the answer labels point " + std::to_string(i) + " " + label_text(v) +
                            ", not a class" +
                            (classes > 0 ? " of 0.." + std::to_string(classes - 1) : ""));
        labels[size_t(i)] = int32_t(v);
      }
      return labels;
    }
    if (t.datatype == "FP32" && t.shape.size() == 2 && t.shape[1] == 1)
      throw RemoteError("the answer has 1 score per point: scores [n, classes] need at least 2 "
                        "classes to name one");
    if (t.datatype == "FP32" && t.shape.size() == 2 && t.shape[1] > 1) {
      if (classes > 0 && t.shape[1] != classes)
        throw RemoteError("the answer has " + std::to_string(t.shape[1]) +
                          " scores per point, the model's metadata says " +
                          std::to_string(classes) + " classes");
      for (int64_t i = 0; i < count; ++i)
        labels[size_t(i)] = argmax_label(t.data.data() + i * t.shape[1], t.shape[1]);
      return labels;
    }
    throw RemoteError("the answer is " + t.datatype + " " + oip::shape_text(t.shape) +
                      ": neither labels [n] (INT32/INT64) nor scores [n, classes] (FP32)");
  }

  std::string url_;
  RemoteAddress addr_;
  RemoteOptions opt_;
  QueryLog own_log_;
  QueryLog* log_;
  httplib::Client client_;
  oip::ModelMetadata meta_;
  bool have_last_ = false;
  Clock::time_point last_send_;
  double last_count_ = 0;
};

}  // namespace

std::unique_ptr<Classifier> open_remote_classifier(const std::string& url,
                                                   const RemoteOptions& options, QueryLog* log) {
  return std::make_unique<RemoteClassifier>(url, options, log);
}

}  // namespace ipg
