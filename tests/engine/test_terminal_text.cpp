// terminal_text (engine/terminal_text.h): control characters escaped, the rest unchanged.
#include <gtest/gtest.h>

#include <string>

#include "engine/terminal_text.h"

namespace ipg {
namespace {

TEST(TerminalText, ControlCharactersAreEscapedAndTheRestKept) {
  EXPECT_EQ(terminal_text("x\x1b[31my"), "x\\x1b[31my");
  EXPECT_EQ(terminal_text(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(terminal_text("over\rwrite\x07\x7f"), "over\\x0dwrite\\x07\\x7f");
  // What messages use themselves, a backslash, and UTF-8 pass unchanged.
  const std::string kept = "line one\n\tline two C:\\path caf\xc3\xa9 \xe6\x97\xa5";
  EXPECT_EQ(terminal_text(kept), kept);
  EXPECT_EQ(terminal_text(""), "");
}

}  // namespace
}  // namespace ipg
