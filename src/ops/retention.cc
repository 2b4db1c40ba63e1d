#include "ops/retention.h"

#include <pthread.h>

#include <atomic>
#include <string>

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

std::int64_t RetentionJob::RunPass() {
  const int batch = options_.batch_size < 1 ? 1 : options_.batch_size;
  std::int64_t total = 0;
  for (;;) {
    auto destroyed = vault_->ExpireRecords(batch);
    if (!destroyed.ok()) {
      // Sealed: nothing may be destroyed now; the next pass tries again.
      if (destroyed.status().code() != StatusCode::kFailedPrecondition) {
        log::Warn("retention: pass stopped: " + destroyed.status().message());
      }
      break;
    }
    total += *destroyed;
    g_destroyed.fetch_add(*destroyed);
    if (*destroyed < batch) break;
    // Each record is its own transaction; the pause between batches leaves
    // the database (and SQLite's single writer) to foreground requests.
    if (!Wait(options_.pause)) break;
  }
  if (total > 0) log::Info("retention: destroyed " + std::to_string(total) + " records past their retention");
  return total;
}

std::int64_t RetentionJob::PurgeSessions() {
  const int batch = options_.batch_size < 1 ? 1 : options_.batch_size;
  std::int64_t total = 0;
  for (;;) {
    auto purged = vault_->PurgeEndedSessions(batch);
    if (!purged.ok()) {
      if (purged.status().code() != StatusCode::kFailedPrecondition) {
        log::Warn("retention: session purge stopped: " + purged.status().message());
      }
      break;
    }
    total += *purged;
    if (*purged < batch || !Wait(options_.pause)) break;
  }
  if (total > 0) log::Info("retention: deleted " + std::to_string(total) + " ended sessions");
  return total;
}

}  // namespace kura::ops
