// kura operator tls --out DIR [--name N]...
#include <memory>
#include <vector>

#include "cli/server_commands.h"
#include "crypto/dev_tls.h"

namespace kura::cli {

void AddOperatorTlsCommand(CLI::App* operator_group, Context* ctx) {
  struct Args {
    std::string out;
    std::vector<std::string> names;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = operator_group->add_subcommand(
      "tls", "Create a development CA, intermediate and server certificate (reused if present)");
  cmd->add_option("--out", args->out, "Directory for ca.pem, server-chain.pem and server.key")->required();
  cmd->add_option("--name", args->names, "Extra DNS name or IP address for the server certificate (repeatable)");
  SetAction(cmd, ctx, [ctx, args]() -> int {
    auto paths = crypto::EnsureDevTls(args->out, args->names);
    if (!paths.ok()) {
      *ctx->err << "kura: cannot create TLS files in " << args->out << ": " << paths.status().message() << "\n";
      return kExitError;
    }
    std::ostream& out = *ctx->out;
    out << "CA certificate (trust this):   " << paths->ca_cert << "\n"
        << "Server chain (leaf + inter.):  " << paths->server_chain << "\n"
        << "Server key (mode 0600):        " << paths->server_key << "\n"
        << "\nThese are development certificates: use your own PKI in production.\n";
    return kExitOk;
  });
}

}  // namespace kura::cli
