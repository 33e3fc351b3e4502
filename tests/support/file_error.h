// The message of the FileError a call throws, for tests of every bad-file path
// (tests/engine/test_hdf5.cpp, test_integrity.cpp), and a check that it names a part.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "engine/hdf5.h"

namespace ipg::testing {

// The message of the FileError `fn` throws; fails the test when it throws none.
template <typename Fn>
std::string file_error(Fn&& fn) {
  try {
    fn();
  } catch (const FileError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a FileError";
  return "";
}

}  // namespace ipg::testing

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)
