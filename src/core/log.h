// Logging: spdlog behind a thin facade, so only core sees spdlog's headers.
// Never pass secrets, tokens or field values: log ids and outcomes only.
#ifndef KURA_CORE_LOG_H_
#define KURA_CORE_LOG_H_

#include <string>
#include <string_view>

namespace kura::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Sets the minimum level ("debug" | "info" | "warn" | "error"); false if unknown.
bool SetLevel(std::string_view level);
void Write(Level level, std::string_view message);
inline void Debug(std::string_view m) { Write(Level::kDebug, m); }
inline void Info(std::string_view m) { Write(Level::kInfo, m); }
inline void Warn(std::string_view m) { Write(Level::kWarn, m); }
inline void Error(std::string_view m) { Write(Level::kError, m); }

// The access log: one line per request, no secrets and no bodies. `target` is
// "stderr", "off" or a file path.
// Call once at start, before serving; a later call replaces the sink (the old
// one stays alive, so concurrent Access() calls never see a freed logger).
// Lines are buffered, as nginx's `access_log … buffer= flush=`: written when
// 32 KiB have gathered, every second, at FlushAccessLog() and at exit — not
// one write(2) per request. A crash can lose the last second of lines; the
// audit log, not this, is the record of every request.
bool OpenAccessLog(const std::string& target);
// Cheap check (one atomic load) so callers skip formatting when it is off.
bool AccessEnabled();
void Access(std::string_view line);
// Writes out what the access log has buffered (at shutdown).
void FlushAccessLog();

}  // namespace kura::log

#endif  // KURA_CORE_LOG_H_
