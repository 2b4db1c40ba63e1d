#include "cli/serve_stores.h"

#include <string>

#include "core/log.h"

namespace kura::cli {

Result<std::unique_ptr<store::Store>> OpenStore(const Config& config, const ServePlan& plan) {
  if (config.storage.engine == "postgres") {
    const auto& st = config.storage;
    store::PostgresOptions options;
    options.dsn = st.dsn;
    options.password_file = st.password_file;
    options.pool_size = st.pool_size;
    options.connect_timeout_s = static_cast<int>(st.connect_timeout.count());
    options.statement_timeout_ms = static_cast<int>(st.statement_timeout.count() * 1000);
    auto store = store::OpenPostgresStore(options);
    if (!store.ok())
      return Status(store.status().code(), "cannot open the PostgreSQL database: " + store.status().message());
    std::string sites;
    if (st.primary) sites += ", primary site " + st.primary->site + " (" + st.primary->region + ")";
    if (st.replica) sites += ", replica site " + st.replica->site + " (" + st.replica->region + ")";
    log::Info("storage: PostgreSQL, pool of " + std::to_string(st.pool_size) + sites);
    return store;
  }
  store::SqliteOptions options;
  options.path = plan.db_path;
  auto store = store::OpenSqliteStore(options);
  if (!store.ok()) {
    return Status(store.status().code(), "cannot open the database " + plan.db_path + ": " + store.status().message());
  }
  return store;
}

Result<std::unique_ptr<store::KeyStore>> OpenKeyStore(const Config& config, const ServePlan& plan) {
  if (config.storage.engine == "postgres") {
    const auto& st = config.storage;
    store::PostgresOptions options;
    options.dsn = st.dsn;
    options.password_file = st.password_file;
    options.connect_timeout_s = static_cast<int>(st.connect_timeout.count());
    options.statement_timeout_ms = static_cast<int>(st.statement_timeout.count() * 1000);
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
