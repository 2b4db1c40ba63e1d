#include "ops/storage_monitor.h"

#include <pthread.h>

namespace kura::ops {
namespace {

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void StorageMonitor::PollOnce() {
  auto status = store_->GetStorageStatus();
  const std::int64_t now = NowMs();
  std::lock_guard lock(mu_);
  snapshot_.checked_at_ms = now;
  if (status.ok()) {
    snapshot_.reachable = true;
    snapshot_.error.clear();
    snapshot_.last_ok_at_ms = now;
    snapshot_.status = std::move(status).value();
  } else {
    snapshot_.reachable = false;
    snapshot_.error = status.status().message();
  }
}

void StorageMonitor::Start() {
  PollOnce();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kura-storage");
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      PollOnce();
      lock.lock();
    }
  });
}

void StorageMonitor::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

StorageSnapshot StorageMonitor::Snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

}  // namespace kura::ops
