// The record cache on its own: what it keeps, what it refuses to keep, and
// the marks by which the writer keeps it coherent. Its use by the SQLite store
// is tested in sqlite_store_test.cc (RecordCache*).
#include "store/record_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace kura::store {
namespace {

RecordRow Row(const std::string& id, std::int64_t version, std::size_t size = 300) {
  RecordRow r;
  r.tenant_id = "acme";
  r.collection = "people";
  r.id = id;
  r.version = version;
  r.current_version = version;
  r.ciphertext = Bytes(size, static_cast<std::uint8_t>(version));
  r.created_at = 10;
  r.updated_at = 20 + version;
  r.key_version = 3;
  return r;
}

TEST(RecordCacheTest, KeepsWhatWasFilledAndCountsHitsAndMisses) {
  RecordCache cache(1 << 20);
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value());
  cache.Fill(Row("r1", 4), cache.Ticket());
  auto hit = cache.Find("acme", "people", "r1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->version, 4);
  EXPECT_EQ(hit->current_version, 4);
  EXPECT_EQ(hit->ciphertext, Row("r1", 4).ciphertext);
  EXPECT_EQ(hit->updated_at, 24);
  EXPECT_EQ(hit->key_version, 3);
  // The key is the whole (tenant, collection, id), not a prefix of it.
  EXPECT_FALSE(cache.Find("acme", "people", "r").has_value());
  EXPECT_FALSE(cache.Find("acme", "peopl", "er1").has_value());
  EXPECT_FALSE(cache.Find("acm", "epeople", "r1").has_value());
  auto stats = cache.stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 4u);
  EXPECT_EQ(stats.entries, 1u);
}

TEST(RecordCacheTest, OffKeepsNothing) {
  RecordCache cache(0);
  EXPECT_FALSE(cache.enabled());
  cache.Fill(Row("r1", 1), cache.Ticket());
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value());
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(RecordCacheTest, KeepsOnlyCurrentVersions) {
  RecordCache cache(1 << 20);
  RecordRow old = Row("r1", 2);
  old.current_version = 3;  // a version read by number, not the current one
  cache.Fill(old, cache.Ticket());
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value());
}

TEST(RecordCacheTest, AFillFromBeforeAChangeIsRefused) {
  RecordCache cache(1 << 20);
  const auto ticket = cache.Ticket();
  // A change of another record began (and ended) after the ticket: the row
  // read with it may predate any change, so it is not kept.
  cache.BeginChange("acme", "people", "other");
  cache.EndChanges();
  cache.Fill(Row("r1", 1), ticket);
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value());
  cache.Fill(Row("r1", 1), cache.Ticket());
  EXPECT_TRUE(cache.Find("acme", "people", "r1").has_value());
}

TEST(RecordCacheTest, AChangeErasesItsRecordAndBlocksFillsUntilItEnds) {
  RecordCache cache(1 << 20);
  cache.Fill(Row("r1", 1), cache.Ticket());
  cache.Fill(Row("r2", 1), cache.Ticket());
  cache.BeginChange("acme", "people", "r1");
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value());
  EXPECT_TRUE(cache.Find("acme", "people", "r2").has_value()) << "other records stay";
  // A reader that took its ticket during the change (and so may have read
  // the row from before the commit) fills nothing, now or after the end.
  const auto during = cache.Ticket();
  cache.Fill(Row("r1", 1), during);
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value());
  cache.EndChanges();
  cache.Fill(Row("r1", 1), during);
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value());
  // After the end, a read with a new ticket fills again.
  cache.Fill(Row("r1", 2), cache.Ticket());
  ASSERT_TRUE(cache.Find("acme", "people", "r1").has_value());
  EXPECT_EQ(cache.Find("acme", "people", "r1")->version, 2);
}

TEST(RecordCacheTest, AChangeOfEveryRecordEmptiesTheCacheAndBlocksAllFills) {
  RecordCache cache(1 << 20);
  cache.Fill(Row("r1", 1), cache.Ticket());
  cache.Fill(Row("r2", 1), cache.Ticket());
  cache.BeginChangeAll();
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
  cache.Fill(Row("r3", 1), cache.Ticket());
  EXPECT_FALSE(cache.Find("acme", "people", "r3").has_value());
  cache.EndChanges();
  cache.Fill(Row("r3", 1), cache.Ticket());
  EXPECT_TRUE(cache.Find("acme", "people", "r3").has_value());
}

TEST(RecordCacheTest, EndWithoutChangesKeepsTicketsValid) {
  // The writer ends every batch; batches that changed no record (audit
  // appends, inserts) must not cost the readers their fills.
  RecordCache cache(1 << 20);
  const auto ticket = cache.Ticket();
  cache.EndChanges();
  cache.Fill(Row("r1", 1), ticket);
  EXPECT_TRUE(cache.Find("acme", "people", "r1").has_value());
}

TEST(RecordCacheTest, StaysWithinItsBytesAndDropsTheLeastRecentlyReadFirst) {
  // About 600 bytes per 300-byte row with its overhead: 16 KiB hold a few dozen.
  RecordCache cache(16 << 10);
  cache.Fill(Row("r0", 1), cache.Ticket());
  for (int i = 1; i < 200; ++i) {
    cache.Fill(Row("r" + std::to_string(i), 1), cache.Ticket());
    // r0 is read between fills: the most recently read is kept.
    ASSERT_TRUE(cache.Find("acme", "people", "r0").has_value()) << i;
    ASSERT_LE(cache.stats().bytes, std::size_t{16} << 10);
  }
  const auto stats = cache.stats();
  EXPECT_GT(stats.entries, 10u);
  EXPECT_LT(stats.entries, 40u);
  EXPECT_FALSE(cache.Find("acme", "people", "r1").has_value()) << "the oldest unread row went first";
  EXPECT_TRUE(cache.Find("acme", "people", "r199").has_value());
}

TEST(RecordCacheTest, ARowTooLargeForItsShareIsNotKept) {
  RecordCache cache(64 << 10);
  cache.Fill(Row("small", 1, 1000), cache.Ticket());
  cache.Fill(Row("large", 1, 8000), cache.Ticket());  // more than 1/16 of 64 KiB
  EXPECT_TRUE(cache.Find("acme", "people", "small").has_value());
  EXPECT_FALSE(cache.Find("acme", "people", "large").has_value());
}

TEST(RecordCacheTest, RefillReplacesTheEntry) {
  RecordCache cache(1 << 20);
  cache.Fill(Row("r1", 1), cache.Ticket());
  const auto bytes = cache.stats().bytes;
  // The same key again, a newer row 200 bytes larger: the old entry goes.
  cache.Fill(Row("r1", 2, 500), cache.Ticket());
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().bytes, bytes + 200);
  auto hit = cache.Find("acme", "people", "r1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->version, 2);
  EXPECT_EQ(hit->ciphertext, Row("r1", 2, 500).ciphertext);
}

}  // namespace
}  // namespace kura::store
