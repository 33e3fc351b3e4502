// Exceptions the engine throws for caller mistakes. Messages name the op and the
// offending shapes or devices, e.g. "add: shapes [2, 3] and [4, 3] do not broadcast".
#pragma once

#include <stdexcept>
#include <string>

namespace ipg {

struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct DeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ipg
