// `verify --suspect-cmd`: points to a temporary .npy, CMD through /bin/sh, labels from its
// stdout (tools/ipguard/suspect_command.h).
#include "tools/ipguard/suspect_command.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ipg::cli {

namespace {

constexpr size_t kMaxOutputBytes = size_t{64} << 20;

// Removes the temporary folder and its file however run_suspect_command leaves.
struct TempDir {
  std::string dir, file;
  ~TempDir() {
    if (!file.empty()) ::unlink(file.c_str());
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
};

std::string excerpt(const std::string& s) {
  std::string e = s.substr(0, 40);
  for (char& c : e)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return "'" + e + (s.size() > 40 ? "...'" : "'");
}

int32_t label_value(const std::string& token, size_t index) {
  const std::string where = "label " + std::to_string(index + 1) + " ";
  if (token.empty() || token.find_first_not_of("0123456789") != std::string::npos)
    throw SuspectCommandError(where + excerpt(token) + " is not an integer >= 0");
  if (token.size() > 10 || std::stoll(token) > 2147483647LL)
    throw SuspectCommandError(where + excerpt(token) + " is too large");
  return int32_t(std::stoll(token));
}

}  // namespace

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

std::vector<int32_t> parse_label_output(const std::string& text, int64_t n) {
  std::vector<int32_t> labels;
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start != std::string::npos && text[start] == '[') {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array())
      throw SuspectCommandError("the output starts with '[' but is not a JSON array");
    for (size_t i = 0; i < j.size(); ++i) {
      if (!j[i].is_number_integer() || j[i].get<int64_t>() < 0 ||
          j[i].get<int64_t>() > 2147483647LL)
        throw SuspectCommandError("label " + std::to_string(i + 1) + " " + excerpt(j[i].dump()) +
                                  " is not an integer >= 0");
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
  return labels;
}

std::vector<int32_t> run_suspect_command(const std::string& cmd, const Tensor& points,
                                         QueryLog& log) {
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
  tmp.file = tmp.dir + "/points.npy";
  write_npy(tmp.file, points);

  int out_pipe[2];
  if (::pipe(out_pipe) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);  // nothing buffered is written twice by the child
  rec.sent = utc_timestamp_ms();
  log.points_sent += n;
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::setenv("IPG_POINTS", tmp.file.c_str(), 1);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  std::string output;
  bool too_long = false;
  char buf[65536];
  for (;;) {
    const ssize_t got = ::read(out_pipe[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (output.size() + size_t(got) > kMaxOutputBytes) {
      too_long = true;  // keep draining so the child is not stuck on a full pipe
      continue;
    }
    output.append(buf, size_t(got));
  }
  ::close(out_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  rec.answered = utc_timestamp_ms();
  try {
    if (WIFSIGNALED(status))
      throw SuspectCommandError("the command was killed by signal " +
                                std::to_string(WTERMSIG(status)));
    if (WEXITSTATUS(status) != 0)
      throw SuspectCommandError("the command exited with status " +
                                std::to_string(WEXITSTATUS(status)));
    if (too_long)
      throw SuspectCommandError("the command printed more than " +
                                std::to_string(kMaxOutputBytes) + " bytes");
    rec.labels = parse_label_output(output, n);
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
