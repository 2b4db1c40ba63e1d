// Offline verification of a whole audit log: every entry's hash, the chain,
// the columns against the entries, every checkpoint's signature, and every
// checkpoint's root against the tree recomputed from the entries (which
// proves every consistency between checkpoints). Used by `kura audit verify`
// on a data directory or a backup, and on entries fetched from a server.
#ifndef KURA_AUDIT_VERIFIER_H_
#define KURA_AUDIT_VERIFIER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "store/store.h"

namespace kura::audit {

struct Problem {
  enum class Kind {
    kAltered,      // an entry's bytes or columns do not match its hash
    kRemoved,      // entries are missing before `seq`
    kInserted,     // an entry that was never appended in this place
    kReordered,    // entries out of order
    kChainBroken,  // `seq` does not link to its predecessor (altered predecessor)
    kTruncated,    // fewer entries than a checkpoint covers, or than the head row counts
    kForgedCheckpoint,
    kCheckpointMismatch,  // a validly signed root that the entries do not produce
  };
  Kind kind;
  std::int64_t seq = -1;         // the entry named, or the checkpoint's tree size
  std::string message;           // one line for people: what and where
};
const char* ProblemKindName(Problem::Kind kind);

struct VerifyReport {
  std::int64_t entries = 0;       // entries read
  std::int64_t checkpoints = 0;   // checkpoints checked
  // Entries under the largest verified checkpoint (its tree size). Those
  // after it are chained but not yet signed: a rewrite of them would be
  // caught only by a later checkpoint.
  std::int64_t signed_entries = 0;
  std::optional<Problem> problem; // the first problem found; nullopt = verified
  Bytes root;                     // root over all entries read (when verified)
};

// Reads pages of rows in seq order ([from, from + limit)).
using RowReader = std::function<Result<std::vector<store::AuditRow>>(std::int64_t from, int limit)>;

// What a database says of the log besides its entries, read before them
// (entries appended while the verifier reads lie past both, never outside).
struct StoredExtent {
  // Store::AuditSeqBounds: the seq range the table's rows occupy. Reading
  // entries 0, 1, 2, … never meets a row stored at a negative seq or far past
  // the end, which a trail query would still list.
  store::SeqBounds rows;
  // Store::ReadAuditHeadRow: how many entries the chain's head row counts,
  // and the last one's hash. It is rewritten in the transaction of every
  // append, so entries removed from the end leave it beyond the last one,
  // and entries rewritten at the end (where no later entry links to them and
  // no checkpoint covers them yet) leave it naming another hash.
  store::AuditHeadRow head;
};

// Verifies the whole log. `checkpoints` ascending by tree size. The Status is
// an error only when reading failed; tampering is reported in the report.
// With `stored` (when the rows come from a database), a log that verified is
// reported kInserted when its rows reach outside it, kTruncated when its
// head row counts more entries than were read, and kAltered at the entry the
// head row counts last when that entry's hash is not the one it names.
Result<VerifyReport> VerifyLog(const RowReader& read_rows, const std::vector<store::AuditCheckpointRow>& checkpoints,
                               ByteView public_key, std::optional<StoredExtent> stored = std::nullopt);

}  // namespace kura::audit

#endif  // KURA_AUDIT_VERIFIER_H_
