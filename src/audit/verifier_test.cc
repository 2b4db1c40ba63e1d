#include "audit/verifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/merkle.h"
#include "core/bytes.h"
#include "crypto/signing.h"

namespace kura::audit {
namespace {

using Kind = Problem::Kind;
using store::AuditCheckpointRow;
using store::AuditRow;

Event MakeEvent(std::int64_t i) {
  Event e;
  e.at_ms = 1700000000000 + i;
  e.principal = i % 3 == 0 ? "root" : "apikey:k" + std::to_string(i % 7);
  e.tenant = i % 5 == 0 ? "" : "acme";
  e.action = i % 2 == 0 ? "record.read" : "record.create";
  e.resource = "customers/r" + std::to_string(i);
  e.outcome = i % 11 == 0 ? "permission_denied" : "success";
  e.client = "10.0.0." + std::to_string(i % 250);
  e.request_id = "req-" + std::to_string(i);
  // Some entries need the full decoder: non-ASCII and control characters.
  if (i % 13 == 0) e.reason = "caf\xC3\xA9 \xF0\x9F\x98\x80 ticket\n" + std::to_string(i);
  if (i % 17 == 0) e.resource = "customers/\xE6\x9D\xB1\xE4\xBA\xAC";
  return e;
}

// A log as the store would hold it: rows linked by PendingEntry, in a table
// keyed by the seq column.
struct Log {
  std::vector<AuditRow> rows;
  std::vector<AuditCheckpointRow> checkpoints;

  // Reads like the store: rows whose seq column is in [from, from + limit),
  // ordered by seq.
  RowReader Reader() {
    std::stable_sort(rows.begin(), rows.end(), [](const AuditRow& a, const AuditRow& b) { return a.seq < b.seq; });
    return [this](std::int64_t from, int limit) -> Result<std::vector<AuditRow>> {
      ++reads;
      std::vector<AuditRow> out;
      for (const AuditRow& r : rows) {
        if (r.seq >= from && r.seq < from + limit) out.push_back(r);
      }
      return out;
    };
  }
  int reads = 0;
};

Bytes RootOf(const std::vector<AuditRow>& rows, std::int64_t size) {
  CompactTree tree;
  for (std::int64_t i = 0; i < size; ++i) tree.Append(rows[static_cast<std::size_t>(i)].hash);
  return tree.Root();
}

AuditRow LinkRow(const Event& e, std::int64_t seq, const Bytes& prev) { return PendingEntry(e).Link(seq, prev); }

Log BuildLog(std::int64_t n, const crypto::SigningKey& key, const std::vector<std::int64_t>& checkpoint_sizes) {
  Log log;
  Bytes prev;
  for (std::int64_t i = 0; i < n; ++i) {
    log.rows.push_back(LinkRow(MakeEvent(i), i, prev));
    prev = log.rows.back().hash;
  }
  for (std::int64_t size : checkpoint_sizes) {
    log.checkpoints.push_back(
        SignCheckpoint({.tree_size = size, .root = RootOf(log.rows, size), .at_ms = 1700000000000 + size}, key));
  }
  return log;
}

class VerifierTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t kN = 10000;
  void SetUp() override { log_ = BuildLog(kN, key_, {1, 100, 4096, 5000, 8192, kN}); }

  VerifyReport Verify(Log& log) {
    auto report = VerifyLog(log.Reader(), log.checkpoints, key_.public_key());
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return std::move(report).value();
  }
  // Verifies and expects exactly this problem; its message must name `seq`.
  void ExpectProblem(Log& log, Kind kind, std::int64_t seq, std::string_view needle = "") {
    const VerifyReport report = Verify(log);
    ASSERT_TRUE(report.problem.has_value()) << "verified but expected " << ProblemKindName(kind);
    EXPECT_EQ(ProblemKindName(report.problem->kind), std::string(ProblemKindName(kind))) << report.problem->message;
    EXPECT_EQ(report.problem->seq, seq) << report.problem->message;
    EXPECT_NE(report.problem->message.find(std::to_string(seq)), std::string::npos) << report.problem->message;
    EXPECT_NE(report.problem->message.find(needle), std::string::npos) << report.problem->message;
    EXPECT_EQ(report.problem->message.find('\n'), std::string::npos);
    EXPECT_TRUE(report.root.empty());
  }
  AuditRow& Row(std::int64_t seq) { return log_.rows[static_cast<std::size_t>(seq)]; }
  // The head row as the store keeps it for the log as it is now.
  store::AuditHeadRow Head() const {
    return {static_cast<std::int64_t>(log_.rows.size()), log_.rows.empty() ? Bytes() : log_.rows.back().hash};
  }
  // Re-links every entry from `from` on, as an attacker who knows the format
  // (but not the signing key) would after changing one.
  void Relink(std::int64_t from) {
    for (std::size_t i = static_cast<std::size_t>(from); i < log_.rows.size(); ++i) {
      const Entry e = DecodeEntry(AsString(log_.rows[i].entry)).value();
      log_.rows[i] = LinkRow(e.event, static_cast<std::int64_t>(i), i == 0 ? Bytes{} : log_.rows[i - 1].hash);
    }
  }

  crypto::SigningKey key_ = crypto::SigningKey::Generate();
  Log log_;
};

TEST_F(VerifierTest, UntouchedLogVerifies) {
  const VerifyReport report = Verify(log_);
  EXPECT_FALSE(report.problem.has_value()) << report.problem->message;
  EXPECT_EQ(report.entries, kN);
  EXPECT_EQ(report.checkpoints, 6);
  EXPECT_EQ(report.signed_entries, kN);
  EXPECT_EQ(report.root, RootOf(log_.rows, kN));
  EXPECT_GE(log_.reads, 3);  // paged, not one read
}

TEST_F(VerifierTest, EmptyLog) {
  Log empty;
  VerifyReport report = Verify(empty);
  EXPECT_FALSE(report.problem.has_value());
  EXPECT_EQ(report.entries, 0);
  EXPECT_EQ(report.root, EmptyTreeRoot());

  empty.checkpoints.push_back(SignCheckpoint({.tree_size = 0, .root = EmptyTreeRoot(), .at_ms = 1}, key_));
  report = Verify(empty);
  EXPECT_FALSE(report.problem.has_value());
  EXPECT_EQ(report.checkpoints, 1);

  empty.checkpoints.push_back(SignCheckpoint({.tree_size = 5, .root = EmptyTreeRoot(), .at_ms = 2}, key_));
  ExpectProblem(empty, Kind::kTruncated, 0, "[0, 5)");
}

TEST_F(VerifierTest, AlteredEntryBytes) {
  std::string entry(AsString(Row(500).entry));
  entry.replace(entry.find("customers/r500"), 14, "customers/x500");
  Row(500).entry = ToBytes(entry);
  ExpectProblem(log_, Kind::kAltered, 500, "do not match its stored hash");
}

TEST_F(VerifierTest, AlteredEntryWithNonAsciiText) {
  std::string entry(AsString(Row(13 * 40).entry));
  const std::size_t at = entry.find("\\u00e9");
  ASSERT_NE(at, std::string::npos);
  entry.replace(at, 6, "\\u00e8");
  Row(13 * 40).entry = ToBytes(entry);
  ExpectProblem(log_, Kind::kAltered, 13 * 40);
}

TEST_F(VerifierTest, AlteredEntryWithRecomputedHashBreaksTheChain) {
  Event e = DecodeEntry(AsString(Row(500).entry)).value().event;
  e.outcome = "success";
  e.principal = "someone-else";
  Row(500) = LinkRow(e, 500, Row(499).hash);
  ExpectProblem(log_, Kind::kChainBroken, 501, "entry 500 was altered");
}

TEST_F(VerifierTest, AlteredLastEntryIsCaughtByTheCheckpoint) {
  Event e = DecodeEntry(AsString(Row(kN - 1).entry)).value().event;
  e.action = "record.delete";
  Row(kN - 1) = LinkRow(e, kN - 1, Row(kN - 2).hash);
  ExpectProblem(log_, Kind::kCheckpointMismatch, kN, "[8192, 10000)");
}

TEST_F(VerifierTest, AlteredColumns) {
  Row(700).tenant_id = "other";
  ExpectProblem(log_, Kind::kAltered, 700, "column tenant_id");
  log_ = BuildLog(kN, key_, {kN});
  Row(701).at_ms += 1;
  ExpectProblem(log_, Kind::kAltered, 701, "column at_ms");
  log_ = BuildLog(kN, key_, {kN});
  ASSERT_NE(Row(704).principal, "root");
  Row(704).principal = "root";
  ExpectProblem(log_, Kind::kAltered, 704, "column principal");
  log_ = BuildLog(kN, key_, {kN});
  Row(705).resource = "customers/r1";
  ExpectProblem(log_, Kind::kAltered, 705, "column resource");
  log_ = BuildLog(kN, key_, {kN});
  Row(706).action = "tenant.delete";
  ExpectProblem(log_, Kind::kAltered, 706, "column action");
  log_ = BuildLog(kN, key_, {kN});
  Row(707).outcome = "internal";
  ExpectProblem(log_, Kind::kAltered, 707, "column outcome");
  log_ = BuildLog(kN, key_, {kN});
  Row(703).hash[3] ^= 1;
  ExpectProblem(log_, Kind::kAltered, 703, "stored hash");
}

TEST_F(VerifierTest, AlteredEntryNotWellFormed) {
  Row(42).entry = ToBytes("{\"v\":1}");
  Row(42).hash = LeafHash(Row(42).entry);
  ExpectProblem(log_, Kind::kAltered, 42, "not a well-formed entry");
}

TEST_F(VerifierTest, RemovedEntry) {
  log_.rows.erase(log_.rows.begin() + 300);
  ExpectProblem(log_, Kind::kRemoved, 300, "entry 300 was removed");
}

TEST_F(VerifierTest, RemovedEntriesRenumbered) {
  // Deleted and the seq columns closed up, so the table has no gap.
  log_.rows.erase(log_.rows.begin() + 300, log_.rows.begin() + 311);
  for (std::size_t i = 300; i < log_.rows.size(); ++i) log_.rows[i].seq = static_cast<std::int64_t>(i);
  ExpectProblem(log_, Kind::kRemoved, 300, "[300, 311)");
}

TEST_F(VerifierTest, RemovedEntriesSpanningPages) {
  log_.rows.erase(log_.rows.begin() + 4000, log_.rows.begin() + 9000);
  ExpectProblem(log_, Kind::kRemoved, 4000, "[4000, 9000)");
}

TEST_F(VerifierTest, InsertedEntryThatLinks) {
  // A careful forgery: it links to entry 399, says seq 400, and every later
  // row moves up one place.
  AuditRow fake = LinkRow(MakeEvent(123456), 400, Row(399).hash);
  log_.rows.insert(log_.rows.begin() + 400, fake);
  for (std::size_t i = 401; i < log_.rows.size(); ++i) log_.rows[i].seq = static_cast<std::int64_t>(i);
  ExpectProblem(log_, Kind::kInserted, 400, "inserted at seq 400");
}

TEST_F(VerifierTest, InsertedEntryThatDoesNotLink) {
  AuditRow fake = LinkRow(MakeEvent(123456), 400, Bytes(32, 7));
  log_.rows.insert(log_.rows.begin() + 400, fake);
  for (std::size_t i = 401; i < log_.rows.size(); ++i) log_.rows[i].seq = static_cast<std::int64_t>(i);
  ExpectProblem(log_, Kind::kInserted, 400, "inserted at seq 400");
}

TEST_F(VerifierTest, InsertedEntryClaimingAnotherSeq) {
  AuditRow fake = LinkRow(MakeEvent(1), 77777, Row(399).hash);
  fake.seq = 400;
  log_.rows.insert(log_.rows.begin() + 400, fake);
  for (std::size_t i = 401; i < log_.rows.size(); ++i) log_.rows[i].seq = static_cast<std::int64_t>(i);
  ExpectProblem(log_, Kind::kInserted, 400, "inserted at seq 400");
}

TEST_F(VerifierTest, SwappedNeighbours) {
  std::swap(Row(600).seq, Row(601).seq);  // the rows trade places in the table
  ExpectProblem(log_, Kind::kReordered, 600);
}

TEST_F(VerifierTest, SwappedDistantEntries) {
  // Whole rows swapped, seq columns kept in place.
  std::swap(Row(600), Row(900));
  std::swap(Row(600).seq, Row(900).seq);
  ExpectProblem(log_, Kind::kReordered, 600, "holds entry 900");
}

// Rows read 0, 1, 2, … never meet one stored at a negative seq or far past
// the end; the table's seq range given, the verifier names it.
TEST_F(VerifierTest, RowsStoredOutsideTheLogAreInserted) {
  const store::SeqBounds whole{.lowest = 0, .highest = kN - 1};
  auto verify = [&](store::SeqBounds bounds) {
    auto report = VerifyLog(log_.Reader(), log_.checkpoints, key_.public_key(), StoredExtent{bounds, Head()});
    EXPECT_TRUE(report.ok());
    return std::move(report).value();
  };
  EXPECT_FALSE(verify(whole).problem.has_value());
  for (std::int64_t outside :
       {std::int64_t{-1}, std::numeric_limits<std::int64_t>::min(), kN, std::numeric_limits<std::int64_t>::max()}) {
    store::SeqBounds bounds = whole;
    (outside < 0 ? bounds.lowest : bounds.highest) = outside;
    const VerifyReport report = verify(bounds);
    ASSERT_TRUE(report.problem.has_value()) << outside;
    EXPECT_EQ(report.problem->kind, Kind::kInserted);
    EXPECT_EQ(report.problem->seq, outside);
    EXPECT_NE(report.problem->message.find("at seq " + std::to_string(outside)), std::string::npos);
    EXPECT_TRUE(report.root.empty());
  }
  // Without the range (entries from a server) the rows read are all there is.
  EXPECT_FALSE(VerifyLog(log_.Reader(), log_.checkpoints, key_.public_key())->problem.has_value());
}

// Entries removed from the end after the last checkpoint leave the head row,
// which every append rewrites, counting them.
TEST_F(VerifierTest, TailRemovedBehindTheHeadRowIsTruncated) {
  const StoredExtent stored{.rows = {.lowest = 0, .highest = kN - 11}, .head = Head()};
  log_.checkpoints.pop_back();
  log_.rows.resize(kN - 10);
  auto report = VerifyLog(log_.Reader(), log_.checkpoints, key_.public_key(), stored);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->problem.has_value());
  EXPECT_EQ(report->problem->kind, Kind::kTruncated);
  EXPECT_EQ(report->problem->seq, kN - 10);
  EXPECT_NE(report->problem->message.find("head row counts 10000: entries [9990, 10000)"), std::string::npos)
      << report->problem->message;
  EXPECT_TRUE(report->root.empty());
  // A head behind the entries read is a server appending meanwhile.
  for (std::int64_t count : {std::int64_t{0}, kN - 10, kN - 20}) {
    const store::AuditHeadRow head{count, count == 0 ? Bytes() : log_.rows[count - 1].hash};
    auto live = VerifyLog(log_.Reader(), log_.checkpoints, key_.public_key(), StoredExtent{stored.rows, head});
    ASSERT_TRUE(live.ok());
    EXPECT_FALSE(live->problem.has_value()) << count << ": " << live->problem->message;
  }
}

// The last entry has no successor to link to it; until a checkpoint covers
// it, only the head row's hash tells a rewritten one from the original.
TEST_F(VerifierTest, LastEntryRewrittenBehindTheHeadRowIsAltered) {
  const StoredExtent stored{.rows = {.lowest = 0, .highest = kN - 1}, .head = Head()};
  log_.checkpoints.pop_back();
  // Another event in its place, hashed and linked to its predecessor.
  Row(kN - 1) = LinkRow(MakeEvent(kN + 1), kN - 1, Row(kN - 2).hash);
  auto report = VerifyLog(log_.Reader(), log_.checkpoints, key_.public_key(), stored);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->problem.has_value());
  EXPECT_EQ(report->problem->kind, Kind::kAltered);
  EXPECT_EQ(report->problem->seq, kN - 1);
  EXPECT_NE(report->problem->message.find("head row names"), std::string::npos) << report->problem->message;
  // Without the head row it verifies: nothing else covers the last entry.
  EXPECT_FALSE(Verify(log_).problem.has_value());
  // A head row whose hash was cleared names no entry at all.
  const StoredExtent cleared{.rows = stored.rows, .head = {kN, Bytes()}};
  auto blank = VerifyLog(log_.Reader(), log_.checkpoints, key_.public_key(), cleared);
  ASSERT_TRUE(blank.ok());
  ASSERT_TRUE(blank->problem.has_value());
  EXPECT_EQ(blank->problem->kind, Kind::kAltered);
}

TEST_F(VerifierTest, TruncatedTail) {
  log_.rows.resize(kN - 10);
  ExpectProblem(log_, Kind::kTruncated, kN - 10, "[9990, 10000)");
  // Without a checkpoint that covers them, dropped last entries cannot be
  // told from entries never written: the report says how many it saw.
  log_.checkpoints.pop_back();
  const VerifyReport report = Verify(log_);
  EXPECT_FALSE(report.problem.has_value());
  EXPECT_EQ(report.entries, kN - 10);
  // … and how many of them a verified checkpoint covers.
  EXPECT_EQ(report.signed_entries, log_.checkpoints.back().tree_size);
  EXPECT_LT(report.signed_entries, report.entries);
}

TEST_F(VerifierTest, ForgedCheckpointSignature) {
  log_.checkpoints[3].signature[0] ^= 1;  // tree size 5000
  ExpectProblem(log_, Kind::kForgedCheckpoint, 5000, "signature does not verify");
}

TEST_F(VerifierTest, CheckpointFromAnotherKey) {
  const crypto::SigningKey other = crypto::SigningKey::Generate();
  log_.checkpoints[2] = SignCheckpoint({.tree_size = 4096, .root = RootOf(log_.rows, 4096), .at_ms = 1}, other);
  ExpectProblem(log_, Kind::kForgedCheckpoint, 4096, "another key");
}

TEST_F(VerifierTest, ForgedCheckpointColumns) {
  log_.checkpoints[1].tree_size = 200;  // the note still says 100
  ExpectProblem(log_, Kind::kForgedCheckpoint, 200);
}

TEST_F(VerifierTest, ForgedCheckpointBeyondTheLogIsForgedNotTruncated) {
  AuditCheckpointRow forged = log_.checkpoints.back();
  forged.tree_size = kN + 50;
  forged.note = CheckpointNote({.key_id = KeyId(key_.public_key()), .tree_size = kN + 50, .root = forged.root,
                                .at_ms = forged.at_ms});
  log_.checkpoints.push_back(forged);
  ExpectProblem(log_, Kind::kForgedCheckpoint, kN + 50);
}

TEST_F(VerifierTest, SignedRootTheEntriesDoNotProduce) {
  // A validly signed checkpoint of some other history at size 5000.
  Log other = BuildLog(5000, key_, {});
  other.rows[4500].hash[0] ^= 1;
  log_.checkpoints[3] = SignCheckpoint({.tree_size = 5000, .root = RootOf(other.rows, 5000), .at_ms = 9}, key_);
  ExpectProblem(log_, Kind::kCheckpointMismatch, 5000, "[4096, 5000)");
}

TEST_F(VerifierTest, ReplacedLogIsCaughtByTheFirstCheckpoint) {
  // An attacker without the key rebuilds a whole consistent log: every hash,
  // every link and every column agree, only the signed checkpoints do not.
  Event e = DecodeEntry(AsString(Row(0).entry)).value().event;
  e.principal = "nobody";
  Row(0) = LinkRow(e, 0, {});
  Relink(1);
  ExpectProblem(log_, Kind::kCheckpointMismatch, 1, "[0, 1)");
}

TEST_F(VerifierTest, FirstEntryWithAPrev) {
  Row(0) = LinkRow(MakeEvent(0), 0, Bytes(32, 1));
  Relink(1);
  ExpectProblem(log_, Kind::kChainBroken, 0);
}

TEST_F(VerifierTest, CheckpointsNeedNotBeSorted) {
  std::reverse(log_.checkpoints.begin(), log_.checkpoints.end());
  const VerifyReport report = Verify(log_);
  EXPECT_FALSE(report.problem.has_value());
  EXPECT_EQ(report.checkpoints, 6);
}

TEST_F(VerifierTest, ReadErrorsAreErrors) {
  int calls = 0;
  RowReader failing = [&](std::int64_t from, int limit) -> Result<std::vector<AuditRow>> {
    if (++calls > 1) return UnavailableError("read failed");
    std::vector<AuditRow> out(log_.rows.begin() + from, log_.rows.begin() + from + limit);
    return out;
  };
  auto report = VerifyLog(failing, log_.checkpoints, key_.public_key());
  EXPECT_EQ(report.status().code(), StatusCode::kUnavailable);
}

TEST(ProblemKindNameTest, Names) {
  EXPECT_STREQ(ProblemKindName(Kind::kAltered), "altered");
  EXPECT_STREQ(ProblemKindName(Kind::kRemoved), "removed");
  EXPECT_STREQ(ProblemKindName(Kind::kInserted), "inserted");
  EXPECT_STREQ(ProblemKindName(Kind::kReordered), "reordered");
  EXPECT_STREQ(ProblemKindName(Kind::kChainBroken), "chain_broken");
  EXPECT_STREQ(ProblemKindName(Kind::kTruncated), "truncated");
  EXPECT_STREQ(ProblemKindName(Kind::kForgedCheckpoint), "forged_checkpoint");
  EXPECT_STREQ(ProblemKindName(Kind::kCheckpointMismatch), "checkpoint_mismatch");
}

}  // namespace
}  // namespace kura::audit
