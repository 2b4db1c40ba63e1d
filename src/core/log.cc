#include "core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

std::mutex access_mu;  // serialises OpenAccessLog only
// Every access logger ever opened, kept alive for the life of the process so
// the hot path can use a plain atomic pointer without locking or refcounting.
std::vector<std::shared_ptr<spdlog::logger>> access_loggers;  // guarded by access_mu
std::atomic<spdlog::logger*> access_logger{nullptr};

}  // namespace

bool SetLevel(std::string_view level) {
  auto& l = Logger();
  if (level == "trace" || level == "debug")
    l->set_level(spdlog::level::debug);
  else if (level == "info")
    l->set_level(spdlog::level::info);
  else if (level == "warn")
    l->set_level(spdlog::level::warn);
  else if (level == "error")
    l->set_level(spdlog::level::err);
  else
    return false;
  return true;
}

void Write(Level level, std::string_view message) {
  switch (level) {
    case Level::kDebug:
      Logger()->debug("{}", message);
      break;
    case Level::kInfo:
      Logger()->info("{}", message);
      break;
    case Level::kWarn:
      Logger()->warn("{}", message);
      break;
    case Level::kError:
      Logger()->error("{}", message);
      break;
  }
}

bool OpenAccessLog(const std::string& target) {
  std::lock_guard lock(access_mu);
  std::shared_ptr<spdlog::logger> logger;
  try {
    const std::string name = "access" + std::to_string(access_loggers.size());
    if (target == "stderr") {
      logger = spdlog::stderr_logger_mt(name);
    } else if (target != "off") {
      logger = spdlog::basic_logger_mt(name, target);
    }
  } catch (const spdlog::spdlog_ex&) {
    return false;
  }
  if (logger) {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ access %v", spdlog::pattern_time_type::utc);
    access_loggers.push_back(logger);
  }
  access_logger.store(logger.get(), std::memory_order_release);
  return true;
}

bool AccessEnabled() { return access_logger.load(std::memory_order_acquire) != nullptr; }

void Access(std::string_view line) {
  spdlog::logger* l = access_logger.load(std::memory_order_acquire);
  if (l != nullptr) l->info("{}", line);
}

}  // namespace kura::log
