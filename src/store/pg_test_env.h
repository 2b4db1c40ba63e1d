// Test support: the PostgreSQL server the store tests run against.
//
// Where the server comes from, in order:
//   1. KURA_TEST_PG_DSN, if set: any reachable PostgreSQL whose role may
//      create schemas in its database.
//   2. Otherwise, if PostgreSQL 15 is installed
//      (/usr/lib/postgresql/15/bin/initdb), a throwaway server started by
//      tests/pg/pg-server.sh on first use, in a directory shared by this
//      build's test processes (/tmp/kura-pg-<hash of the build dir>; CTest
//      runs each test in its own process). Users are tracked by PID under a
//      file lock; when the last test process exits, `pg-server.sh linger`
//      stops the server 15 s later unless another test process registered
//      meanwhile. The cluster stays on disk, so later runs skip initdb.
//   3. Otherwise none: PostgreSQL tests skip, unless KURA_REQUIRE_PG=1, in
//      which case they fail.
//
// Every store made in a test gets a schema of its own (FreshPgDsn), so each
// starts empty; the schemas this process created are dropped at exit.
//
// Test-only code: linked into test binaries, never into kura.
#ifndef KURA_STORE_PG_TEST_ENV_H_
#define KURA_STORE_PG_TEST_ENV_H_

#include <string>

#include "core/status.h"

namespace kura::store::testing {

// Non-empty when PostgreSQL tests should be skipped here: no server, and
// KURA_REQUIRE_PG is not set. Starts the shared server on first call.
std::string PgSkipReason();

// The base DSN of the test server; Unavailable (with the reason) if none.
Result<std::string> PgTestDsn();

// A DSN whose search_path is a new, empty schema on the test server.
Result<std::string> FreshPgDsn();

}  // namespace kura::store::testing

// In a test body or SetUp: skip (or, with KURA_REQUIRE_PG=1, fail) when no
// PostgreSQL server is available.
#define KURA_SKIP_WITHOUT_PG()                                                 \
  do {                                                                         \
    std::string kura_pg_skip_ = ::kura::store::testing::PgSkipReason();        \
    if (!kura_pg_skip_.empty()) GTEST_SKIP() << kura_pg_skip_;                 \
  } while (0)

#endif  // KURA_STORE_PG_TEST_ENV_H_
