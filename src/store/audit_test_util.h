// Test support: a stand-in for the audit module's entries, so the store's
// tests check the chain without depending on src/audit. Tests only.
//
// An entry is the text "seq|<hex of prev hash>|payload" and its "hash" a
// simple deterministic 32-byte function of it (FNV-1a, four seeds): the store
// treats both as opaque bytes, so any pure function shows whether each row was
// linked to the row before it.
#ifndef KURA_STORE_AUDIT_TEST_UTIL_H_
#define KURA_STORE_AUDIT_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "store/store.h"

namespace kura::store::testing {

inline std::string Hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

inline Bytes TestHash(ByteView data) {
  Bytes out;
  for (std::uint64_t seed :
       {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x1234567890abcdefull, 0x0fedcba987654321ull}) {
    std::uint64_t h = seed;
    for (std::uint8_t b : data) {
      h ^= b;
      h *= 0x100000001b3ull;
    }
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(h >> (8 * i)));
  }
  return out;
}

// What a test entry says besides its payload.
struct TestEvent {
  std::string payload;
  std::string tenant = "acme";
  std::string principal = "root";
  std::string action = "test";
  std::string resource;
  std::string outcome = "success";
  std::int64_t at_ms = 1700000000000;
};

class TestLink : public AuditLink {
 public:
  explicit TestLink(TestEvent event) : event_(std::move(event)) {}
  explicit TestLink(std::string payload) { event_.payload = std::move(payload); }

  AuditRow Link(std::int64_t seq, ByteView prev_hash) const override {
    calls_.fetch_add(1, std::memory_order_relaxed);
    AuditRow row;
    row.seq = seq;
    row.at_ms = event_.at_ms;
    row.tenant_id = event_.tenant;
    row.principal = event_.principal;
    row.action = event_.action;
    row.resource = event_.resource;
    row.outcome = event_.outcome;
    row.entry = ToBytes(std::to_string(seq) + "|" + Hex(prev_hash) + "|" + event_.payload);
    row.hash = TestHash(row.entry);
    return row;
  }
  int calls() const { return calls_.load(); }

 private:
  TestEvent event_;
  mutable std::atomic<int> calls_{0};
};

// A defective AuditLink: no hash, or a sequence number other than the one
// it was given. The store must refuse it (and the change it describes).
class BrokenLink : public AuditLink {
 public:
  enum class Defect { kNoHash, kWrongSeq };
  explicit BrokenLink(Defect defect) : defect_(defect) {}
  AuditRow Link(std::int64_t seq, ByteView prev_hash) const override {
    AuditRow row = TestLink("broken").Link(seq, prev_hash);
    if (defect_ == Defect::kNoHash) row.hash.clear();
    if (defect_ == Defect::kWrongSeq) row.seq = seq + 7;
    return row;
  }

 private:
  Defect defect_;
};

// Reads the whole log and checks it is one chain: seq 0, 1, 2, … without
// gaps, each entry linked to the previous entry's hash, each hash right, and
// AuditLeafHashes agreeing with the rows. Returns the payloads in order.
inline std::vector<std::string> CheckChain(Store& store) {
  std::vector<std::string> payloads;
  auto size = store.AuditSize();
  if (!size.ok()) {
    ADD_FAILURE() << size.status().ToString();
    return payloads;
  }
  Bytes prev;
  std::vector<Bytes> hashes;
  std::int64_t expected = 0;
  for (;;) {
    auto rows = store.ReadAudit(expected, 500);
    if (!rows.ok()) {
      ADD_FAILURE() << rows.status().ToString();
      return payloads;
    }
    if (rows->empty()) break;
    for (const AuditRow& row : *rows) {
      if (row.seq != expected) {
        ADD_FAILURE() << "expected seq " << expected << ", found " << row.seq;
        return payloads;
      }
      std::string entry(row.entry.begin(), row.entry.end());
      std::string prefix = std::to_string(row.seq) + "|" + Hex(prev) + "|";
      if (entry.compare(0, prefix.size(), prefix) != 0) {
        ADD_FAILURE() << "entry " << row.seq << " is not linked to its predecessor: " << entry;
        return payloads;
      }
      if (row.hash != TestHash(row.entry)) {
        ADD_FAILURE() << "entry " << row.seq << " has a wrong hash";
        return payloads;
      }
      payloads.push_back(entry.substr(prefix.size()));
      prev = row.hash;
      hashes.push_back(row.hash);
      ++expected;
    }
  }
  EXPECT_EQ(expected, *size) << "AuditSize disagrees with the rows";
  auto leaves = store.AuditLeafHashes(0, expected);
  if (!leaves.ok()) {
    ADD_FAILURE() << leaves.status().ToString();
  } else {
    EXPECT_EQ(*leaves, hashes);
  }
  return payloads;
}

}  // namespace kura::store::testing

#endif  // KURA_STORE_AUDIT_TEST_UTIL_H_
