// The subcommands of design.md that have not landed yet. Registering them keeps --help
// honest about the tool's shape; running one says it is not available.
#include "tools/ipguard/cli.h"

namespace ipg::cli {

void add_planned(CLI::App& app) {
  const char* planned[][2] = {
      {"zoo", "build the default zoo of target, positive and negative suspects"},
  };
  for (const auto& p : planned) {
    CLI::App* sub = app.add_subcommand(p[0], std::string(p[1]) + " [not available yet]");
    sub->allow_extras();
  }
}

}  // namespace ipg::cli
