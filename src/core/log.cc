#include "core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace kura::log {
namespace {

std::shared_ptr<spdlog::logger>& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_logger_mt("kura");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    return l;
  }();
  return logger;
}

std::mutex access_mu;
std::shared_ptr<spdlog::logger> access_logger;  // guarded by access_mu; null = off
std::atomic<bool> access_on{false};

}  // namespace

bool SetLevel(std::string_view level) {
  auto& l = Logger();
  if (level == "trace" || level == "debug") l->set_level(spdlog::level::debug);
  else if (level == "info") l->set_level(spdlog::level::info);
  else if (level == "warn") l->set_level(spdlog::level::warn);
  else if (level == "error") l->set_level(spdlog::level::err);
  else return false;
  return true;
}

void Write(Level level, std::string_view message) {
  switch (level) {
    case Level::kDebug: Logger()->debug("{}", message); break;
    case Level::kInfo: Logger()->info("{}", message); break;
    case Level::kWarn: Logger()->warn("{}", message); break;
    case Level::kError: Logger()->error("{}", message); break;
  }
}

bool OpenAccessLog(const std::string& target) {
  std::lock_guard lock(access_mu);
  try {
    if (target == "off") {
      access_logger.reset();
    } else if (target == "stderr") {
      access_logger = spdlog::stderr_logger_mt("access");
    } else {
      access_logger = spdlog::basic_logger_mt("access", target);
    }
  } catch (const spdlog::spdlog_ex&) {
    return false;
  }
  if (access_logger) {
    access_logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ access %v", spdlog::pattern_time_type::utc);
    // Flushed in batches by spdlog; an access log line is not an audit entry.
  }
  access_on = access_logger != nullptr;
  return true;
}

void Access(std::string_view line) {
  if (!access_on.load(std::memory_order_relaxed)) return;
  std::shared_ptr<spdlog::logger> l;
  {
    std::lock_guard lock(access_mu);
    l = access_logger;
  }
  if (l) l->info("{}", line);
}

}  // namespace kura::log
