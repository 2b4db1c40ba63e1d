// The data store and the key store of a configuration, opened the way
// `kura serve` opens them (also used offline by `kura operator
// migrate-seal`). Messages name the engine and the SQLite files, never the
// PostgreSQL DSN (it may carry a password).
#ifndef KURA_CLI_SERVE_STORES_H_
#define KURA_CLI_SERVE_STORES_H_

#include <memory>

#include "cli/serve_config.h"
#include "core/status.h"
#include "store/key_store.h"
#include "store/store.h"

namespace kura::cli {

// The PostgreSQL connection options of `config` (storage.engine =
// "postgres"), for the data store and the key store alike. With
// storage.gss_keytab it first points this process's Kerberos library at the
// keytab, so libpq authenticates with GSSAPI: KRB5_CLIENT_KTNAME = the keytab,
// KRB5CCNAME = a private in-memory ticket cache, PGGSSENCMODE = disable (TLS
// stays the channel). Environment variables because libpq takes no credential
// handle or keytab option; they are process-wide and setenv is not safe
// against other threads, so the first call must come before any thread or
// database connection exists (a later call with the same config changes
// nothing). Internal if the environment cannot be set.
Result<store::PostgresOptions> PostgresOptionsOf(const Config& config);

// kura.db (SQLite) or the PostgreSQL database of `config`.
Result<std::unique_ptr<store::Store>> OpenStore(const Config& config, const ServePlan& plan);
// keys.db (storage.key_store_path) or the key_* tables of the same
// PostgreSQL database (docs/formats/keys.md).
Result<std::unique_ptr<store::KeyStore>> OpenKeyStore(const Config& config, const ServePlan& plan);

}  // namespace kura::cli

#endif  // KURA_CLI_SERVE_STORES_H_
