// `ipguard serve`: a model file behind the Open Inference Protocol (KServe v2 REST,
// models/oip.h), the way a suspect would be deployed; what `verify --suspect http://...`
// queries. Health, metadata, readiness and infer endpoints; logits by default, labels
// with --labels-only (and always for label-only models such as random forests).
//
// Hidden, for tests only: --fault KIND [--fault-every K] [--fault-sleep S] makes every K-th
// infer request misbehave (drop: the connection closes mid-answer; slow: the answer comes
// after S seconds; wrong-count: one row too many; wrong-shape: one value short of the
// stated shape; http-500: an internal error), so ctest can drive the client's error paths
// against a real server process. Counted, not random, so a test is the same every run.
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <httplib.h>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/autograd.h"
#include "engine/device.h"
#include "models/forest.h"
#include "models/load.h"
#include "models/network.h"
#include "models/oip.h"
#include "models/train.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

namespace {

std::atomic<bool> g_stopping{false};

// Address reuse without port sharing: httplib's default SO_REUSEPORT lets a second server
// bind a port another one listens on (the kernel then splits the connections between
// them); SO_REUSEADDR alone still allows a restart over connections in TIME_WAIT.
void listen_socket_options(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

// Why HOST:PORT cannot be bound (httplib only says that it cannot): binds a socket of
// our own the same way and returns the system's reason; *err its errno (0: none).
std::string bind_failure(const std::string& host, int port, int* err) {
  *err = 0;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) return gai_strerror(rc);
  std::string why = "unknown reason";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    const int sock = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (sock < 0) {
      *err = errno;
      why = std::strerror(errno);
      continue;
    }
    listen_socket_options(sock);
    const bool bound = ::bind(sock, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!bound) {
      *err = errno;
      why = std::strerror(errno);
    }
    ::close(sock);
    if (bound) {  // free now: it was taken only for a moment
      why = "no reason found: it is free now";
      break;
    }
  }
  freeaddrinfo(found);
  return why;
}

struct ServeArgs {
  std::string model, host = "127.0.0.1", name;
  int port = 8000;
  bool labels_only = false;
  int max_batch = 1000;
  std::string fault;
  int fault_every = 1;
  double fault_sleep = 5;
};

// The model's input [C, H, W] when its file says it; -1 where unknown.
std::vector<int64_t> item_shape(Classifier& m) {
  if (auto* net = dynamic_cast<Network*>(&m)) {
    const ModelConfig& c = net->config();
    return {c.in_channels, c.height, c.width};
  }
  if (auto* rf = dynamic_cast<RandomForest*>(&m)) {
    const ForestArrays& a = rf->arrays();
    return {a.in_channels, a.height, a.width};
  }
  return {-1, -1, -1};
}

void send_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, oip::write_error(message));
}

class Service {
 public:
  Service(const ServeArgs& a, Device dev, std::unique_ptr<Classifier> model)
      : a_(a), dev_(dev), model_(std::move(model)) {
    item_ = item_shape(*model_);
    logits_ = !a_.labels_only && model_->has_logits();
    if (auto* net = dynamic_cast<Network*>(model_.get())) {
      net->to(dev_);
      net->eval();
    }
    meta_.name = a_.name;
    meta_.platform = "ipguard";
    std::vector<int64_t> in{-1};
    in.insert(in.end(), item_.begin(), item_.end());
    meta_.inputs.push_back({"input", "FP32", in});
    if (logits_)
      meta_.outputs.push_back({"logits", "FP32", {-1, model_->num_classes()}});
    else
      meta_.outputs.push_back({"label", "INT64", {-1}});
    meta_.classes = model_->num_classes();
  }

  bool logits() const { return logits_; }
  const std::vector<int64_t>& item() const { return item_; }
  int64_t requests() const { return requests_; }

  void routes(httplib::Server& svr) {
    const std::string base = "/v2/models/" + a_.name;
    svr.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, R"({"live":true})");
    });
    svr.Get("/v2/health/ready", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, R"({"ready":true})");
    });
    svr.Get(base, [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, oip::write_metadata(meta_));
    });
    svr.Get(base + "/ready", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, nlohmann::json{{"name", a_.name}, {"ready", true}}.dump());
    });
    svr.Post(base + "/infer", [this](const httplib::Request& req, httplib::Response& res) {
      infer(req, res);
    });
    // Anything else: a JSON 404 that names what is served.
    auto unknown = [this](const httplib::Request& req, httplib::Response& res) {
      send_error(res, 404, "no such endpoint " + req.path.substr(0, 100) + "; this server has " +
                               "model '" + a_.name + "'");
    };
    svr.Get(".*", unknown);
    svr.Post(".*", unknown);
  }

 private:
  void infer(const httplib::Request& req, httplib::Response& res) {
    oip::Tensor in;
    try {
      in = oip::read_infer_request(req.body);
    } catch (const oip::OipError& e) {
      return send_error(res, 400, e.what());
    }
    if (int64_t(in.shape.size()) != 1 + int64_t(item_.size()))
      return send_error(res, 400, "input shape " + oip::shape_text(in.shape) +
                                      ", expected [n," + oip::shape_text(item_).substr(1));
    for (size_t d = 0; d < item_.size(); ++d)
      if (item_[d] != -1 && in.shape[d + 1] != item_[d])
        return send_error(res, 400, "input shape " + oip::shape_text(in.shape) +
                                        ", expected [n," + oip::shape_text(item_).substr(1));
    if (const std::string bad = oip::pixel_range_error(in); !bad.empty()) return send_error(res, 400, bad);
    const int64_t n = in.shape[0];
    if (n < 1 || n > a_.max_batch)
      return send_error(res, 400, "batch of " + std::to_string(n) + " points; this server takes 1 to " +
                                      std::to_string(a_.max_batch));
    oip::Tensor out;
    try {
      std::lock_guard<std::mutex> lock(mu_);  // the model is not shared between requests
      const std::vector<float> x(in.data.begin(), in.data.end());
      const Tensor batch = Tensor::from_vector(x, in.shape);
      if (logits_) {
        NoGradGuard no_grad;
        const Tensor z = model_->logits(batch.to(dev_)).to(Device::cpu());
        const std::vector<float> v = z.to_vector();
        out = {"logits", {n, int64_t(model_->num_classes())}, "FP32", {v.begin(), v.end()}};
      } else {
        const std::vector<int32_t> l = predict(*model_, batch, dev_, a_.max_batch);
        out = {"label", {n}, "INT64", {l.begin(), l.end()}};
      }
    } catch (const std::exception& e) {
      return send_error(res, 500, std::string("inference failed: ") + e.what());
    }
    const int64_t k = ++requests_;
    if (!a_.fault.empty() && k % a_.fault_every == 0) return inject(res, out);
    send_json(res, 200, oip::write_infer_response(a_.name, out));
  }

  void inject(httplib::Response& res, oip::Tensor& out) {
    const std::string& f = a_.fault;
    if (f == "http-500") return send_error(res, 500, "injected fault (test)");
    if (f == "drop") {  // headers promise a body that never comes: the client sees a cut
      res.set_content_provider(
          1000, "application/json",
          [](size_t, size_t, httplib::DataSink&) { return false; });
      return;
    }
    if (f == "slow") {
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::duration<double>(a_.fault_sleep);
      while (!g_stopping && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } else if (f == "wrong-count") {
      const int64_t row = out.numel() / out.shape[0];
      for (int64_t i = 0; i < row; ++i) out.data.push_back(out.data[size_t(i)]);
      out.shape[0] += 1;
    } else if (f == "wrong-shape") {
      out.data.pop_back();
    }
    send_json(res, 200, oip::write_infer_response(a_.name, out));
  }

  ServeArgs a_;
  Device dev_;
  std::unique_ptr<Classifier> model_;
  std::vector<int64_t> item_;
  bool logits_ = false;
  oip::ModelMetadata meta_;
  std::mutex mu_;
  std::atomic<int64_t> requests_{0};
};

int run_serve(const GlobalOptions& g, const ServeArgs& a_in) {
  // SIGINT/SIGTERM are blocked here, first, so that every thread started afterwards blocks
  // them too (the OpenMP workers the model's first batch starts: one of those unblocked
  // took a SIGTERM and the process died of it), and are taken by one thread with sigwait,
  // which stops the server: a clean stop, not a handler's. A signal that comes while the
  // model loads waits for that thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ServeArgs a = a_in;
  if (a.name.empty()) {  // the file's name without folder and extension
    std::string s = a.model.substr(a.model.find_last_of('/') + 1);
    a.name = s.substr(0, s.find('.'));
  }
  if (a.name.empty() || a.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
    throw UsageError("--name '" + a.name + "': use letters, digits, '.', '_' and '-'");
  const Device dev = resolve_device(g.device, g.json ? nullptr : &std::cerr);
  Service service(a, dev, load_classifier(a.model));
  if (!service.logits() && !a.labels_only)
    std::cerr << "serve: " << a.model << " gives labels only; serving labels\n";

  httplib::Server svr;
  // A full batch of FP32 values as JSON text is under 32 bytes a value (an unknown input
  // size counts as 3x224x224).
  int64_t per = 1;
  for (int64_t d : service.item()) per *= d < 0 ? 224 * 3 : d;
  svr.set_payload_max_length(size_t(std::min<int64_t>(
      int64_t(oip::kMaxBodyBytes), int64_t(a.max_batch) * per * 32 + (1 << 20))));
  svr.set_keep_alive_timeout(1);
  svr.set_socket_options(listen_socket_options);
  service.routes(svr);
  const int port = a.port == 0 ? svr.bind_to_any_port(a.host)
                               : (svr.bind_to_port(a.host, a.port) ? a.port : -1);
  if (port < 0) {
    int err = 0;
    const std::string why = bind_failure(a.host, a.port, &err);
    const bool taken = a.port != 0 && (err == EADDRINUSE || err == EACCES);
    throw std::runtime_error("cannot listen on " + a.host + ":" + std::to_string(a.port) + ": " +
                             why + (taken ? " (--port 0 picks a free port)" : ""));
  }
  const std::string url = "http://" + a.host + ":" + std::to_string(port) + "/v2/models/" + a.name;
  if (g.json)
    std::cout << nlohmann::json{{"name", a.name}, {"host", a.host}, {"port", port}, {"url", url},
                                {"output", service.logits() ? "logits" : "labels"}}
                     .dump()
              << std::endl;
  else
    std::cout << "serving " << a.name << " at " << url << std::endl;

  std::thread stopper([&svr, stop_signals]() {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    // stop() does nothing before the accept loop runs; a signal that early waits for it.
    while (!g_stopping && !svr.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    g_stopping = true;
    svr.stop();
  });
  const bool ok = svr.listen_after_bind();
  g_stopping = true;
  if (stopper.joinable()) {
    // The server stopped on its own: wake the waiting thread with one of its signals.
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
  }
  std::cerr << "serve: stopped after " << service.requests() << " infer requests\n";
  return ok ? 0 : kExitFailure;
}

}  // namespace

void add_serve(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "serve a model over the Open Inference Protocol (KServe v2 REST): a suspect "
               "behind a label API, as verify --suspect http://... queries one");
  cmd->add_option("--model", a->model, "model file: a network or forest (HDF5) or an ONNX network")->required();
  Bounds port;
  port.lo = 0;
  port.hi = 65535;
  port.integer = true;
  port.note = "0: pick a free one and print it";
  bounded(cmd->add_option("--port", a->port, "TCP port (0: pick a free one and print it)")
              ->capture_default_str(),
          port);
  cmd->add_option("--host", a->host, "address to listen on")->capture_default_str();
  cmd->add_option("--name", a->name, "model name in the URLs (default: the file's name)");
  cmd->add_flag("--labels-only", a->labels_only,
                "answer labels (INT64 [n]) instead of logits (FP32 [n, classes])");
  at_least(cmd->add_option("--max-batch", a->max_batch, "most points one request may send")
               ->capture_default_str(),
           1);
  // Test-only fault injection: hidden from --help (group "").
  cmd->add_option("--fault", a->fault)
      ->check(CLI::IsMember({"drop", "slow", "wrong-count", "wrong-shape", "http-500"}))
      ->group("");
  at_least(cmd->add_option("--fault-every", a->fault_every)->group(""), 1);
  positive(cmd->add_option("--fault-sleep", a->fault_sleep)->group(""));
  cmd->footer(
      "Endpoints: GET /v2/health/live, /v2/health/ready, /v2/models/NAME (metadata),\n"
      "/v2/models/NAME/ready; POST /v2/models/NAME/infer with one FP32 tensor [n,C,H,W] of\n"
      "[0,1] pixels. Prints 'serving NAME at http://HOST:PORT/v2/models/NAME' (a JSON line\n"
      "with --json) once listening; stops cleanly on SIGINT or SIGTERM.");
  runners[cmd] = [&g, a]() { return run_serve(g, *a); };
}

}  // namespace ipg::cli
