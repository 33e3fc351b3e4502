// Whole files as strings, for tests that write, corrupt and read back small text files
// (manifests, JSON): no checks, a missing file reads as "".
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace ipg::testing {

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

}  // namespace ipg::testing
