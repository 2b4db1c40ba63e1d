#include "audit/verifier.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <iterator>
#include <string>
#include <utility>

#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/entry_internal.h"
#include "audit/merkle.h"

namespace kura::audit {

const char* ProblemKindName(Problem::Kind kind) {
  switch (kind) {
    case Problem::Kind::kAltered: return "altered";
    case Problem::Kind::kRemoved: return "removed";
    case Problem::Kind::kInserted: return "inserted";
    case Problem::Kind::kReordered: return "reordered";
    case Problem::Kind::kChainBroken: return "chain_broken";
    case Problem::Kind::kTruncated: return "truncated";
    case Problem::Kind::kForgedCheckpoint: return "forged_checkpoint";
    case Problem::Kind::kCheckpointMismatch: return "checkpoint_mismatch";
  }
  return "unknown";
}

namespace {

constexpr int kPageRows = 4096;

std::string N(std::int64_t v) { return std::to_string(v); }

Problem MakeProblem(Problem::Kind kind, std::int64_t seq, std::string message) {
  return Problem{.kind = kind, .seq = seq, .message = std::move(message)};
}

// Whether `hex` (lowercase) spells `bytes`, without allocating.
bool HexSpells(std::string_view hex, ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  if (hex.size() != 2 * bytes.size()) return false;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (hex[2 * i] != kDigits[bytes[i] >> 4] || hex[2 * i + 1] != kDigits[bytes[i] & 0xF]) return false;
  }
  return true;
}

// The fields of one entry. On the fast path they view into the row's bytes;
// on the slow path into `owned`. Not copyable: the views would dangle.
struct Parsed {
  Parsed() = default;
  Parsed(const Parsed&) = delete;
  Parsed& operator=(const Parsed&) = delete;

  internal::EntryFields f;
  Entry owned;
  std::string owned_prev_hex;
};

bool Parse(const store::AuditRow& row, Parsed* p) {
  const std::string_view bytes = AsString(row.entry);
  if (internal::ScanPlainEntry(bytes, &p->f)) return true;
  // Escapes (non-ASCII text, control characters) or not canonical at all:
  // the full decoder decides.
  auto decoded = DecodeEntry(bytes);
  if (!decoded.ok()) return false;
  p->owned = std::move(decoded).value();
  p->owned_prev_hex = HexEncode(p->owned.prev_hash);
  const Event& e = p->owned.event;
  p->f = internal::EntryFields{.seq = p->owned.seq,
                               .prev_hex = p->owned_prev_hex,
                               .at_ms = e.at_ms,
                               .principal = e.principal,
                               .tenant = e.tenant,
                               .action = e.action,
                               .resource = e.resource,
                               .outcome = e.outcome};
  return true;
}

// What a row claims about its place: the seq inside the entry when the entry
// is intact (it is covered by the hash), else the seq column.
struct Claim {
  std::int64_t seq = -1;
  bool intact = false;
  std::string prev_hex;
  Bytes hash;
};

Claim ClaimOf(const store::AuditRow& row) {
  Claim c;
  c.seq = row.seq;
  c.hash = LeafHash(row.entry);
  Parsed p;
  if (c.hash == row.hash && Parse(row, &p)) {
    c.intact = true;
    c.seq = p.f.seq;
    c.prev_hex = std::string(p.f.prev_hex);
  }
  return c;
}

// Rows in seq order, a page at a time, with a bounded look-ahead for telling
// a removal from a reordering or an insertion once something is wrong.
class RowStream {
 public:
  // A page that comes back empty ends the log, unless a checkpoint says the
  // log reaches further (`probe_until`): then a run of missing entries longer
  // than a page is skipped, so the verifier can name it.
  RowStream(const RowReader& read, std::int64_t probe_until) : read_(read), probe_until_(probe_until) {}

  // The row `ahead` places after the current one (0: the current one);
  // nullptr past the end of the log or beyond the look-ahead window.
  Result<const store::AuditRow*> Peek(std::size_t ahead) {
    while (pos_ + ahead >= rows_.size()) {
      if (done_ || (ahead > 0 && rows_.size() - pos_ > static_cast<std::size_t>(kPageRows))) return nullptr;
      KURA_RETURN_IF_ERROR(Fill());
    }
    return &rows_[pos_ + ahead];
  }
  void Advance() { ++pos_; }

 private:
  Status Fill() {
    if (pos_ == rows_.size()) {
      rows_.clear();
      pos_ = 0;
    }
    std::vector<store::AuditRow> page;
    while (true) {
      KURA_ASSIGN_OR_RETURN(page, read_(from_, kPageRows));
      if (!page.empty()) break;
      if (from_ + kPageRows >= probe_until_) {
        done_ = true;
        return Status::Ok();
      }
      from_ += kPageRows;
    }
    // Continue after the last row returned; always move forward, whatever
    // seq columns a damaged log (or a lying server) holds — up to
    // INT64_MAX, where + 1 would overflow.
    from_ = std::max(std::min(page.back().seq, store::kMaxAuditSeq) + 1, from_ + 1);
    std::move(page.begin(), page.end(), std::back_inserter(rows_));
    return Status::Ok();
  }

  const RowReader& read_;
  const std::int64_t probe_until_;
  // A deque: looking ahead appends pages without moving the rows already
  // handed out.
  std::deque<store::AuditRow> rows_;
  std::size_t pos_ = 0;
  std::int64_t from_ = 0;
  bool done_ = false;
};

// How far the log must reach: the largest tree size of a validly signed
// checkpoint (a forged one must not make the verifier probe forever).
std::int64_t LargestTreeSize(const std::vector<store::AuditCheckpointRow>& checkpoints, ByteView public_key) {
  std::int64_t largest = 0;
  for (const auto& c : checkpoints) {
    if (c.tree_size > largest && VerifyCheckpoint(c, public_key).ok()) largest = c.tree_size;
  }
  return largest;
}

class Verifier {
 public:
  Verifier(const RowReader& read, const std::vector<store::AuditCheckpointRow>& checkpoints, ByteView public_key,
           const store::AuditHeadRow* head)
      : rows_(read, LargestTreeSize(checkpoints, public_key)), public_key_(public_key), head_(head) {
    for (const auto& c : checkpoints) checkpoints_.push_back(&c);
    std::stable_sort(checkpoints_.begin(), checkpoints_.end(),
                     [](const auto* a, const auto* b) { return a->tree_size < b->tree_size; });
  }

  Result<VerifyReport> Run() {
    if (auto p = CheckCheckpoints()) return Finish(std::move(p));
    while (true) {
      KURA_ASSIGN_OR_RETURN(const store::AuditRow* row, rows_.Peek(0));
      if (row == nullptr) break;
      KURA_ASSIGN_OR_RETURN(std::optional<Problem> problem, CheckRow(*row));
      if (problem) return Finish(std::move(problem));
      rows_.Advance();
      if (auto p = CheckCheckpoints()) return Finish(std::move(p));
      if (auto p = CheckHead()) return Finish(std::move(p));
    }
    // The log ended. A checkpoint beyond it proves that entries existed.
    if (ci_ < checkpoints_.size()) {
      const store::AuditCheckpointRow& c = *checkpoints_[ci_];
      Status s = VerifyCheckpoint(c, public_key_);
      if (!s.ok()) return Finish(Forged(c, s));
      return Finish(MakeProblem(Problem::Kind::kTruncated, next_,
                                "log truncated: it ends after " + N(next_) + " entries but the checkpoint at tree size " +
                                    N(c.tree_size) + " covers " + N(c.tree_size) + ": entries [" + N(next_) + ", " +
                                    N(c.tree_size) + ") were removed"));
    }
    report_.root = tree_.Root();
    return Finish(std::nullopt);
  }

 private:
  Result<VerifyReport> Finish(std::optional<Problem> problem) {
    report_.entries = next_;
    report_.signed_entries = last_checkpoint_;
    report_.problem = std::move(problem);
    if (report_.problem) report_.root.clear();
    return std::move(report_);
  }

  static Problem Forged(const store::AuditCheckpointRow& c, const Status& s) {
    return MakeProblem(Problem::Kind::kForgedCheckpoint, c.tree_size,
                       "forged checkpoint at tree size " + N(c.tree_size) + ": " + s.message());
  }

  // Once the verified entries reach the head row's count: the last of them
  // must be the entry it names. (More entries may follow: appended since
  // the head was read.)
  std::optional<Problem> CheckHead() {
    if (head_ == nullptr || next_ != head_->next_seq) return std::nullopt;
    const Bytes& named = head_->last_hash;
    if (named.size() == kHashSize && std::memcmp(named.data(), prev_hash_, kHashSize) == 0) return std::nullopt;
    return MakeProblem(Problem::Kind::kAltered, next_ - 1,
                       "entry " + N(next_ - 1) + " is not the entry the log's head row names as its last: the end " +
                           "of the log was rewritten");
  }

  // Checks every checkpoint whose tree size the verified entries now reach.
  std::optional<Problem> CheckCheckpoints() {
    while (ci_ < checkpoints_.size() && checkpoints_[ci_]->tree_size <= next_) {
      const store::AuditCheckpointRow& c = *checkpoints_[ci_];
      Status s = VerifyCheckpoint(c, public_key_);
      if (!s.ok()) return Forged(c, s);
      if (c.tree_size != next_) {  // only a negative size gets here, and no note says one
        return Forged(c, DataLossError("impossible tree size"));
      }
      if (tree_.Root() != c.root) {
        // Everything up to the previous checkpoint produced its signed root,
        // so what differs from the signed history lies after it.
        return MakeProblem(Problem::Kind::kCheckpointMismatch, c.tree_size,
                           "checkpoint at tree size " + N(c.tree_size) +
                               " is validly signed but the entries do not produce its root: an entry in [" +
                               N(last_checkpoint_) + ", " + N(c.tree_size) + ") was changed");
      }
      last_checkpoint_ = c.tree_size;
      ++report_.checkpoints;
      ++ci_;
    }
    return std::nullopt;
  }

  // Tells what a row out of place means, looking at the rows after it.
  Result<Problem> Misplaced(const Claim& claim) {
    const std::int64_t c = claim.seq;
    if (c < next_) {
      if (c == next_ - 1) {
        return MakeProblem(Problem::Kind::kInserted, c,
                           "entry " + N(c) + " appears twice (stored at seq " + N(c) + " and " + N(next_) +
                               "): an entry was inserted at seq " + N(c));
      }
      return MakeProblem(Problem::Kind::kReordered, c,
                         "entries reordered: entry " + N(c) + " is stored after entry " + N(next_ - 1) + " (at seq " +
                             N(next_) + ")");
    }
    // c > next_: is entry next_ further on (reordered, or this row was
    // inserted), does the log go on with next_ + 1 (this entry was altered to
    // claim another place), or is next_ simply gone (removed)?
    for (std::size_t j = 1; j <= static_cast<std::size_t>(kPageRows); ++j) {
      KURA_ASSIGN_OR_RETURN(const store::AuditRow* ahead, rows_.Peek(j));
      if (ahead == nullptr) break;
      const Claim other = ClaimOf(*ahead);
      if (other.seq != next_) continue;
      KURA_ASSIGN_OR_RETURN(const store::AuditRow* after, rows_.Peek(j + 1));
      if (j == 1 && after != nullptr && ClaimOf(*after).seq == next_ + 1) {
        return MakeProblem(Problem::Kind::kInserted, next_,
                           "an entry was inserted at seq " + N(next_) + " (it claims seq " + N(c) +
                               "; the real entry " + N(next_) + " follows it)");
      }
      return MakeProblem(Problem::Kind::kReordered, next_,
                         "entries reordered: seq " + N(next_) + " holds entry " + N(c) + "; entry " + N(next_) +
                             " is stored " + N(static_cast<std::int64_t>(j)) + " place(s) later");
    }
    KURA_ASSIGN_OR_RETURN(const store::AuditRow* following, rows_.Peek(1));
    if (claim.intact && following != nullptr && ClaimOf(*following).seq == next_ + 1) {
      return MakeProblem(Problem::Kind::kAltered, next_,
                         "entry " + N(next_) + " was altered: it says seq " + N(c) + " but stands between entries " +
                             N(next_ - 1) + " and " + N(next_ + 1));
    }
    if (c == next_ + 1) {
      return MakeProblem(Problem::Kind::kRemoved, next_, "entry " + N(next_) + " was removed");
    }
    return MakeProblem(Problem::Kind::kRemoved, next_,
                       "entries [" + N(next_) + ", " + N(c) + ") were removed (" + N(c - next_) + " entries)");
  }

  Result<std::optional<Problem>> CheckRow(const store::AuditRow& row) {
    internal::LeafHashInto(AsString(row.entry), &scratch_, leaf_);
    const ByteView leaf(leaf_, kHashSize);
    const bool hash_ok = row.hash.size() == kHashSize && std::memcmp(row.hash.data(), leaf_, kHashSize) == 0;
    Parsed parsed;
    const bool parsed_ok = hash_ok && Parse(row, &parsed);

    const std::int64_t claimed = (hash_ok && parsed_ok) ? parsed.f.seq : row.seq;
    if (claimed != next_) {
      Claim claim;
      claim.seq = claimed;
      claim.intact = hash_ok && parsed_ok;
      KURA_ASSIGN_OR_RETURN(Problem p, Misplaced(claim));
      return std::optional<Problem>(std::move(p));
    }
    const auto at = [this] { return "entry " + N(next_); };
    if (!hash_ok) {
      return std::optional<Problem>(
          MakeProblem(Problem::Kind::kAltered, next_, at() + " was altered: its bytes do not match its stored hash"));
    }
    if (!parsed_ok) {
      return std::optional<Problem>(
          MakeProblem(Problem::Kind::kAltered, next_, at() + " was altered: it is not a well-formed entry"));
    }
    const internal::EntryFields& f = parsed.f;
    const bool linked = next_ == 0 ? f.prev_hex.empty() : HexSpells(f.prev_hex, prev_hash_);
    if (!linked) {
      // An entry slipped in before the real one (which still links to our
      // predecessor), or the chain is broken here.
      KURA_ASSIGN_OR_RETURN(const store::AuditRow* following, rows_.Peek(1));
      if (following != nullptr) {
        const Claim other = ClaimOf(*following);
        const bool other_links =
            next_ == 0 ? other.prev_hex.empty() : (other.intact && HexSpells(other.prev_hex, prev_hash_));
        if (other.intact && other.seq == next_ && other_links) {
          return std::optional<Problem>(MakeProblem(
              Problem::Kind::kInserted, next_,
              "an entry was inserted at seq " + N(next_) + " (the real entry " + N(next_) + " follows it)"));
        }
      }
      if (next_ == 0) {
        return std::optional<Problem>(
            MakeProblem(Problem::Kind::kChainBroken, 0, "entry 0 was altered: it names a previous entry"));
      }
      return std::optional<Problem>(
          MakeProblem(Problem::Kind::kChainBroken, next_,
                      at() + " does not link to entry " + N(next_ - 1) + ": entry " + N(next_ - 1) +
                          " was altered (or entry " + N(next_) + " replaced)"));
    }
    const char* column = nullptr;
    if (row.seq != f.seq) column = "seq";
    else if (row.at_ms != f.at_ms) column = "at_ms";
    else if (row.tenant_id != f.tenant) column = "tenant_id";
    else if (row.principal != f.principal) column = "principal";
    else if (row.action != f.action) column = "action";
    else if (row.resource != f.resource) column = "resource";
    else if (row.outcome != f.outcome) column = "outcome";
    if (column != nullptr) {
      return std::optional<Problem>(MakeProblem(Problem::Kind::kAltered, next_,
                                                at() + " was altered: column " + column + " does not match the entry"));
    }
    tree_.Append(leaf);
    std::memcpy(prev_hash_, leaf_, kHashSize);
    ++next_;
    return std::optional<Problem>();
  }

  RowStream rows_;
  ByteView public_key_;
  const store::AuditHeadRow* head_;  // null: no head row to compare with
  std::vector<const store::AuditCheckpointRow*> checkpoints_;
  std::size_t ci_ = 0;
  std::int64_t last_checkpoint_ = 0;
  std::int64_t next_ = 0;  // the seq the next entry must have; = entries verified
  std::uint8_t prev_hash_[kHashSize] = {};
  std::uint8_t leaf_[kHashSize] = {};
  std::string scratch_;
  CompactTree tree_;
  VerifyReport report_;
};

}  // namespace

Result<VerifyReport> VerifyLog(const RowReader& read_rows, const std::vector<store::AuditCheckpointRow>& checkpoints,
                               ByteView public_key, std::optional<StoredExtent> stored) {
  Verifier verifier(read_rows, checkpoints, public_key, stored ? &stored->head : nullptr);
  KURA_ASSIGN_OR_RETURN(VerifyReport report, verifier.Run());
  if (report.problem || !stored) return report;
  const store::SeqBounds& rows = stored->rows;
  if (rows.lowest <= rows.highest && (rows.lowest < 0 || rows.highest >= report.entries)) {
    const std::int64_t outside = rows.lowest < 0 ? rows.lowest : rows.highest;
    report.problem =
        MakeProblem(Problem::Kind::kInserted, outside,
                    "a row is stored outside the log, at seq " + N(outside) + " (the log holds entries 0 to " +
                        N(report.entries - 1) + "): an entry was inserted there");
  } else if (stored->head.next_seq > report.entries) {
    report.problem = MakeProblem(Problem::Kind::kTruncated, report.entries,
                                 "the log ends after " + N(report.entries) + " entries, but its head row counts " +
                                     N(stored->head.next_seq) + ": entries [" + N(report.entries) + ", " +
                                     N(stored->head.next_seq) + ") were removed from the end");
  }
  if (report.problem) report.root.clear();
  return report;
}

}  // namespace kura::audit
