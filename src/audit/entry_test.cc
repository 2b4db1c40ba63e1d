#include "audit/entry.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "audit/entry_internal.h"
#include "core/bytes.h"
#include "crypto/hash.h"

namespace kura::audit {
namespace {

Event SampleEvent() {
  Event e;
  e.at_ms = 1700000000123;
  e.principal = "apikey:k1";
  e.tenant = "acme";
  e.action = "record.read";
  e.resource = "customers/r1";
  e.outcome = "success";
  e.client = "127.0.0.1";
  e.request_id = "req-1";
  e.grant_id = "";
  e.reason = "ticket 42";
  e.lookup = "";
  return e;
}

Bytes Hash(std::uint8_t fill) { return Bytes(kHashSize, fill); }

TEST(EncodeEntryTest, ExactBytes) {
  EXPECT_EQ(EncodeEntry(0, {}, SampleEvent()),
            R"({"v":1,"seq":0,"prev":"","at_ms":1700000000123,"principal":"apikey:k1","tenant":"acme",)"
            R"("action":"record.read","resource":"customers/r1","outcome":"success",)"
            R"("client":"127.0.0.1","request_id":"req-1","grant_id":"","reason":"ticket 42","lookup":""})");
  Event e;
  e.at_ms = -5;
  std::string prev;
  for (int i = 0; i < 32; ++i) prev += "ab";
  EXPECT_EQ(EncodeEntry(9223372036854775807, Hash(0xab), e),
            R"({"v":1,"seq":9223372036854775807,"prev":")" + prev +
                R"(","at_ms":-5,"principal":"","tenant":"","action":"","resource":"","outcome":"",)"
                R"("client":"","request_id":"","grant_id":"","reason":"","lookup":""})");
}

std::string EncodedPrincipal(std::string_view principal) {
  Event e;
  e.principal = std::string(principal);
  const std::string entry = EncodeEntry(1, Hash(0), e);
  const std::string key = "\"principal\":";
  const std::size_t start = entry.find(key) + key.size();
  const std::size_t end = entry.find(",\"tenant\":");
  return entry.substr(start, end - start);
}

TEST(EncodeEntryTest, EscapesControlCharactersAndQuotes) {
  EXPECT_EQ(EncodedPrincipal("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(EncodedPrincipal("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(EncodedPrincipal(std::string("\0\x01\x1f\x7f ~", 6)), R"("\u0000\u0001\u001f\u007f ~")");
}

TEST(EncodeEntryTest, EscapesNonAsciiAsUtf16) {
  EXPECT_EQ(EncodedPrincipal("caf\xC3\xA9"), R"("caf\u00e9")");                    // é, 2 bytes
  EXPECT_EQ(EncodedPrincipal("\xE2\x82\xAC"), R"("\u20ac")");                       // €, 3 bytes
  EXPECT_EQ(EncodedPrincipal("\xEF\xBF\xBF"), R"("\uffff")");                       // last BMP code point
  EXPECT_EQ(EncodedPrincipal("\xF0\x9F\x98\x80"), R"("\ud83d\ude00")");             // U+1F600
  EXPECT_EQ(EncodedPrincipal("\xF0\x90\x80\x80"), R"("\ud800\udc00")");             // U+10000
  EXPECT_EQ(EncodedPrincipal("\xF4\x8F\xBF\xBF"), R"("\udbff\udfff")");             // U+10FFFF
  EXPECT_EQ(EncodedPrincipal("\xE6\x9D\xB1\xE4\xBA\xAC"), R"("\u6771\u4eac")");     // 東京
}

TEST(EncodeEntryTest, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(EncodedPrincipal("a\xFF" "b"), R"("a\ufffdb")");
  EXPECT_EQ(EncodedPrincipal("\x80"), R"("\ufffd")");                       // lone continuation
  EXPECT_EQ(EncodedPrincipal("\xC0\xAF"), R"("\ufffd\ufffd")");             // overlong '/'
  EXPECT_EQ(EncodedPrincipal("\xE0\x80\xAF"), R"("\ufffd\ufffd\ufffd")");   // overlong, 3 bytes
  EXPECT_EQ(EncodedPrincipal("\xED\xA0\x80"), R"("\ufffd\ufffd\ufffd")");   // encoded surrogate
  EXPECT_EQ(EncodedPrincipal("\xF4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
  EXPECT_EQ(EncodedPrincipal("\xE2\x82"), R"("\ufffd\ufffd")");             // truncated
  EXPECT_EQ(EncodedPrincipal("\xE2\x82x"), R"("\ufffd\ufffdx")");
  EXPECT_EQ(EncodedPrincipal("\xF5\x80\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");
}

// For well-formed UTF-8 the canonical string form is exactly what nlohmann
// writes with ensure_ascii (an independent implementation of the same rules).
TEST(EncodeEntryTest, MatchesNlohmannEnsureAsciiForValidUtf8) {
  std::mt19937 rng(7);
  const std::vector<char32_t> interesting = {0x00, 0x1F, 0x20, 0x22, 0x2F, 0x5C, 0x7E, 0x7F, 0x80,  0x7FF,
                                             0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF};
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) {
      char32_t cp;
      switch (rng() % 4) {
        case 0: cp = interesting[rng() % interesting.size()]; break;
        case 1: cp = rng() % 0x80; break;
        case 2: cp = rng() % 0x10000; break;
        default: cp = 0x10000 + rng() % 0x100000; break;
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE000;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    ASSERT_EQ(EncodedPrincipal(s), nlohmann::json(s).dump(-1, ' ', /*ensure_ascii=*/true)) << round;
  }
}

TEST(EncodeEntryTest, OutputIsAlwaysAscii) {
  std::mt19937 rng(11);
  for (int round = 0; round < 500; ++round) {
    Event e = SampleEvent();
    e.reason.clear();
    for (int k = 0; k < 40; ++k) e.reason.push_back(static_cast<char>(rng()));
    const std::string entry = EncodeEntry(round, Hash(1), e);
    for (char c : entry) {
      ASSERT_GE(static_cast<unsigned char>(c), 0x20);
      ASSERT_LT(static_cast<unsigned char>(c), 0x7F);
    }
    // And it decodes, to the same text with bad bytes replaced.
    auto decoded = DecodeEntry(entry);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->event.reason, internal::ValidUtf8(e.reason));
    // Taking the string over gives the same text.
    EXPECT_EQ(internal::ValidUtf8(std::string(e.reason)), internal::ValidUtf8(std::string_view(e.reason)));
  }
}

TEST(DecodeEntryTest, RoundTrip) {
  Event e = SampleEvent();
  e.principal = "caf\xC3\xA9 \xF0\x9F\x98\x80";
  e.resource = "a\"b\\c\n\x01";
  e.lookup = "email:0011";
  e.grant_id = "g-7";
  const std::string entry = EncodeEntry(5, Hash(0x5a), e);
  auto decoded = DecodeEntry(entry);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->seq, 5);
  EXPECT_EQ(decoded->prev_hash, Hash(0x5a));
  EXPECT_EQ(decoded->event.at_ms, e.at_ms);
  EXPECT_EQ(decoded->event.principal, e.principal);
  EXPECT_EQ(decoded->event.tenant, e.tenant);
  EXPECT_EQ(decoded->event.action, e.action);
  EXPECT_EQ(decoded->event.resource, e.resource);
  EXPECT_EQ(decoded->event.outcome, e.outcome);
  EXPECT_EQ(decoded->event.client, e.client);
  EXPECT_EQ(decoded->event.request_id, e.request_id);
  EXPECT_EQ(decoded->event.grant_id, "g-7");
  EXPECT_EQ(decoded->event.reason, e.reason);
  EXPECT_EQ(decoded->event.lookup, "email:0011");

  auto first = DecodeEntry(EncodeEntry(0, {}, e));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->prev_hash.empty());
}

TEST(DecodeEntryTest, AcceptsOnlyCanonicalBytes) {
  const std::string good = EncodeEntry(3, Hash(0x11), SampleEvent());
  ASSERT_TRUE(DecodeEntry(good).ok());
  const auto replace = [&](std::string_view from, std::string_view to) {
    std::string s = good;
    const std::size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::vector<std::string> bad = {
      "",
      "null",
      "[]",
      "{}",
      good + "\n",
      " " + good,
      replace("{\"v\":1,", "{ \"v\":1,"),
      replace(",\"seq\":3", ", \"seq\":3"),
      replace("\"v\":1", "\"v\":2"),
      replace("\"v\":1", "\"v\":1.0"),
      replace("\"seq\":3", "\"seq\":3.0"),
      replace("\"seq\":3", "\"seq\":03"),
      replace("\"seq\":3", "\"seq\":-3"),
      replace("\"seq\":3", "\"seq\":\"3\""),
      replace("\"seq\":3", "\"seq\":3e0"),
      replace("\"at_ms\":1700000000123", "\"at_ms\":17000000001230000000000"),
      replace("\"prev\":\"1111", "\"prev\":\"11"),                      // short hash
      replace("\"prev\":\"1111", "\"prev\":\"1A11"),                    // uppercase hex
      replace("\"prev\":\"1111", "\"prev\":\"zz11"),
      replace("\"principal\":\"apikey:k1\"", "\"principal\":\"apikey:k\\u0031\""),  // needless escape
      replace("\"resource\":\"customers/r1\"", "\"resource\":\"customers\\/r1\""),
      replace("\"principal\":\"apikey:k1\"", "\"principal\":\"caf\xC3\xA9\""),       // raw UTF-8
      replace("\"principal\":\"apikey:k1\"", "\"principal\":null"),
      replace(",\"lookup\":\"\"}", "}"),                                             // missing key
      replace(",\"lookup\":\"\"}", ",\"lookup\":\"\",\"extra\":\"\"}"),              // extra key
      replace(",\"lookup\":\"\"}", ",\"lookup\":\"\",\"lookup\":\"\"}"),             // duplicate key
      replace("\"action\":\"record.read\",\"resource\":\"customers/r1\"",
              "\"resource\":\"customers/r1\",\"action\":\"record.read\""),           // key order
      good.substr(0, good.size() - 1),
  };
  for (const std::string& s : bad) {
    auto decoded = DecodeEntry(s);
    EXPECT_FALSE(decoded.ok()) << s;
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss) << s;
    }
  }
  // An uppercase \u escape is the same text, but not the canonical bytes.
  Event e = SampleEvent();
  e.principal = "\xC3\xA9";
  std::string upper = EncodeEntry(1, Hash(1), e);
  upper.replace(upper.find("\\u00e9"), 6, "\\u00E9");
  EXPECT_EQ(DecodeEntry(upper).status().code(), StatusCode::kDataLoss);
  // A lone surrogate escape is not text at all.
  std::string lone = EncodeEntry(1, Hash(1), e);
  lone.replace(lone.find("\\u00e9"), 6, "\\ud800");
  EXPECT_EQ(DecodeEntry(lone).status().code(), StatusCode::kDataLoss);
}

TEST(LeafHashTest, Rfc6962LeafPrefix) {
  // SHA-256(0x00): the leaf hash of an empty entry.
  EXPECT_EQ(HexEncode(LeafHash({})), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  const std::string entry = EncodeEntry(0, {}, SampleEvent());
  EXPECT_EQ(LeafHash(AsBytes(entry)), crypto::Sha256(AsBytes(std::string(1, '\0') + entry)));
  EXPECT_NE(LeafHash(AsBytes(entry)), crypto::Sha256(AsBytes(entry)));
  std::uint8_t out[kHashSize];
  std::string scratch;
  internal::LeafHashInto(entry, &scratch, out);
  EXPECT_EQ(Bytes(out, out + kHashSize), LeafHash(AsBytes(entry)));
}

TEST(PendingEntryTest, LinkFillsEveryColumn) {
  PendingEntry pending(SampleEvent());
  const store::AuditRow row = pending.Link(7, Hash(0x22));
  EXPECT_EQ(row.seq, 7);
  EXPECT_EQ(row.at_ms, 1700000000123);
  EXPECT_EQ(row.tenant_id, "acme");
  EXPECT_EQ(row.principal, "apikey:k1");
  EXPECT_EQ(row.action, "record.read");
  EXPECT_EQ(row.resource, "customers/r1");
  EXPECT_EQ(row.outcome, "success");
  EXPECT_EQ(AsString(row.entry), EncodeEntry(7, Hash(0x22), SampleEvent()));
  EXPECT_EQ(row.hash, LeafHash(row.entry));
  // Pure: the same arguments give the same row.
  EXPECT_EQ(pending.Link(7, Hash(0x22)).entry, row.entry);
  auto decoded = DecodeEntry(AsString(row.entry));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(CheckRow(row, *decoded).ok());
}

TEST(PendingEntryTest, ColumnsHoldWhatTheEntrySaysForBadUtf8) {
  Event e = SampleEvent();
  e.tenant = "t\xFF";
  e.resource = "caf\xC3\xA9";
  const store::AuditRow row = PendingEntry(e).Link(0, {});
  EXPECT_EQ(row.tenant_id, "t\xEF\xBF\xBD");
  EXPECT_EQ(row.resource, "caf\xC3\xA9");
  auto decoded = DecodeEntry(AsString(row.entry));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(CheckRow(row, *decoded).ok());
}

TEST(CheckRowTest, NamesTheFirstDisagreement) {
  const store::AuditRow good = PendingEntry(SampleEvent()).Link(12, Hash(3));
  const Entry decoded = DecodeEntry(AsString(good.entry)).value();
  ASSERT_TRUE(CheckRow(good, decoded).ok());

  const auto expect_loss = [&](const store::AuditRow& row, std::string_view needle) {
    Status s = CheckRow(row, decoded);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  };
  store::AuditRow row = good;
  row.entry[20] ^= 1;
  expect_loss(row, "audit entry 12: the entry does not match its stored hash");
  row = good;
  row.hash[0] ^= 1;
  expect_loss(row, "does not match its stored hash");
  row = good;
  row.seq = 13;
  expect_loss(row, "says seq 12");
  row = good;
  row.at_ms += 1;
  expect_loss(row, "column at_ms");
  row = good;
  row.tenant_id = "other";
  expect_loss(row, "column tenant_id");
  row = good;
  row.principal = "root";
  expect_loss(row, "column principal");
  row = good;
  row.action = "record.delete";
  expect_loss(row, "column action");
  row = good;
  row.resource = "customers/r2";
  expect_loss(row, "column resource");
  row = good;
  row.outcome = "permission_denied";
  expect_loss(row, "column outcome");
}

// The verifier's fast path must never accept what DecodeEntry rejects, and
// must read the same fields when both accept.
void ExpectScanAgrees(const std::string& bytes) {
  internal::EntryFields fields;
  if (!internal::ScanPlainEntry(bytes, &fields)) return;
  auto decoded = DecodeEntry(bytes);
  ASSERT_TRUE(decoded.ok()) << "fast path accepted: " << bytes;
  EXPECT_EQ(fields.seq, decoded->seq);
  EXPECT_EQ(fields.prev_hex, HexEncode(decoded->prev_hash));
  EXPECT_EQ(fields.at_ms, decoded->event.at_ms);
  EXPECT_EQ(fields.principal, decoded->event.principal);
  EXPECT_EQ(fields.tenant, decoded->event.tenant);
  EXPECT_EQ(fields.action, decoded->event.action);
  EXPECT_EQ(fields.resource, decoded->event.resource);
  EXPECT_EQ(fields.outcome, decoded->event.outcome);
}

TEST(ScanPlainEntryTest, AcceptsPlainCanonicalEntries) {
  for (std::int64_t seq : {0, 1, 9, 10, 123456789}) {
    const std::string entry = EncodeEntry(seq, seq == 0 ? Bytes{} : Hash(0xc4), SampleEvent());
    internal::EntryFields fields;
    ASSERT_TRUE(internal::ScanPlainEntry(entry, &fields)) << entry;
    EXPECT_EQ(fields.seq, seq);
    EXPECT_EQ(fields.tenant, "acme");
    EXPECT_EQ(fields.resource, "customers/r1");
    ExpectScanAgrees(entry);
  }
  Event negative = SampleEvent();
  negative.at_ms = -1;
  ExpectScanAgrees(EncodeEntry(2, Hash(0), negative));
  // Escapes are left to DecodeEntry.
  Event escaped = SampleEvent();
  escaped.reason = "line\nbreak";
  internal::EntryFields fields;
  EXPECT_FALSE(internal::ScanPlainEntry(EncodeEntry(2, Hash(0), escaped), &fields));
}

TEST(ScanPlainEntryTest, EveryMutationAgreesWithDecodeEntry) {
  Event e = SampleEvent();
  e.at_ms = 1000;
  const std::string good = EncodeEntry(10, Hash(0x09), e);
  const std::string bytes_to_try = std::string("0123456789-+.eE \"\\{}[],:afAFuxn\x7f\x01\x80", 34) + '\0';
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (char c : bytes_to_try) {
      std::string changed = good;
      changed[i] = c;
      ExpectScanAgrees(changed);
      std::string inserted = good;
      inserted.insert(inserted.begin() + static_cast<std::ptrdiff_t>(i), c);
      ExpectScanAgrees(inserted);
    }
    std::string removed = good;
    removed.erase(i, 1);
    ExpectScanAgrees(removed);
  }
}

}  // namespace
}  // namespace kura::audit
