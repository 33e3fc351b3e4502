// A number as people write it (printf's %g, six significant digits: 0.1, 3, 1e-05,
// 1e+06), for messages, chart labels and the names of settings. One definition, so a
// value prints the same in an error, a table and a file name.
#pragma once

#include <cstdio>
#include <string>

namespace ipg {

inline std::string number_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace ipg
