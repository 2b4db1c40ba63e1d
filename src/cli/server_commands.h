// Commands that run inside the server process or use its libraries:
// `kura serve` (serve.cc), `kura operator tls` (tls_command.cc) and the
// others below.
#ifndef KURA_CLI_SERVER_COMMANDS_H_
#define KURA_CLI_SERVER_COMMANDS_H_

#include "cli/app.h"

namespace kura::cli {

void AddServeCommand(CLI::App* app, Context* ctx);
// `kura audit verify|proof|tail|pubkey` (audit_commands.cc): they need the
// audit library and, offline, the store.
void AddAuditCommands(CLI::App* app, Context* ctx);
// Adds `tls` to the `operator` group.
void AddOperatorTlsCommand(CLI::App* operator_group, Context* ctx);
// Adds `migrate-seal` (seal_migrate_command.cc, offline) to the `operator` group.
void AddOperatorMigrateSealCommand(CLI::App* operator_group, Context* ctx);

}  // namespace kura::cli

#endif  // KURA_CLI_SERVER_COMMANDS_H_
