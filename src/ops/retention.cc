#include "ops/retention.h"

#include <pthread.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "core/log.h"

namespace kura::ops {
namespace {
std::atomic<std::int64_t> g_destroyed{0};
}  // namespace

std::int64_t RetentionJob::DestroyedInProcess() { return g_destroyed.load(); }

void RetentionJob::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kura-retention");
    while (Wait(options_.interval)) {
      RunPass();
      PurgeSessions();
    }
  });
}

void RetentionJob::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RetentionJob::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

std::int64_t RetentionJob::InBatches(const std::function<Result<std::int64_t>(int)>& call, std::string_view what) {
  const int batch = options_.batch_size < 1 ? 1 : options_.batch_size;
  std::int64_t total = 0;
  for (;;) {
    auto done = call(batch);
    if (!done.ok()) {
      // Sealed: nothing may be deleted now; the next pass tries again.
      if (done.status().code() != StatusCode::kFailedPrecondition) {
        log::Warn("retention: " + std::string(what) + " stopped: " + done.status().message());
      }
      break;
    }
    total += *done;
    if (*done < batch) break;
    // Each batch is its own transaction (or several); the pause between
    // batches leaves the database (and SQLite's single writer) to
    // foreground requests.
    if (!Wait(options_.pause)) break;
  }
  if (total > 0) log::Info("retention: " + std::string(what) + ": " + std::to_string(total));
  return total;
}

std::int64_t RetentionJob::RunPass() {
  return InBatches(
      [this](int batch) {
        auto destroyed = vault_->ExpireRecords(batch);
        if (destroyed.ok()) g_destroyed.fetch_add(*destroyed);
        return destroyed;
      },
      "records destroyed past their retention");
}

std::int64_t RetentionJob::PurgeSessions() {
  return InBatches([this](int batch) { return vault_->PurgeEndedSessions(batch); }, "ended sessions deleted");
}

}  // namespace kura::ops
