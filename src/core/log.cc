#include "core/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kura::log {
namespace {

// Access lines gathered in memory and written to a file descriptor in large
// pieces. spdlog's stderr sink flushes after every line (a write(2) per
// request, a costly trip on a virtual machine); its file sink leaves lines in
// stdio's buffer for as long as it takes to fill. This one writes at
// kAccessFlushBytes, on flush() (every second, spdlog::flush_every) and when
// destroyed.
class BufferedFdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static constexpr std::size_t kAccessFlushBytes = 32 * 1024;

  // Takes ownership of `fd` when `owned`.
  BufferedFdSink(int fd, bool owned) : fd_(fd), owned_(owned) { buffer_.reserve(kAccessFlushBytes * 2); }
  ~BufferedFdSink() override {
    std::lock_guard<std::mutex> lock(mutex_);
    WriteOut();
    if (owned_) ::close(fd_);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    buffer_.append(formatted.data(), formatted.size());
    if (buffer_.size() >= kAccessFlushBytes) WriteOut();
  }
  void flush_() override { WriteOut(); }

 private:
  // A failed write drops the buffered lines (as a full disk would) rather
  // than letting the buffer grow without bound.
  void WriteOut() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  int fd_;
  bool owned_;
  std::string buffer_;
};

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
  if (target != "off") {
    std::shared_ptr<BufferedFdSink> sink;
    if (target == "stderr") {
      sink = std::make_shared<BufferedFdSink>(STDERR_FILENO, /*owned=*/false);
    } else {
      // Appended to, created 0600 if missing (the lines name principals).
      int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) return false;
      sink = std::make_shared<BufferedFdSink>(fd, /*owned=*/true);
    }
    logger = std::make_shared<spdlog::logger>("access" + std::to_string(access_loggers.size()), std::move(sink));
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ access %v", spdlog::pattern_time_type::utc);
    try {
      spdlog::register_logger(logger);  // so flush_every reaches it
    } catch (const spdlog::spdlog_ex&) {
      return false;
    }
    access_loggers.push_back(logger);
    static std::once_flag flusher;
    std::call_once(flusher, [] { spdlog::flush_every(std::chrono::seconds(1)); });
  }
  access_logger.store(logger.get(), std::memory_order_release);
  return true;
}

bool AccessEnabled() { return access_logger.load(std::memory_order_acquire) != nullptr; }

void Access(std::string_view line) {
  spdlog::logger* l = access_logger.load(std::memory_order_acquire);
  if (l != nullptr) l->info("{}", line);
}

void FlushAccessLog() {
  spdlog::logger* l = access_logger.load(std::memory_order_acquire);
  if (l != nullptr) l->flush();
}

}  // namespace kura::log
