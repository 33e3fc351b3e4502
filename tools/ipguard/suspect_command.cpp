// `verify --suspect-cmd`: points to a temporary .npy, CMD through /bin/sh, labels from its
// stdout (tools/ipguard/suspect_command.h).
#include "tools/ipguard/suspect_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/temp_files.h"

namespace ipg::cli {

namespace {

// Removes the temporary folder and its file however run_suspect_command leaves; while
// they exist, a stopping signal removes them too (engine/temp_files.h: the points are the
// fingerprint's, and secret).
struct TempDir {
  std::string dir, file;
  std::optional<TempFileGuard> dir_guard, file_guard;
  ~TempDir() { remove(); }
  void remove() {
    if (!file.empty()) ::unlink(file.c_str());
    if (!dir.empty()) ::rmdir(dir.c_str());
    file.clear();
    dir.clear();
  }
};

std::string excerpt(const std::string& s) {
  std::string e = s.substr(0, 40);
  for (char& c : e)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return "'" + e + (s.size() > 40 ? "...'" : "'");
}

// Points are numbered from 0 in every message, as the rows of IPG_POINTS.
int32_t label_value(const std::string& token, size_t index) {
  const std::string where = "the label of point " + std::to_string(index) + " ";
  if (token.empty() || token.find_first_not_of("0123456789") != std::string::npos)
    throw SuspectCommandError(where + excerpt(token) + " is not an integer >= 0");
  if (token.size() > 10 || std::stoll(token) > 2147483647LL)
    throw SuspectCommandError(where + excerpt(token) + " is too large");
  return int32_t(std::stoll(token));
}

std::string seconds_text(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// The signals that would end ipguard while CMD runs. They are blocked outside ppoll, and
// their handler only notes which came: the wait loop then kills CMD's process group,
// removes the points' file and lets the signal end ipguard as it would have. (CMD is in
// its own group so that a timeout can kill all of it; a terminal's Ctrl-C no longer
// reaches it, so ipguard passes the stop on.)
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
volatile sig_atomic_t g_stop_signal = 0;
extern "C" void note_stop_signal(int sig) { g_stop_signal = sig; }

class StopSignals {
 public:
  StopSignals() {
    sigset_t block;
    sigemptyset(&block);
    for (int sig : kStopSignals) sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &saved_mask_);
    struct sigaction sa {};
    sa.sa_handler = note_stop_signal;
    sigemptyset(&sa.sa_mask);
    g_stop_signal = 0;
    for (size_t i = 0; i < std::size(kStopSignals); ++i)
      sigaction(kStopSignals[i], &sa, &saved_[i]);
  }
  ~StopSignals() { restore(); }
  // In the child before exec, and in the parent once CMD is over: the dispositions and the
  // mask as they were (a signal still pending is then delivered).
  void restore() {
    if (restored_) return;
    restored_ = true;
    for (size_t i = 0; i < std::size(kStopSignals); ++i)
      sigaction(kStopSignals[i], &saved_[i], nullptr);
    sigprocmask(SIG_SETMASK, &saved_mask_, nullptr);
  }
  const sigset_t* waiting_mask() const { return &saved_mask_; }

 private:
  sigset_t saved_mask_;
  struct sigaction saved_[std::size(kStopSignals)];
  bool restored_ = false;
};

// How CMD's run ended, as far as the reading loop is concerned.
struct ChildRun {
  std::string output;
  int status = 0;
  bool timed_out = false, too_long = false;
  int stop_signal = 0;  // a stop signal ipguard took meanwhile (CMD killed)
  std::string poll_error;  // waiting itself failed (CMD killed)
};

// Reads CMD's stdout until it closes, the deadline passes, the output exceeds `max_bytes`
// or a stop signal comes; in the last three cases kills CMD's process group. Then reaps
// CMD.
ChildRun read_child(pid_t pid, int fd, double timeout_s, size_t max_bytes,
                    const StopSignals& signals) {
  ChildRun run;
  using Clock = std::chrono::steady_clock;
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(std::min(timeout_s, 1e9)));
  char buf[65536];
  bool kill_group = false;
  for (;;) {
    if (g_stop_signal) {
      run.stop_signal = g_stop_signal;
      kill_group = true;
      break;
    }
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      run.timed_out = kill_group = true;
      break;
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    const timespec ts{time_t(ns / 1000000000), long(ns % 1000000000)};
    pollfd p{fd, POLLIN, 0};
    const int ready = ::ppoll(&p, 1, &ts, signals.waiting_mask());
    if (ready < 0 && errno != EINTR) {
      run.poll_error = std::string("poll: ") + std::strerror(errno);
      kill_group = true;
      break;
    }
    if (ready <= 0) continue;
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (run.output.size() + size_t(got) > max_bytes) {
      run.too_long = kill_group = true;
      break;
    }
    run.output.append(buf, size_t(got));
  }
  if (kill_group) ::kill(-pid, SIGKILL);
  while (::waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {
  }
  return run;
}

}  // namespace

size_t max_label_output_bytes(int64_t n) { return (size_t{1} << 20) + size_t(n) * 64; }

void write_npy(const std::string& path, const Tensor& t) {
  std::string shape;
  for (int64_t d : t.shape()) shape += std::to_string(d) + ", ";
  if (t.ndim() > 1) shape.resize(shape.size() - 2);  // "(n, C, H, W)"; a 1-d shape keeps "n, "
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, '\n' last.
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  const uint16_t len = uint16_t(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.put(char(len & 0xff));
  f.put(char(len >> 8));
  f << header;
  const std::vector<float> v = t.to_vector();
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  f.close();
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::vector<int32_t> parse_label_output(const std::string& text, int64_t n, int64_t classes,
                                        const std::string& classes_note) {
  std::vector<int32_t> labels;
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start != std::string::npos && text[start] == '[') {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array())
      throw SuspectCommandError("the output starts with '[' but is not a JSON array");
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_number_integer() || j[i].get<int64_t>() < 0 ||
          j[i].get<int64_t>() > 2147483647LL)
        throw SuspectCommandError("the label of point " + std::to_string(i) + " " +
                                  excerpt(j[i].dump()) + " is not an integer >= 0");
      labels.push_back(j[i].get<int32_t>());
    }
  } else {
    std::istringstream in(text);
    std::string token;
    while (in >> token) {
      labels.push_back(label_value(token, labels.size()));
      if (int64_t(labels.size()) > n) break;
    }
  }
  if (int64_t(labels.size()) != n)
    throw SuspectCommandError("the command printed " +
                              (int64_t(labels.size()) > n ? "more than " + std::to_string(n)
                                                          : std::to_string(labels.size())) +
                              " labels for " + std::to_string(n) + " points");
  // As a label API's answer is checked (models/remote_classifier.cpp): a label that is no
  // class would silently count as a mismatch.
  for (size_t i = 0; classes > 0 && i < labels.size(); ++i)
    if (labels[i] >= classes)
      throw SuspectCommandError("the command labels point " + std::to_string(i) + " " +
                                std::to_string(labels[i]) + ", not a class of 0.." +
                                std::to_string(classes - 1) +
                                (classes_note.empty() ? "" : " " + classes_note));
  return labels;
}

std::vector<int32_t> run_suspect_command(const std::string& cmd, const Tensor& points,
                                         QueryLog& log, const SuspectCommandOptions& options) {
  const int64_t n = points.dim(0);
  const int64_t offset = int64_t(log.answers.size());
  log.answers.resize(size_t(offset + n), -1);
  QueryRecord rec;
  rec.first = offset;
  rec.count = n;

  TempDir tmp;
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/ipguard-points-XXXXXX";
  if (!::mkdtemp(pattern.data()))
    throw std::runtime_error("cannot create a temporary folder " + pattern + ": " +
                             std::strerror(errno));
  tmp.dir = pattern;
  tmp.dir_guard.emplace(tmp.dir);
  tmp.file = tmp.dir + "/points.npy";
  tmp.file_guard.emplace(tmp.file);
  write_npy(tmp.file, points);

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);  // nothing buffered is written twice by the child
  rec.sent = utc_timestamp_ms();
  log.points_sent += n;
  StopSignals signals;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    signals.restore();
    ::dup2(out_pipe[1], STDOUT_FILENO);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::setenv("IPG_POINTS", tmp.file.c_str(), 1);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // as the child does: whichever runs first, the group exists now
  ::close(out_pipe[1]);
  const ChildRun run =
      read_child(pid, out_pipe[0], options.timeout_s, max_label_output_bytes(n), signals);
  ::close(out_pipe[0]);
  rec.answered = utc_timestamp_ms();
  signals.restore();
  if (run.stop_signal) {  // ipguard was asked to stop: CMD is gone; clean up, then stop
    tmp.remove();
    ::raise(run.stop_signal);  // as it would have acted on ipguard without CMD
    throw std::runtime_error("--suspect-cmd: stopped by signal " + std::to_string(run.stop_signal));
  }
  if (!run.poll_error.empty()) throw std::runtime_error(run.poll_error);
  try {
    if (run.timed_out)
      throw SuspectCommandError("the command did not finish within " +
                                seconds_text(options.timeout_s) +
                                " s (--timeout): it was killed, with its process group");
    if (run.too_long)
      throw SuspectCommandError("the command printed more than " +
                                std::to_string(max_label_output_bytes(n)) + " bytes for " +
                                std::to_string(n) + " labels: it was killed, with its process group");
    if (WIFSIGNALED(run.status))
      throw SuspectCommandError("the command was killed by signal " +
                                std::to_string(WTERMSIG(run.status)));
    if (WEXITSTATUS(run.status) != 0)
      throw SuspectCommandError("the command exited with status " +
                                std::to_string(WEXITSTATUS(run.status)));
    rec.labels = parse_label_output(run.output, n, options.classes, options.classes_note);
    rec.ok = true;
  } catch (const SuspectCommandError& e) {
    rec.error = e.what();
    log.queries.push_back(rec);
    throw SuspectCommandError("--suspect-cmd: " + rec.error);
  }
  rec.output_datatype = "labels";
  rec.output_shape = {n};
  for (int64_t i = 0; i < n; ++i) log.answers[size_t(offset + i)] = rec.labels[size_t(i)];
  log.queries.push_back(rec);
  return rec.labels;
}

}  // namespace ipg::cli
