// Clock: the single source of "now", injectable so tests can move time.
//
// Thread safety: implementations are safe for concurrent use.
#ifndef KURA_CORE_CLOCK_H_
#define KURA_CORE_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kura {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // The process-wide real clock.
  static const Clock& Real();
};

// A clock tests set and advance by hand.
class FakeClock : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(start.time_since_epoch().count()) {}
  TimePoint Now() const override { return TimePoint(TimePoint::duration(now_.load())); }
  void Advance(std::chrono::nanoseconds d) {
    now_ += std::chrono::duration_cast<TimePoint::duration>(d).count();
  }

 private:
  std::atomic<TimePoint::rep> now_;
};

// RFC 3339 UTC with second precision, e.g. "2026-11-25T20:27:06Z".
std::string FormatRfc3339(TimePoint t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)"; nullopt when malformed.
std::optional<TimePoint> ParseRfc3339(std::string_view text);
// Unix seconds, the form timestamps take in storage.
std::int64_t ToUnixSeconds(TimePoint t);
TimePoint FromUnixSeconds(std::int64_t s);

// Parses a duration "90s", "5m", "1h", "1h30m", "2d" (a unit on every
// number); nullopt when malformed or longer than 2^31 - 1 seconds.
std::optional<std::chrono::seconds> ParseDuration(std::string_view text);

}  // namespace kura

#endif  // KURA_CORE_CLOCK_H_
