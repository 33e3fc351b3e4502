// The label API client (models/remote_classifier.h) against an in-process cpp-httplib
// server on 127.0.0.1 whose answers each test scripts: logits reduced by argmax, labels
// taken as they are, batching, retries of 5xx only, the query budget, and lying answers
// refused with the earlier answers kept in the log.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <functional>
#include <thread>

#include "models/oip.h"
#include "models/remote_classifier.h"

namespace ipg {
namespace {

// Answers infer request number k (1-based) with the status and body `answer` gives.
using Answer = std::function<std::pair<int, std::string>(int k, const oip::Tensor& in)>;

class ScriptedServer {
 public:
  explicit ScriptedServer(Answer answer, std::string output_meta = R"({"name":"o","datatype":"FP32","shape":[-1,3]})")
      : answer_(std::move(answer)) {
    svr_.Get("/v2/models/m", [output_meta](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"name":"m","inputs":[{"name":"i","datatype":"FP32","shape":[-1,1,2,2]}],)"
                      R"("outputs":[)" + output_meta + "]}",
                      "application/json");
    });
    svr_.Get("/v2/models/m/ready", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"ready":true})", "application/json");
    });
    svr_.Post("/v2/models/m/infer", [this](const httplib::Request& req, httplib::Response& res) {
      const oip::Tensor in = oip::read_infer_request(req.body);
      batches_.push_back(in.shape[0]);
      const auto [status, body] = answer_(++count_, in);
      res.status = status;
      res.set_content(body, "application/json");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    // bind_to_any_port already listens: connections queue until the loop accepts them.
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    // stop() does nothing before the loop runs: wait for it, so the destructor can stop it.
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ScriptedServer() {
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v2/models/m"; }
  int requests() const { return count_; }
  std::vector<int64_t> batches_;

 private:
  Answer answer_;
  httplib::Server svr_;
  int port_ = 0;
  std::atomic<int> count_{0};
  std::thread thread_;
};

// Scores that make point i's label (i * 2) % 3, from the pixel value the test puts in.
std::string logits_for(const oip::Tensor& in) {
  oip::Tensor out{"o", {in.shape[0], 3}, "FP32", {}};
  for (int64_t i = 0; i < in.shape[0]; ++i) {
    const int label = int(std::lround(in.data[size_t(i * 4)] * 10)) % 3;
    for (int c = 0; c < 3; ++c) out.data.push_back(c == label ? 1.0 : 0.0);
  }
  return oip::write_infer_response("m", out);
}

// n points [n,1,2,2]; point i has pixel value i/10, so logits_for gives label i % 3.
Tensor points(int64_t n) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < 4; ++j) v.push_back(float(i) / 10.0f);
  return Tensor::from_vector(v, {n, 1, 2, 2});
}

RemoteOptions fast(int batch) {
  RemoteOptions o;
  o.batch = batch;
  o.timeout_s = 10;
  o.retries = 2;
  o.backoff_s = 0.001;
  return o;
}

TEST(RemoteClassifier, LogitsBecomeLabelsInBatches) {
  ScriptedServer s([](int, const oip::Tensor& in) { return std::make_pair(200, logits_for(in)); });
  QueryLog log;
  auto c = open_remote_classifier(s.url(), fast(3), &log);
  EXPECT_EQ(c->num_classes(), 3);
  const std::vector<int32_t> got = c->labels(points(7)).to_vector_i32();
  ASSERT_EQ(got.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(got[size_t(i)], i % 3) << i;
  EXPECT_EQ(s.batches_, (std::vector<int64_t>{3, 3, 1}));
  ASSERT_EQ(log.queries.size(), 3u);
  EXPECT_EQ(log.queries[2].first, 6);
  EXPECT_TRUE(log.queries[2].ok);
  EXPECT_EQ(log.answered(), 7);
  EXPECT_EQ(log.points_sent, 7);
}

TEST(RemoteClassifier, LabelsAreTakenAsTheyAreAndCheckedAgainstClasses) {
  ScriptedServer s(
      [](int k, const oip::Tensor& in) {
        oip::Tensor out{"l", {in.shape[0]}, "INT64", {}};
        for (int64_t i = 0; i < in.shape[0]; ++i) out.data.push_back(k == 2 ? 1e11 : 1);
        return std::make_pair(200, oip::write_infer_response("m", out));
      },
      R"({"name":"l","datatype":"INT64","shape":[-1],"parameters":{"classes":3}})");
  QueryLog log;
  auto c = open_remote_classifier(s.url(), fast(2), &log);
  try {
    c->labels(points(4));
    FAIL() << "a label out of the model's 3 classes was taken";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("not a class of 0..2"), std::string::npos) << e.what();
    // The label as given, not %g's 1e+11.
    EXPECT_NE(std::string(e.what()).find(" 100000000000, not a class"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("2 of 4 points answered"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log.answers, (std::vector<int32_t>{1, 1, -1, -1}));  // the first batch kept
  EXPECT_EQ(s.requests(), 2);  // a lying answer is not asked again
}

// One score per point would make every label 0 (a matching rate that means nothing): the
// answer is refused, and so is metadata that says one class.
TEST(RemoteClassifier, OneScorePerPointIsRefused) {
  ScriptedServer s(
      [](int, const oip::Tensor& in) {
        oip::Tensor out{"o", {in.shape[0], 1}, "FP32", std::vector<double>(size_t(in.shape[0]), 0.5)};
        return std::make_pair(200, oip::write_infer_response("m", out));
      },
      R"({"name":"o","datatype":"FP32","shape":[-1,-1]})");
  auto c = open_remote_classifier(s.url(), fast(4));
  try {
    c->labels(points(3));
    FAIL() << "one score per point was taken as labels";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("1 score per point"), std::string::npos) << e.what();
  }
  ScriptedServer one([](int, const oip::Tensor& in) { return std::make_pair(200, logits_for(in)); },
                     R"({"name":"o","datatype":"FP32","shape":[-1,1]})");
  try {
    open_remote_classifier(one.url(), fast(4));
    FAIL() << "metadata of one class was taken";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("1 class"), std::string::npos) << e.what();
  }
}

TEST(RemoteClassifier, WrongCountIsAClearErrorAndEarlierAnswersStay) {
  ScriptedServer s([](int k, const oip::Tensor& in) {
    oip::Tensor bigger = in;
    if (k == 2) bigger.shape[0] += 1, bigger.data.insert(bigger.data.end(), 4, 0.0);
    return std::make_pair(200, logits_for(bigger));
  });
  QueryLog log;
  auto c = open_remote_classifier(s.url(), fast(2), &log);
  try {
    c->labels(points(5));
    FAIL() << "a wrong number of rows was taken";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("shape [3,3] for 2 points"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log.answered(), 2);
  ASSERT_EQ(log.queries.size(), 2u);
  EXPECT_FALSE(log.queries[1].ok);
}

TEST(RemoteClassifier, ServerErrorsAreRetriedClientErrorsAreNot) {
  ScriptedServer s([](int k, const oip::Tensor& in) {
    if (k == 1) return std::make_pair(503, oip::write_error("busy"));
    return std::make_pair(200, logits_for(in));
  });
  QueryLog log;
  auto c = open_remote_classifier(s.url(), fast(10), &log);
  EXPECT_EQ(c->labels(points(4)).to_vector_i32(), (std::vector<int32_t>{0, 1, 2, 0}));
  ASSERT_EQ(log.queries.size(), 2u);
  EXPECT_EQ(log.queries[0].http_status, 503);
  EXPECT_EQ(log.queries[0].error, "HTTP 503 (busy)");
  EXPECT_EQ(log.queries[1].attempt, 2);

  ScriptedServer bad([](int, const oip::Tensor&) {
    return std::make_pair(400, oip::write_error("batch too big"));
  });
  auto c2 = open_remote_classifier(bad.url(), fast(10));
  EXPECT_THROW(c2->labels(points(2)), RemoteError);
  EXPECT_EQ(bad.requests(), 1);
}

TEST(RemoteClassifier, RetriesEndAndTheBudgetIsNeverPassed) {
  ScriptedServer s([](int, const oip::Tensor&) {
    return std::make_pair(500, oip::write_error("down"));
  });
  RemoteOptions o = fast(2);
  o.retries = 5;
  o.max_queries = 5;  // 2 + 2 points, then a third try of 2 would pass 5
  QueryLog log;
  auto c = open_remote_classifier(s.url(), o, &log);
  try {
    c->labels(points(2));
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("budget of 5 points"), std::string::npos) << e.what();
    // and why the retries spent it
    EXPECT_NE(std::string(e.what()).find("the last failure, points 0-1: HTTP 500 (down)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(log.points_sent, 4);
  EXPECT_EQ(s.requests(), 2);

  RemoteOptions o2 = fast(2);
  o2.retries = 1;
  auto c2 = open_remote_classifier(s.url(), o2);
  try {
    c2->labels(points(2));
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 500 (down) (after 2 attempts)"), std::string::npos)
        << e.what();
  }
}

TEST(RemoteClassifier, RefusesPointsOfAnotherShapeAndUnreachableServers) {
  ScriptedServer s([](int, const oip::Tensor& in) { return std::make_pair(200, logits_for(in)); });
  auto c = open_remote_classifier(s.url(), fast(2));
  try {
    c->labels(Tensor::zeros({2, 3, 2, 2}));
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("takes inputs [-1,1,2,2], the points are [-1,3,2,2]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(s.requests(), 0);
  // A port nothing listens on (the server's, after it stopped).
  std::string gone;
  {
    ScriptedServer t([](int, const oip::Tensor& in) { return std::make_pair(200, logits_for(in)); });
    gone = t.url();
  }
  RemoteOptions o = fast(2);
  o.retries = 0;
  try {
    open_remote_classifier(gone, o);
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ipg
