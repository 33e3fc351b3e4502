// A message fit for a terminal: the control characters a file or folder name may carry
// (ESC starting a colour or cursor sequence, a carriage return that hides the start of the
// line, a bell) are shown as \xNN instead of acting on the terminal. Newlines and tabs,
// which messages use themselves, and all other bytes, UTF-8 included, pass unchanged. For
// what ipguard writes to stderr; JSON output escapes them itself.
#pragma once

#include <string>

namespace ipg {

inline std::string terminal_text(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace ipg
