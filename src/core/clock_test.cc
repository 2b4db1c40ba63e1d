#include "core/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace kura {
namespace {

using std::chrono::seconds;

TEST(Rfc3339Test, FormatsUtcWithSecondPrecision) {
  EXPECT_EQ(FormatRfc3339(FromUnixSeconds(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(FromUnixSeconds(1795638426)), "2026-11-25T20:27:06Z");
  // Sub-second parts are dropped, not rounded.
  EXPECT_EQ(FormatRfc3339(FromUnixSeconds(59) + std::chrono::milliseconds(999)), "1970-01-01T00:00:59Z");
}

// The same text as gmtime_r and strftime, whose spelling FormatRfc3339 had.
TEST(Rfc3339Test, FormatsAsStrftimeDoes) {
  const auto strftime_text = [](std::int64_t secs) {
    std::time_t time = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&time, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf);
  };
  // A TimePoint holds nanoseconds in 64 bits: 1677-09-21 to 2262-04-11.
  std::vector<std::int64_t> times = {0,
                                     -1,
                                     59,
                                     86399,
                                     86400,
                                     -86400,
                                     951782400 /* 2000-02-29 */,
                                     4107542399 /* 2100-02-28T23:59:59 */,
                                     4107542400,
                                     9214646400 /* 2262-01-01 */,
                                     -9214560000 /* 1678-01-01 */,
                                     1795638426};
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> any(-9214560000, 9214646400);
  for (int i = 0; i < 20000; ++i) times.push_back(any(rng));
  for (std::int64_t t : times) EXPECT_EQ(FormatRfc3339(FromUnixSeconds(t)), strftime_text(t)) << t;
}

TEST(Rfc3339Test, ParsesUtc) {
  auto t = ParseRfc3339("2026-11-25T20:27:06Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(ToUnixSeconds(*t), 1795638426);
  auto lower = ParseRfc3339("2026-11-25T20:27:06z");
  ASSERT_TRUE(lower);
  EXPECT_EQ(*lower, *t);
}

TEST(Rfc3339Test, ParsesOffsets) {
  auto utc = ParseRfc3339("2026-11-25T20:27:06Z");
  auto tokyo = ParseRfc3339("2026-11-26T05:27:06+09:00");
  auto ny = ParseRfc3339("2026-11-25T15:27:06-05:00");
  auto india = ParseRfc3339("2026-11-26T01:57:06+05:30");
  ASSERT_TRUE(utc && tokyo && ny && india);
  EXPECT_EQ(*tokyo, *utc);
  EXPECT_EQ(*ny, *utc);
  EXPECT_EQ(*india, *utc);
  EXPECT_EQ(*ParseRfc3339("2026-11-25T20:27:06+00:00"), *utc);
}

TEST(Rfc3339Test, ParsesFractionalSeconds) {
  auto t = ParseRfc3339("2026-11-25T20:27:06.123456Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(ToUnixSeconds(*t), 1795638426);
}

TEST(Rfc3339Test, RoundTrips) {
  for (std::int64_t s : {0LL, 1LL, 951782400LL /* 2000-02-29 */, 1795638426LL, 4102444799LL}) {
    auto t = ParseRfc3339(FormatRfc3339(FromUnixSeconds(s)));
    ASSERT_TRUE(t) << s;
    EXPECT_EQ(ToUnixSeconds(*t), s);
  }
}

TEST(Rfc3339Test, RefusesMalformed) {
  for (const char* bad : {
           "",
           "2026-11-25",
           "2026-11-25T20:27:06",         // no zone
           "2026-11-25 20:27:06Z",        // space instead of T
           "2026-13-25T20:27:06Z",        // month 13
           "2026-00-25T20:27:06Z",
           "2026-11-32T20:27:06Z",
           "2026-11-25T24:00:00Z",
           "2026-11-25T20:60:06Z",
           "2026-11-25T20:27:61Z",
           "2026-11-25T20:27:06.Z",       // empty fraction
           "2026-11-25T20:27:06+0900",    // offset without colon
           "2026-11-25T20:27:06+24:00",
           "2026-11-25T20:27:06+09:60",
           "2026-11-25T20:27:06Zjunk",
           "2026-11-25T20:27:06+09:00x",
           "26-11-25T20:27:06Z",
           "2026-1-25T20:27:06Z",
           "tomorrow",
       }) {
    EXPECT_FALSE(ParseRfc3339(bad)) << bad;
  }
}

TEST(UnixSecondsTest, RoundTrips) {
  EXPECT_EQ(ToUnixSeconds(FromUnixSeconds(1234567890)), 1234567890);
  EXPECT_EQ(ToUnixSeconds(FromUnixSeconds(-1)), -1);
}

TEST(FakeClockTest, StartsWhereToldAndAdvances) {
  FakeClock clock(FromUnixSeconds(1000));
  EXPECT_EQ(ToUnixSeconds(clock.Now()), 1000);
  clock.Advance(seconds(61));
  EXPECT_EQ(ToUnixSeconds(clock.Now()), 1061);
  clock.Advance(std::chrono::milliseconds(1500));
  EXPECT_EQ(clock.Now(), FromUnixSeconds(1062) + std::chrono::milliseconds(500));
  // Code that holds it as a Clock sees the fake time too.
  const Clock& as_base = clock;
  EXPECT_EQ(as_base.Now(), FromUnixSeconds(1062) + std::chrono::milliseconds(500));
}

TEST(RealClockTest, IsNearSystemTime) {
  auto before = std::chrono::system_clock::now();
  auto now = Clock::Real().Now();
  auto after = std::chrono::system_clock::now();
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
  EXPECT_EQ(&Clock::Real(), &Clock::Real());
}

}  // namespace
}  // namespace kura
