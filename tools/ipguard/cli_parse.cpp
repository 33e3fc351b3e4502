// Small parsers shared by the subcommands' list options (experiment, zoo, postprocess).
#include <sstream>
#include <stdexcept>

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

}  // namespace ipg::cli
