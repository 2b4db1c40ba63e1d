// libFuzzer target: `kura audit verify` over a log it has no reason to trust
// — the rows of a data directory someone else could edit, or the answers of
// a server that may lie.
//
// A valid log of 12 entries with signed checkpoints at tree sizes 5 and 12 is
// built once. The input is a program of edits to it, four bytes each: change
// a byte of an entry, a column, or the seq column (to any value, the ends of
// the 64-bit range included); delete, duplicate, swap or overwrite rows; drop
// a checkpoint, move it to another tree size, damage its root or signature,
// or sign a forged one with another key. The first byte chooses the reader:
// the store's (rows whose seq is in [from, from + limit), by seq, one row
// per seq as a primary key allows, and the seq range the rows occupy, as
// `kura audit verify --data` reads them) or a lying server's (every row
// whose seq is at least `from`, in whatever order it likes). Checked beyond
// "no crash, no sanitizer report":
// - reading never fails, so VerifyLog always returns a report, and a report
//   with a problem names it;
// - the log without edits verifies, every entry under a signed checkpoint;
// - soundness: while the checkpoint over all 12 entries stays as signed, a log
//   that verifies is the original — all 12 entries, the original root — and
//   through the store's reader, row for row the original rows.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/merkle.h"
#include "audit/verifier.h"
#include "crypto/signing.h"
#include "require.h"

namespace {

using kura::Bytes;
using kura::Result;
using kura::store::AuditCheckpointRow;
using kura::store::AuditRow;
using namespace kura::audit;

constexpr std::int64_t kEntries = 12;

bool SameRow(const AuditRow& a, const AuditRow& b) {
  return a.seq == b.seq && a.at_ms == b.at_ms && a.tenant_id == b.tenant_id && a.principal == b.principal &&
         a.action == b.action && a.resource == b.resource && a.outcome == b.outcome && a.entry == b.entry &&
         a.hash == b.hash;
}

bool SameRows(const std::vector<AuditRow>& a, const std::vector<AuditRow>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), SameRow);
}

bool SameCheckpoint(const AuditCheckpointRow& a, const AuditCheckpointRow& b) {
  return a.tree_size == b.tree_size && a.at_ms == b.at_ms && a.root == b.root && a.note == b.note &&
         a.signature == b.signature;
}

kura::crypto::SigningKey KeyFromSeedByte(std::uint8_t byte) {
  kura::SecretBytes seed(32);
  for (std::size_t i = 0; i < seed.size(); ++i) seed.data()[i] = byte;
  return kura::crypto::SigningKey::FromSeed(seed).value();
}

Event MakeEvent(std::int64_t i) {
  Event e;
  e.at_ms = 1700000000000 + i;
  e.principal = i % 3 == 0 ? "root" : "apikey:k" + std::to_string(i % 4);
  e.tenant = i % 5 == 0 ? "" : "acme";
  e.action = i % 2 == 0 ? "record.read" : "record.create";
  e.resource = "collections/customers/records/r" + std::to_string(i);
  e.outcome = i % 7 == 0 ? "permission_denied" : "success";
  e.client = "10.0.0." + std::to_string(i);
  e.request_id = "req-" + std::to_string(i);
  if (i % 4 == 0) e.reason = "ticket \xE2\x84\x96" + std::to_string(i) + "\n";  // non-ASCII, a control character
  return e;
}

struct Original {
  kura::crypto::SigningKey key = KeyFromSeedByte(1);
  kura::crypto::SigningKey other_key = KeyFromSeedByte(2);
  std::vector<AuditRow> rows;
  std::vector<AuditCheckpointRow> checkpoints;
  Bytes root;

  Original() {
    CompactTree tree;
    std::vector<Bytes> roots;
    Bytes prev;
    for (std::int64_t i = 0; i < kEntries; ++i) {
      rows.push_back(PendingEntry(MakeEvent(i)).Link(i, prev));
      prev = rows.back().hash;
      tree.Append(rows.back().hash);
      roots.push_back(tree.Root());
    }
    root = tree.Root();
    for (std::int64_t size : {std::int64_t{5}, kEntries}) {
      checkpoints.push_back(SignCheckpoint(
          {.tree_size = size, .root = roots[static_cast<std::size_t>(size - 1)], .at_ms = 1700000001000 + size}, key));
    }
  }
};

// Sequence numbers an edit can give a row: every real one and a few beyond,
// and the ends of the range.
std::int64_t SeqFor(std::uint8_t v) {
  static constexpr std::int64_t kExtremes[] = {-1,
                                               std::numeric_limits<std::int64_t>::min(),
                                               std::numeric_limits<std::int64_t>::max(),
                                               std::numeric_limits<std::int64_t>::max() - 1,
                                               kura::store::kMaxAuditSeq,
                                               kura::store::kMaxAuditSeq - 1,
                                               std::int64_t{1} << 32,
                                               4096};
  if (v < 16) return v;
  return kExtremes[v % std::size(kExtremes)];
}

void EditRow(std::vector<AuditRow>& rows, std::uint8_t op, std::uint8_t a, std::uint8_t b, std::uint8_t v) {
  if (rows.empty()) return;
  AuditRow& row = rows[a % rows.size()];
  const std::size_t other = b % rows.size();
  switch (op) {
    case 0:
      if (!row.entry.empty()) row.entry[v % row.entry.size()] ^= static_cast<std::uint8_t>(b | 1);
      break;
    case 1:
      row.seq = SeqFor(v);
      break;
    case 2:
      rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(a % rows.size()));
      break;
    case 3:
      rows.insert(rows.begin() + static_cast<std::ptrdiff_t>(other), row);
      break;
    case 4:
      std::swap(row, rows[other]);
      break;
    case 5:  // a column
      switch (v % 7) {
        case 0:
          row.tenant_id += 'x';
          break;
        case 1:
          row.principal = "root";
          break;
        case 2:
          row.action = "record.read";
          break;
        case 3:
          row.resource.clear();
          break;
        case 4:
          row.outcome = "success";
          break;
        case 5:
          row.at_ms += 1;
          break;
        default:
          row.hash.at(v % row.hash.size()) ^= 1;
          break;
      }
      break;
    default: {  // another row's entry and hash, keeping this row's seq
      const AuditRow copy = rows[other];
      const std::int64_t seq = row.seq;
      row = copy;
      row.seq = seq;
      break;
    }
  }
}

void EditCheckpoint(const Original& original, std::vector<AuditCheckpointRow>& checkpoints, std::uint8_t a,
                    std::uint8_t v) {
  if (checkpoints.empty()) return;
  AuditCheckpointRow& c = checkpoints[a % checkpoints.size()];
  switch (v % 5) {
    case 0:
      checkpoints.erase(checkpoints.begin() + static_cast<std::ptrdiff_t>(a % checkpoints.size()));
      break;
    case 1:
      c.tree_size = SeqFor(v);
      break;
    case 2:
      c.root.at(v % c.root.size()) ^= 1;
      break;
    case 3:
      c.signature.at(v % c.signature.size()) ^= 1;
      break;
    default:  // a checkpoint over the same size and root, signed by someone else
      c = SignCheckpoint({.tree_size = c.tree_size, .root = c.root, .at_ms = c.at_ms}, original.other_key);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Original original;
  if (size == 0) return 0;
  const bool lying_server = data[0] & 1;
  std::vector<AuditRow> rows = original.rows;
  std::vector<AuditCheckpointRow> checkpoints = original.checkpoints;
  std::size_t edits = 0;
  for (std::size_t at = 1; at + 4 <= size && edits < 16; at += 4, ++edits) {
    const std::uint8_t op = data[at] % 8;
    if (op == 7) {
      EditCheckpoint(original, checkpoints, data[at + 1], data[at + 3]);
    } else {
      EditRow(rows, op, data[at + 1], data[at + 2], data[at + 3]);
    }
  }

  std::vector<AuditRow> table;  // what the store's reader reads
  if (!lying_server) {
    for (const AuditRow& row : rows) {
      bool taken = false;
      for (const AuditRow& kept : table) taken = taken || kept.seq == row.seq;
      if (!taken) table.push_back(row);
    }
    std::stable_sort(table.begin(), table.end(), [](const AuditRow& x, const AuditRow& y) { return x.seq < y.seq; });
  }
  RowReader reader = [&](std::int64_t from, int limit) -> Result<std::vector<AuditRow>> {
    std::vector<AuditRow> page;
    for (const AuditRow& row : lying_server ? rows : table) {
      if (static_cast<int>(page.size()) == limit) break;
      // from + limit without overflow: from is at least 0 here.
      if (row.seq >= from && (lying_server || row.seq - from < limit)) page.push_back(row);
    }
    return page;
  };
  std::vector<AuditCheckpointRow> ordered = checkpoints;
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const AuditCheckpointRow& x, const AuditCheckpointRow& y) { return x.tree_size < y.tree_size; });

  // The store's reader comes with the range its table's rows occupy, and
  // with its head row, left as the log was written.
  std::optional<kura::audit::StoredExtent> stored;
  if (!lying_server) {
    stored.emplace();
    stored->head = {kEntries, original.rows.back().hash};
    if (!table.empty()) {
      stored->rows.lowest = table.front().seq;
      stored->rows.highest = table.back().seq;
    }
  }
  const Result<VerifyReport> report = VerifyLog(reader, ordered, original.key.public_key(), stored);
  FUZZ_REQUIRE(report.ok());
  if (report->problem) {
    FUZZ_REQUIRE(!report->problem->message.empty());
    FUZZ_REQUIRE(report->root.empty());
  }
  if (edits == 0) {
    FUZZ_REQUIRE(!report->problem);
    FUZZ_REQUIRE(report->entries == kEntries && report->signed_entries == kEntries);
  }
  bool full_checkpoint_kept = false;
  for (const AuditCheckpointRow& c : checkpoints)
    full_checkpoint_kept = full_checkpoint_kept || SameCheckpoint(c, original.checkpoints.back());
  if (full_checkpoint_kept && !report->problem) {
    FUZZ_REQUIRE(report->entries == kEntries);
    FUZZ_REQUIRE(report->root == original.root);
    if (!lying_server) FUZZ_REQUIRE(SameRows(table, original.rows));
  }
  return 0;
}
