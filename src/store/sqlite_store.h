// Module-internal test hooks of the SQLite Store (OpenSqliteStore in store.h
// is the public way in). Tests of the store module include this; production
// code must not.
#ifndef KURA_STORE_SQLITE_STORE_H_
#define KURA_STORE_SQLITE_STORE_H_

#include <cstdint>
#include <string>

#include "core/status.h"
#include "store/store.h"

namespace kura::store {

// Group-commit counters since the store was opened: `commits` transactions
// committed by the writer thread, carrying `ops` write operations in total
// (failed operations included). commits < ops means batching happened.
// `checkpoints` counts WAL checkpoints, normally run by a background thread;
// `group_retries` the groups of repeatable operations (record creates) run
// again one by one after one of them failed; `transaction_retries` those of
// them that had started their transaction and were rolled back with it.
struct GroupCommitStats {
  std::int64_t commits = 0;
  std::int64_t ops = 0;
  std::int64_t checkpoints = 0;     // WAL checkpoints completed
  std::int64_t database_syncs = 0;  // database file synced after a background checkpoint
  std::int64_t group_retries = 0;
  std::int64_t transaction_retries = 0;
};

// InvalidArgument if `store` was not made by OpenSqliteStore.
Result<GroupCommitStats> GroupCommitStatsForTest(Store& store);

// Reads of the record cache (record_cache.h) since the store was opened, and
// the rows it holds now.
struct RecordCacheStats {
  std::int64_t hits = 0;
  std::int64_t misses = 0;
  std::int64_t entries = 0;
};
Result<RecordCacheStats> RecordCacheStatsForTest(Store& store);

// Runs one SQL statement without parameters on the writer connection, as a
// write operation of its own (inside a batch transaction and savepoint), e.g.
// `PRAGMA max_page_count = N` to make the next growth fail with SQLITE_FULL.
Status ExecOnWriterForTest(Store& store, const std::string& sql);

}  // namespace kura::store

#endif  // KURA_STORE_SQLITE_STORE_H_
