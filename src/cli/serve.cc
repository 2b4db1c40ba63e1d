// kura serve: wires config, logging, store, seal, vault and the HTTPS server
// together and runs until SIGTERM/SIGINT.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <system_error>

#include "audit/export.h"
#include "auth/kerberos.h"
#include "cli/serve_config.h"
#include "cli/serve_seal.h"
#include "cli/serve_stores.h"
#include "cli/server_commands.h"
#include "core/log.h"
#include "core/secret.h"
#include "crypto/dev_tls.h"
#include "crypto/hash.h"
#include "crypto/seal.h"
#include "http/server.h"
#include "ops/checkpointer.h"
#include "ops/lease_keeper.h"
#include "ops/notifier.h"
#include "ops/reencryptor.h"
#include "ops/retention.h"
#include "ops/storage_monitor.h"
#include "store/key_store.h"
#include "store/store.h"
#include "vault/vault.h"

namespace kura::cli {
namespace {

// KURA_TOKEN of an existing dev.env, so a restarted dev server keeps the
// root token scripts and shells already use; "" if there is none.
std::string ReadDevEnvToken(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("KURA_TOKEN=")) return line.substr(std::strlen("KURA_TOKEN="));
  }
  return "";
}

// Writes dev.env atomically (temp file + rename) with mode 0600: it holds the
// root token.
Status WriteDevEnv(const std::string& path, const std::string& addr, const std::string& ca_file,
                   const std::string& token) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return UnavailableError("cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  std::string text = "KURA_ADDR=" + addr + "\nKURA_CACERT=" + ca_file + "\nKURA_TOKEN=" + token + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  std::fill(text.begin(), text.end(), '\0');
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return UnavailableError("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status EnsureDataDir(const std::string& dir) {
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir, ec);
  if (ec) return UnavailableError("cannot create data directory " + dir + ": " + ec.message());
  // Only the server's user may list or read the data directory.
  if (created) std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  return Status::Ok();
}

void PrintDevBanner(std::ostream& out, const std::string& url, const ServePlan& plan, const std::string& ca_file,
                    const std::string& token) {
  std::string dir = plan.data_dir;
  out << "\n"
      << "==> kura is running in DEVELOPMENT mode\n"
      << "\n"
      << "    Address:    " << url << "\n"
      << "    CA file:    " << (ca_file.empty() ? std::string("(TLS files from the config)") : ca_file) << "\n"
      << "    Root token: " << (token.empty() ? std::string("(revoked: sign in as staff)") : token) << "\n"
      << "    Data:       " << dir << "\n"
      << "\n"
      << "    Use the CLI from another shell:\n"
      << "        set -a; . " << plan.dev_env << "; set +a\n"
      << "        kura status\n"
      << "\n"
      << "WARNING: dev mode keeps the key that unseals the vault (" << plan.key_file << ")\n"
      << "WARNING: next to the data it protects and prints the root token. Anyone who can read\n"
      << "WARNING: " << dir << " can read every record. Never store real personal data this way.\n"
      << "\n"
      << std::flush;
}

// "config/sha256:<hex>" of the configuration file, or "config/dev-defaults".
std::string ConfigDigest(const std::string& config_file) {
  if (config_file.empty()) return "config/dev-defaults";
  std::ifstream in(config_file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return "config/sha256:" + HexEncode(crypto::Sha256(AsBytes(text.str())));
}

int Serve(Context* ctx, const ServeFlags& flags) {
  std::ostream& err = *ctx->err;
  auto fail = [&err](int code, const std::string& message) {
    err << "kura serve: " << message << "\n";
    return code;
  };

#ifdef KURA_BENCH_UNAUDITED
  // A build for measuring the audit log's cost: it keeps no audit log at all.
  const char* unaudited_ok = std::getenv("KURA_BENCH_UNAUDITED");
  if (unaudited_ok == nullptr || std::string(unaudited_ok) != "1") {
    return fail(kExitUsage, "this binary was built with the audit log compiled out, for benchmarks only; "
                            "set KURA_BENCH_UNAUDITED=1 to run it anyway");
  }
  log::Warn("BENCHMARK BUILD: the audit log is compiled out; never store real data with this binary");
#endif
  auto plan_or = BuildServePlan(flags);
  if (!plan_or.ok()) return fail(kExitUsage, plan_or.status().message());
  ServePlan plan = std::move(plan_or).value();
  Config& config = plan.config;

  // A core dump of this process would hold the KEK and every data key.
  if (!DisableCoreDumps()) log::Warn("could not disable core dumps; keys could end up in a core file");
  if (!log::SetLevel(config.log.level)) return fail(kExitUsage, "log.level: unknown level " + config.log.level);
  if (!log::OpenAccessLog(config.log.access_log)) {
    return fail(kExitError, "log.access_log: cannot open " + config.log.access_log);
  }

  if (Status s = EnsureDataDir(plan.data_dir); !s.ok()) return fail(kExitError, s.message());

  std::string ca_file;
  if (plan.dev_tls) {
    auto tls = crypto::EnsureDevTls(plan.tls_dir);
    if (!tls.ok()) return fail(kExitError, "cannot create dev TLS files in " + plan.tls_dir + ": " + tls.status().message());
    config.listener.tls_cert = tls->server_chain;
    config.listener.tls_key = tls->server_key;
    ca_file = std::filesystem::absolute(tls->ca_cert).lexically_normal().string();
  }

  auto store = OpenStore(config, plan);
  if (!store.ok()) return fail(kExitError, store.status().message());
  auto key_store = OpenKeyStore(config, plan);
  if (!key_store.ok()) return fail(kExitError, key_store.status().message());

  std::unique_ptr<crypto::Seal> seal = MakeConfiguredSeal(plan);

  // SIEM export follows the durable log from the store, never the request
  // path; the store outlives the exporters (stopped before the vault closes).
  store::Store* store_ptr = store->get();
  vault::Options vault_options;
  vault_options.store = std::move(store).value();
  vault_options.key_store = std::move(key_store).value();
  vault_options.seal = std::move(seal);
  vault_options.region = config.region;
  vault_options.keep_versions = config.records.keep_versions;
  vault_options.max_page_size = config.records.max_page_size;
  vault::IdentityOptions& identity = vault_options.identity;
  identity.argon2.memory_bytes = config.auth.password_hash_memory_kib * 1024;
  identity.argon2.iterations = config.auth.password_hash_iterations;
  identity.session_idle = config.auth.session_idle_timeout;
  identity.session_lifetime = config.auth.session_lifetime;
  identity.step_up_window = config.auth.step_up_window;
  identity.totp_issuer = config.auth.totp_issuer;
  if (config.kerberos.enabled) {
    auto acceptor = auth::KerberosAcceptor::Create({config.kerberos.keytab, config.kerberos.service_principal});
    if (!acceptor.ok()) return fail(kExitUsage, "kerberos: " + acceptor.status().message());
    identity.kerberos = std::move(acceptor).value();
    identity.kerberos_map_realms = config.kerberos.map_realms;
  }
  auto vault_or = vault::Vault::Open(std::move(vault_options));
  if (!vault_or.ok()) return fail(kExitError, "cannot open the vault: " + vault_or.status().message());
  // Declared before the server so it outlives it.
  std::unique_ptr<vault::Vault> vault = std::move(vault_or).value();

  std::vector<std::unique_ptr<audit::Exporter>> exporters;
  const std::string export_state = (std::filesystem::path(plan.data_dir) / "audit-export").string();
  for (const auto& sink : config.audit.sinks) {
    auto exporter = audit::Exporter::Create(store_ptr, audit::SinkConfigFrom(sink), export_state);
    if (!exporter.ok()) return fail(kExitUsage, "audit.sink " + sink.name + ": " + exporter.status().message());
    // Started only on the node holding the background lease (below).
    exporters.push_back(std::move(exporter).value());
  }

  std::string root_token;
  if (plan.dev) {
    auto token = vault->DevInitialize(ReadDevEnvToken(plan.dev_env));
    if (!token.ok()) return fail(kExitError, "cannot initialise the dev vault: " + token.status().message());
    root_token = std::move(token).value();
  } else {
    vault::SealStatus status = vault->GetSealStatus();
    if (!status.initialized) {
      log::Warn("the vault is not initialised: run `kura operator init` (shamir: add --shares N --threshold K)");
    } else if (SealUnsealsWithoutInput(config)) {
      if (Status s = vault->AutoUnseal(); !s.ok()) {
        return fail(kExitError, "cannot unseal with " + SealSourceText(plan) + ": " + s.message());
      }
      log::Info("unsealed with " + SealSourceText(plan));
    } else {
      log::Warn("the vault is sealed: run `kura operator unseal` with " +
                (config.seal.type == "passphrase" ? std::string("the passphrase")
                                                  : std::to_string(status.threshold) + " shares"));
    }
  }

  auto server_or = http::Server::Create(config, vault.get());
  if (!server_or.ok()) return fail(kExitError, "cannot start the HTTPS listener: " + server_or.status().message());
  std::unique_ptr<http::Server> server = std::move(server_or).value();

  if (plan.dev) {
    if (Status s = WriteDevEnv(plan.dev_env, server->url(), ca_file, root_token); !s.ok()) {
      return fail(kExitError, s.message());
    }
    PrintDevBanner(*ctx->out, server->url(), plan, ca_file, root_token);
  }
  std::fill(root_token.begin(), root_token.end(), '\0');
  log::Info("kura listening on " + server->url() + " (region " + config.region + ", site " + config.site + ")");

  // The start is evidence too: which configuration the server ran with (its
  // digest; the file may hold a DSN) from when.
  if (Status s = vault->AuditSystemEvent("server.start", ConfigDigest(flags.config_file), Status::Ok()); !s.ok()) {
    return fail(kExitError, "cannot write to the audit log: " + s.message());
  }
  ops::Checkpointer checkpointer(vault.get(), config.audit.checkpoint_interval);
  // Lockbox notifications to the tenants' webhooks (from the outbox the
  // vault fills with each access request).
  // Each delivery is signed with the tenant's webhook secret, which only the
  // vault can unwrap.
  ops::NotifierOptions notifier_options;
  notifier_options.signer = [v = vault.get()](const store::OutboxRow& row, std::int64_t timestamp) {
    return v->SignWebhookDelivery(row.tenant_id, std::to_string(row.id), timestamp, row.payload_json);
  };
  ops::Notifier notifier(store_ptr, std::move(notifier_options));
  // Crypto-shredding of records past their collection's retention.
  ops::RetentionOptions retention_options;
  retention_options.interval = config.records.retention_interval;
  ops::RetentionJob retention(vault.get(), retention_options);
  // Re-encryption of tenants whose data key was rotated (resumes from the
  // progress kept in the database).
  ops::ReencryptorOptions reencrypt_options;
  reencrypt_options.batch_size = config.keys.reencrypt_batch;
  reencrypt_options.load_percent = config.keys.reencrypt_load_percent;
  reencrypt_options.min_pause = std::chrono::milliseconds(config.keys.reencrypt_pause_ms);
  ops::Reencryptor reencryptor(vault.get(), reencrypt_options);
  // Checkpoints, SIEM export and notifications run on exactly one node of a cluster: the one
  // holding the lease "audit-background" in the database (on SQLite, this
  // node). They start when this node gets it and stop when it loses it.
  std::mutex jobs_mu;
  ops::LeaseKeeper lease(store_ptr, "audit-background", ops::LeaseKeeper::DefaultNodeId(config.site, plan.data_dir),
                         ops::LeaseKeeper::TtlFor(config.audit.checkpoint_interval), [&](bool run) {
                           std::lock_guard lock(jobs_mu);
                           if (run) {
                             checkpointer.Start();
                             notifier.Start();
                             retention.Start();
                             reencryptor.Start();
                             for (auto& exporter : exporters) exporter->Start();
                           } else {
                             checkpointer.Stop();
                             notifier.Stop();
                             retention.Stop();
                             reencryptor.Stop();
                             for (auto& exporter : exporters) exporter->Stop();
                           }
                         });
  ops::StorageMonitor storage_monitor(store_ptr, config.storage.engine, std::chrono::seconds(2));
  storage_monitor.Start();
  ops::SetHealthSources(&storage_monitor, &lease);
  lease.Start();

  Status run = server->Run();
  server.reset();
  log::FlushAccessLog();  // every request's line is out before "kura stopped"
  vault->AuditSystemEvent("server.stop", "", run).IgnoreError();
  // After the last request: the lease holder's final checkpoint covers every
  // entry; releasing the lease lets another node take the jobs over at once.
  lease.Stop();
  ops::SetHealthSources(nullptr, nullptr);
  storage_monitor.Stop();
  if (!run.ok()) return fail(kExitError, run.message());
  log::Info("kura stopped");
  return kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App* app, Context* ctx) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app->add_subcommand("serve", "Run the kura server");
  cmd->add_flag("--dev", flags->dev,
                "Development mode: creates TLS files, a key file and a database in the data directory, "
                "initialises and unseals itself, writes DATA/dev.env. Not for real data");
  cmd->add_option("--config", flags->config_file, "TOML configuration file (with --dev it overrides the dev defaults)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--data", flags->data_dir, "Data directory (storage.path); --dev default ./kura-data");
  cmd->add_option("--listen", flags->listen, "HOST:PORT to listen on (listener.address); port 0 picks a free one");
  SetAction(cmd, ctx, [ctx, flags] { return Serve(ctx, *flags); });
}

}  // namespace kura::cli
