// kura operator migrate-seal --config OLD.toml --to-config NEW.toml
//     [--shares N --threshold K]
//
// Offline, on a stopped server (every node, with PostgreSQL): opens the data
// and key stores of OLD, unseals with OLD's seal (its key file, token or
// passphrase file; or shares / the passphrase typed here), then rewraps every
// KEK version under the seal of NEW's [seal] section in one key-store
// transaction (docs/operations/keys.md). Records are not touched.
#include <memory>
#include <string>

#include "cli/input.h"
#include "cli/serve_config.h"
#include "cli/serve_seal.h"
#include "cli/serve_stores.h"
#include "cli/server_commands.h"
#include "crypto/seal.h"
#include "vault/vault.h"

namespace kura::cli {
namespace {

struct MigrateArgs {
  std::string from_config;
  std::string to_config;
  int shares = 0;
  int threshold = 0;
};

int MigrateSeal(Context* ctx, const MigrateArgs& args) {
  std::ostream& err = *ctx->err;
  std::ostream& out = *ctx->out;
  auto fail = [&err](int code, const std::string& message) {
    err << "kura operator migrate-seal: " << message << "\n";
    return code;
  };
  auto from = BuildServePlan({.config_file = args.from_config});
  if (!from.ok()) return fail(kExitUsage, "--config: " + from.status().message());
  auto to = BuildServePlan({.config_file = args.to_config});
  if (!to.ok()) return fail(kExitUsage, "--to-config: " + to.status().message());
  const Config& fc = from->config;
  const Config& tc = to->config;
  // NEW is the configuration the server starts with afterwards: it must
  // reach the same data and keys, or the migration would strand them.
  if (fc.storage.engine != tc.storage.engine || fc.storage.path != tc.storage.path ||
      fc.storage.dsn != tc.storage.dsn || fc.storage.key_store_path != tc.storage.key_store_path) {
    return fail(kExitUsage, "--to-config must name the same storage ([storage]) as --config; only [seal] may differ");
  }
  const std::string to_type = tc.seal.type;
  if (to_type == "shamir") {
    if (args.shares < 1 || args.threshold < 1) {
      return fail(kExitUsage, "the shamir seal needs --shares N and --threshold K");
    }
  } else if (args.shares != 0 || args.threshold != 0) {
    return fail(kExitUsage, "--shares and --threshold are only for the shamir seal");
  }
  if (to_type == "passphrase" && !SealUnsealsWithoutInput(tc)) {
    return fail(kExitUsage, "the new passphrase seal needs seal.passphrase_file or seal.passphrase_env in "
                            "--to-config, so the new passphrase is read from there and checked");
  }
  if (fc.seal.type == to_type && to_type == "keyfile" && from->key_file == to->key_file) {
    return fail(kExitUsage, "--to-config names the same key file: nothing to migrate");
  }

  auto data = OpenStore(fc, *from);
  if (!data.ok()) return fail(kExitError, data.status().message());
  auto keys = OpenKeyStore(fc, *from);
  if (!keys.ok()) return fail(kExitError, keys.status().message());
  vault::Options options;
  options.store = std::move(data).value();
  options.key_store = std::move(keys).value();
  options.seal = MakeConfiguredSeal(*from);
  options.region = fc.region;
  auto opened = vault::Vault::Open(std::move(options));
  if (!opened.ok()) return fail(kExitError, opened.status().message());
  vault::Vault& vault = **opened;
  if (!vault.GetSealStatus().initialized) return fail(kExitError, "the vault is not initialised");

  // The old seal proves itself first: nothing changes unless it unseals.
  if (SealUnsealsWithoutInput(fc)) {
    if (Status s = vault.AutoUnseal(); !s.ok()) {
      return fail(kExitError, "cannot unseal with " + SealSourceText(*from) + ": " + s.message());
    }
  } else {
    const bool passphrase = fc.seal.type == "passphrase";
    while (vault.IsSealed()) {
      vault::SealStatus st = vault.GetSealStatus();
      std::string prompt = passphrase ? "Current passphrase: "
                                      : "Unseal share " + std::to_string(st.progress + 1) + "/" +
                                            std::to_string(st.threshold) + ": ";
      auto input = passphrase ? ReadPassword(prompt, *ctx->in, err) : ReadSecretLine(prompt, *ctx->in, err);
      if (!input.ok()) return fail(kExitError, input.status().message());
      auto reply = vault.Unseal(vault::RequestContext{}, {{"share", *input}});
      WipeSecret(&*input);
      if (!reply.ok()) return fail(kExitError, reply.status().message());
    }
  }

  crypto::SealInitOptions init;
  init.shares = args.shares;
  init.threshold = args.threshold;
  auto result = vault.MigrateSeal(MakeConfiguredSeal(*to), init);
  if (!result.ok()) return fail(kExitError, result.status().message());
  out << "The key store's KEK versions are now wrapped by the " << to_type << " seal (" << SealSourceText(*to)
      << ").\n";
  const auto& shares = result->body["shares"];
  if (shares.is_array() && !shares.empty()) {
    out << "\nUnseal shares (" << args.threshold << " of " << args.shares
        << " needed). They are shown once and never stored:\n";
    for (const auto& s : shares) out << "  " << s.get<std::string>() << "\n";
  }
  out << "\nStart the server with " << args.to_config << ". The old seal no longer unseals this vault; "
      << "destroy its key material, and consider `kura operator rotate` so that old copies of the key store "
      << "(which the old seal still opens) stop mattering.\n";
  return kExitOk;
}

}  // namespace

void AddOperatorMigrateSealCommand(CLI::App* operator_group, Context* ctx) {
  auto args = std::make_shared<MigrateArgs>();
  CLI::App* cmd = operator_group->add_subcommand(
      "migrate-seal", "Offline, server stopped: rewrap the KEK versions under another seal (records untouched)");
  cmd->add_option("--config", args->from_config, "The configuration the server runs with now (its seal unseals)")
      ->required();
  cmd->add_option("--to-config", args->to_config,
                  "The configuration to run with afterwards: same [storage], the new [seal]")
      ->required();
  cmd->add_option("--shares", args->shares, "New shamir seal: number of shares");
  cmd->add_option("--threshold", args->threshold, "New shamir seal: shares needed to unseal");
  SetAction(cmd, ctx, [ctx, args]() -> int { return MigrateSeal(ctx, *args); });
}

}  // namespace kura::cli
