#include "cli/serve_stores.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/log.h"

namespace kura::cli {
namespace {

Status UseDatabaseKerberos(const Config& config) {
  const auto& st = config.storage;
  if (st.engine != "postgres" || st.gss_keytab.empty()) return Status::Ok();
  // libpq (15) calls gss_init_sec_context with the default credential, and
  // MIT krb5 finds it through the environment: with an empty ccache it gets
  // initial tickets from the client keytab (KRB5_CLIENT_KTNAME) and again
  // whenever they expire, so a long-running node needs no kinit or cron job.
  // The ccache lives in this process's memory: no ticket lands in /tmp, and
  // another process's ccache (an operator's kinit) is never used by mistake.
  // PGGSSENCMODE: libpq would otherwise prefer GSSAPI encryption to TLS once
  // it holds credentials, skipping sslmode=verify-full (the DSN may not set
  // gssencmode; ValidateConfig refuses anything but disable).
  const std::pair<const char*, std::string> vars[] = {
      {"KRB5_CLIENT_KTNAME", "FILE:" + st.gss_keytab},
      {"KRB5CCNAME", "MEMORY:kura-pg"},
      {"PGGSSENCMODE", "disable"},
  };
  bool changed = false;
  for (const auto& [name, value] : vars) {
    const char* current = std::getenv(name);
    // Already set by an earlier call: no setenv, which could race with the
    // threads the first store started.
    if (current != nullptr && value == current) continue;
    if (::setenv(name, value.c_str(), 1) != 0) {
      return InternalError(std::string("cannot set ") + name + ": " + std::strerror(errno));
    }
    changed = true;
  }
  if (changed) log::Info("storage: PostgreSQL login with Kerberos (GSSAPI), client keytab " + st.gss_keytab);
  return Status::Ok();
}

}  // namespace

Result<store::PostgresOptions> PostgresOptionsOf(const Config& config) {
  KURA_RETURN_IF_ERROR(UseDatabaseKerberos(config));
  const auto& st = config.storage;
  store::PostgresOptions options;
  options.dsn = st.dsn;
  options.password_file = st.password_file;
  options.pool_size = st.pool_size;
  options.connect_timeout_s = static_cast<int>(st.connect_timeout.count());
  options.statement_timeout_ms = static_cast<int>(st.statement_timeout.count() * 1000);
  return options;
}

Result<std::unique_ptr<store::Store>> OpenStore(const Config& config, const ServePlan& plan) {
  if (config.storage.engine == "postgres") {
    KURA_ASSIGN_OR_RETURN(store::PostgresOptions options, PostgresOptionsOf(config));
    const auto& st = config.storage;
    auto store = store::OpenPostgresStore(options);
    if (!store.ok()) {
      std::string hint;
      // libpq's message says GSSAPI failed, not why: name the usual cause.
      if (!st.gss_keytab.empty() && store.status().message().find("GSSAPI") != std::string::npos) {
        hint = " (storage.gss_keytab " + st.gss_keytab +
               ": its principal must be one PostgreSQL's pg_hba.conf maps to the DSN's user)";
      }
      return Status(store.status().code(), "cannot open the PostgreSQL database: " + store.status().message() + hint);
    }
    std::string sites;
    if (st.primary) sites += ", primary site " + st.primary->site + " (" + st.primary->region + ")";
    if (st.replica) sites += ", replica site " + st.replica->site + " (" + st.replica->region + ")";
    log::Info("storage: PostgreSQL, pool of " + std::to_string(st.pool_size) + sites);
    return store;
  }
  store::SqliteOptions options;
  options.path = plan.db_path;
  options.record_cache_bytes = static_cast<std::size_t>(config.storage.record_cache_mib) << 20;
  // The server, and the offline tools that open it through here, change data:
  // one of them at a time.
  options.exclusive = true;
  auto store = store::OpenSqliteStore(options);
  if (!store.ok()) {
    return Status(store.status().code(), "cannot open the database " + plan.db_path + ": " + store.status().message());
  }
  log::Info("storage: SQLite " + plan.db_path + ", record cache " +
            (config.storage.record_cache_mib == 0 ? std::string("off")
                                                  : std::to_string(config.storage.record_cache_mib) + " MiB"));
  return store;
}

Result<std::unique_ptr<store::KeyStore>> OpenKeyStore(const Config& config, const ServePlan& plan) {
  if (config.storage.engine == "postgres") {
    KURA_ASSIGN_OR_RETURN(store::PostgresOptions options, PostgresOptionsOf(config));
    auto keys = store::OpenPostgresKeyStore(options);
    if (!keys.ok()) {
      return Status(keys.status().code(), "cannot open the key store in PostgreSQL: " + keys.status().message());
    }
    return keys;
  }
  store::SqliteKeyStoreOptions options;
  options.path = plan.keys_path;
  auto keys = store::OpenSqliteKeyStore(options);
  if (!keys.ok()) {
    return Status(keys.status().code(),
                  "cannot open the key store " + plan.keys_path + ": " + keys.status().message());
  }
  return keys;
}

}  // namespace kura::cli
