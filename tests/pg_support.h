// PostgreSQL for the end-to-end tests.
//
// The shared server: KURA_TEST_PG_DSN if set; else, with PostgreSQL 15
// installed, a throwaway server that tests/pg/pg-server.sh starts in
// /tmp/kura-pg-e2e-<build hash>, shared by the test processes of this build
// (each registered under DIR.users/<pid>) and stopped by `pg-server.sh
// linger` once none has used it for 15 s; else none (tests skip, or fail
// with KURA_REQUIRE_PG=1). Tests that need their own servers (failover) run
// tests/pg/pg-replication.sh through PgScript().
#ifndef KURA_TESTS_PG_SUPPORT_H_
#define KURA_TESTS_PG_SUPPORT_H_

#include <string>

#include "harness.h"

namespace kura::e2e {

std::string PgBinDir();                         // /usr/lib/postgresql/15/bin
std::string PgScript(const std::string& name);  // tests/pg/<name>
bool PgInstalled();                             // initdb is there
bool PgRequired();                              // KURA_REQUIRE_PG is set

// The shared server's base DSN (key=value, with password) — started on first
// call — or "" with the reason in SharedPgWhyNot().
std::string SharedPgDsn();
std::string SharedPgWhyNot();

// The value of `export NAME='value'` in a script's output.
std::string PgExportValue(const std::string& out, const std::string& name);
// Runs one SQL text with psql (unaligned, tuples only).
ProcessResult PgSql(const std::string& dsn, const std::string& sql);
// A TOML basic string; lower-case hex of bytes.
std::string PgToml(const std::string& s);
std::string PgHex(const std::string& s);
// Splits `password=…` out of a key=value DSN.
void PgSplitPassword(const std::string& dsn, std::string* rest, std::string* password);
// `base` with search_path set to `schema`.
std::string PgDsnWithSchema(const std::string& base, const std::string& schema);
// The start of a kura.toml for PostgreSQL at `dsn` (region "jp", site
// "tokyo-1", [storage] with engine, dsn and `storage_lines`): a password in
// the DSN goes to DIR/pg-password (0600), never into the TOML. "" with
// *error when that file cannot be written.
std::string PgServeToml(const std::string& dsn, const std::string& dir, const std::string& storage_lines,
                        std::string* error);

}  // namespace kura::e2e

#endif  // KURA_TESTS_PG_SUPPORT_H_
