// The `kura` binary: one CLI11 app with the server (`serve`) and the client
// commands that talk to it over HTTPS.
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/server_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"", "kura"};
  kura::cli::Context ctx;
  kura::cli::ConfigureRootApp(&app);
  kura::cli::AddServeCommand(&app, &ctx);
  CLI::App* operator_group = kura::cli::AddClientCommands(&app, &ctx);
  kura::cli::AddOperatorTlsCommand(operator_group, &ctx);
  kura::cli::AddOperatorMigrateSealCommand(operator_group, &ctx);
  kura::cli::AddAuditCommands(&app, &ctx);
  return kura::cli::Run(&app, &ctx, std::vector<std::string>(argv + 1, argv + argc));
}
