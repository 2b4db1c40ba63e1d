// Module-internal test hooks of the PostgreSQL Store (OpenPostgresStore in
// store.h is the public way in). Tests of the store module include this;
// production code must not.
#ifndef KURA_STORE_POSTGRES_STORE_H_
#define KURA_STORE_POSTGRES_STORE_H_

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace kura::store {

// Connection-pool counters since the store was opened.
struct PostgresPoolStats {
  std::int64_t opened = 0;   // connections established (including the first)
  std::int64_t dropped = 0;  // connections discarded as broken, timed out or terminated
  std::int64_t retries = 0;  // calls run again after a lost connection or a serialization failure
  std::int64_t audit_commits = 0;  // appender batches (audited writes and AppendAudit entries) that committed
  std::int64_t audit_appends = 0;  // entries those transactions appended
  // Statements sent for coalesced reads of current versions: one per batch
  // when the batch went as one statement, one per read when it was pipelined.
  std::int64_t read_statements = 0;
};

// InvalidArgument if `store` was not made by OpenPostgresStore.
Result<PostgresPoolStats> PostgresPoolStatsForTest(Store& store);

// Server process ids (pg_backend_pid) of the pool's idle connections, so a
// test can terminate exactly those sessions from another connection.
Result<std::vector<int>> PostgresBackendPidsForTest(Store& store);

}  // namespace kura::store

#endif  // KURA_STORE_POSTGRES_STORE_H_
