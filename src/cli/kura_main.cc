// The `kura` binary's command tree: the server (`serve`), the offline
// operator and audit commands, and the client commands that talk to a server
// over HTTPS.
#include "cli/kura_main.h"

#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/server_commands.h"

namespace kura::cli {

int KuraMain(int argc, char** argv) {
  CLI::App app{"", "kura"};
  Context ctx;
  ConfigureRootApp(&app);
  AddServeCommand(&app, &ctx);
  CLI::App* operator_group = AddClientCommands(&app, &ctx);
  AddOperatorTlsCommand(operator_group, &ctx);
  AddOperatorMigrateSealCommand(operator_group, &ctx);
  AddAuditCommands(&app, &ctx);
  return Run(&app, &ctx, std::vector<std::string>(argv + 1, argv + argc));
}

}  // namespace kura::cli
