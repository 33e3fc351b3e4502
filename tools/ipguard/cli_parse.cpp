// Small parsers shared by the subcommands' options: lists (experiment, zoo, postprocess)
// and the checks of option values made while CLI11 parses (cli.h, "Checks of option
// values"). The checks throw UsageError themselves: a message CLI11 builds (its
// ValidationError) always starts "--name: " and, for its Range, prints both bounds in full.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "engine/device.h"
#include "engine/number_text.h"
#include "models/network.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

double parse_number(const std::string& text, const std::string& what) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    throw std::invalid_argument(what + ": '" + text + "' is not a number");
  return v;
}

namespace {

std::string describe(const Bounds& b) {
  const bool has_lo = std::isfinite(b.lo), has_hi = std::isfinite(b.hi);
  std::string s;
  if (has_lo && has_hi && !b.lo_open && !b.hi_open)
    s = "between " + number_text(b.lo) + " and " + number_text(b.hi);
  else if (has_lo && has_hi)
    s = std::string("in ") + (b.lo_open ? "(" : "[") + number_text(b.lo) + ", " +
        number_text(b.hi) + (b.hi_open ? ")" : "]");
  else if (has_lo && b.lo_open)
    s = b.lo == 0 ? "positive" : "greater than " + number_text(b.lo);
  else if (has_lo)
    s = "at least " + number_text(b.lo);
  else if (has_hi)
    s = (b.hi_open ? "less than " : "at most ") + number_text(b.hi);
  else
    s = "a finite number";
  if (!b.note.empty()) s += " (" + b.note + ")";
  return s;
}

// A validator that throws UsageError; CLI11 runs it on the option's text before converting.
CLI::Validator throwing(std::function<std::string(const std::string&)> error) {
  return CLI::Validator(
      [error](std::string& text) -> std::string {
        const std::string message = error(text);
        if (!message.empty()) throw UsageError(message);
        return "";
      },
      "");
}

// The dataset formats load_dataset (models/data/dataset.cpp) dispatches on: keep in step.
const char* const kDataFormats =
    "fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, h5:FILE";

}  // namespace

std::string bounds_error(const std::string& name, const std::string& text, const Bounds& b) {
  double v = 0;
  try {
    v = parse_number(text, name);
  } catch (const std::invalid_argument&) {
    return name + " must be a number, not '" + text + "'";
  }
  // The value as given, cut short: the message stays one line whatever was typed.
  const std::string shown = text.size() > 24 ? text.substr(0, 24) + "..." : text;
  if (b.integer && std::isfinite(v) && v != std::floor(v))
    return name + " must be a whole number, not " + shown;
  if (b.integer && std::isfinite(v)) {
    // CLI11 reads whole numbers as digits only ("1e6" was its bare "Could not convert"),
    // and strtoull saturated a seed of 10^23 at 2^64 - 1 without a word.
    if (text.find_first_of(".eExX") != std::string::npos)
      return name + " must be a whole number written in digits, not " + shown;
    errno = 0;
    char* end = nullptr;
    if (b.u64)
      (void)std::strtoull(text.c_str(), &end, 10);
    else
      (void)std::strtoll(text.c_str(), &end, 10);
    if (errno == ERANGE)
      return name + " must be at most " + (b.u64 ? "18446744073709551615" : "9223372036854775807") +
             ", not " + shown;
  }
  const bool ok =
      std::isfinite(v) && (b.lo_open ? v > b.lo : v >= b.lo) && (b.hi_open ? v < b.hi : v <= b.hi);
  if (ok) return "";
  return name + " must be " + describe(b) + ", not " + shown;
}

// The extraction options' bounds, shared by the CLI and the Python module (tools/python).
Bounds k_bounds() {
  Bounds b;
  b.lo = 0;
  return b;
}

Bounds unit_interval_bounds() {
  Bounds b;
  b.lo = 0;
  b.hi = 1;
  return b;
}

Bounds unit_step_bounds() {  // eps and alpha: a step within the [0, 1] pixel range
  Bounds b;
  b.lo = 0;
  b.lo_open = true;
  b.hi = 1;
  return b;
}

CLI::Option* bounded(CLI::Option* o, const Bounds& b) {
  const std::string name = o->get_name();
  return o->check(throwing([name, b](const std::string& t) { return bounds_error(name, t, b); }));
}

CLI::Option* at_least(CLI::Option* o, double min) {
  Bounds b;
  b.lo = min;
  b.integer = true;
  return bounded(o, b);
}

CLI::Option* positive(CLI::Option* o) {
  Bounds b;
  b.lo = 0;
  b.lo_open = true;
  return bounded(o, b);
}

CLI::Option* each_number(CLI::Option* o, const Bounds& b) {
  const std::string name = o->get_name();
  return o->check(throwing([name, b](const std::string& t) -> std::string {
    const std::vector<std::string> items = split_list(t);
    if (items.empty()) return name + " needs at least one number";
    for (const std::string& item : items) {
      const std::string e = bounds_error(name, item, b);
      if (!e.empty()) return e + (items.size() > 1 ? " (in the list " + t + ")" : "");
    }
    return "";
  }));
}

CLI::Option* data_spec(CLI::Option* o) {
  const std::string flag = o->get_name();
  return o->check(throwing([flag](const std::string& spec) -> std::string {
    const size_t colon = spec.find(':');
    const std::string name = spec.substr(0, colon);
    const bool has_path = colon != std::string::npos && colon + 1 < spec.size();
    if (name == "fashion-mnist") return "";
    if (name == "mnist" || name == "cifar10" || name == "cifar100" || name == "h5")
      return has_path ? ""
                      : flag + " " + spec + ": give the " + (name == "h5" ? "file" : "folder") +
                            " as " + name + (name == "h5" ? ":FILE" : ":DIR");
    return flag + " " + spec + ": unknown dataset (" + kDataFormats + ")";
  }));
}

CLI::Option* device_spec(CLI::Option* o) {
  const std::string flag = o->get_name();
  return o->check(throwing([flag](const std::string& text) -> std::string {
    if (text == "auto") return "";
    try {
      Device::parse(text);
    } catch (const std::invalid_argument&) {
      return flag + " " + text + ": unknown device (auto, cpu, cuda or cuda:N)";
    }
    return "";
  }));
}

void check_architecture(const std::string& flag, const std::string& arch) {
  std::vector<std::string> known = network_names();
  known.push_back("rf");
  if (std::find(known.begin(), known.end(), arch) != known.end()) return;
  std::string list;
  for (const std::string& n : known) list += (list.empty() ? "" : ", ") + n;
  const std::string shown = arch.size() > 24 ? arch.substr(0, 24) + "..." : arch;
  throw UsageError(flag + ": unknown architecture '" + shown + "' (" + list + ")");
}

std::string counted(long long n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

void refuse_given(const CLI::App* cmd, const std::vector<std::string>& names,
                  const std::string& why) {
  for (const std::string& n : names)
    if (cmd->count(n) > 0) throw UsageError(n + " does not apply " + why + "; leave it out");
}

}  // namespace ipg::cli
