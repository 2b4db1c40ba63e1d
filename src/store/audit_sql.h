// Module-internal: SQL of the audit-log trail query (Store::FindAudit), shared
// by both backends.
//
// A trail query filters on any subset of seven columns. Optional filters
// written as `(? = '' OR principal = ?)` would keep both engines from using
// the trail indexes, so each subset gets its own statement text, with only the
// filters that are set: 2^7 texts per dialect, built once, with static
// storage (the backends' statement caches are keyed by the text's address).
#ifndef KURA_STORE_AUDIT_SQL_H_
#define KURA_STORE_AUDIT_SQL_H_

#include "store/migrations.h"
#include "store/store.h"

namespace kura::store {

// Which filters of `query` are set (bit i = the i-th filter in the order
// below), and whether it wants the newest matches. Parameters are bound in this order: after_seq (always; -1 when
// unset), then tenant_id, principal, action, resource, outcome, from_ms,
// to_ms (each only when set), then the row limit.
unsigned AuditFilterMask(const AuditQuery& query);

// The statement for `mask` in `dialect` (`?` or `$n` parameters). Columns:
// seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash.
const char* FindAuditSql(Dialect dialect, unsigned mask);

// Turns the rows FindAuditSql returned (at most limit + 1, in its order) into
// the page: oldest first; when there were more, a `next` cursor — except for
// a newest-first query, whose page is the last one by definition.
void FinishAuditPage(const AuditQuery& query, int limit, Page<AuditRow>& page);

// Ok when an entry may be appended at `next_seq` (0 ≤ next_seq <
// kMaxAuditSeq); DataLoss otherwise. Appending then fails closed instead of
// letting the number overflow, while the rows stay readable for
// `kura audit verify`, which names the entry out of place.
Status CheckAuditAppendSeq(std::int64_t next_seq);

// Columns every audit-row SELECT of both backends returns, in this order.
inline constexpr char kAuditColumns[] = "seq, at_ms, tenant_id, principal, action, resource, outcome, entry, hash";

// SQLite's trail index is by block of 2^kAuditBlockShift sequence numbers
// (migration 10): `audit_tenant_blocks` and `audit_principal_blocks` hold one
// row per tenant (principal) and block that has an entry of it, written in
// the entry's transaction. A filtered trail walks that key's blocks in order
// and, in each, the log's rows by sequence number, keeping the matching ones.
// Why not an index on (tenant_id, seq) as PostgreSQL has: it costs two b-tree
// inserts per entry, inside the batch every read waits for — about a quarter
// of the writer's time per audited GET (docs/performance.md) — where block
// rows cost one insert per key and block, nearly nothing under load. A
// trail then reads at most a block (64 rows) per hit: the idea of
// PostgreSQL's BRIN indexes, kept per key.
inline constexpr int kAuditBlockShift = 6;

}  // namespace kura::store

#endif  // KURA_STORE_AUDIT_SQL_H_
