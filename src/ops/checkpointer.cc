#include "ops/checkpointer.h"

#include <pthread.h>

#include <atomic>

#include "core/log.h"

namespace kura::ops {
namespace {
std::atomic<std::int64_t> g_runs{0};
}  // namespace

std::int64_t Checkpointer::RunsInProcess() { return g_runs.load(); }

void Checkpointer::Start() {
  if (thread_.joinable()) return;
  {
    // Restartable: a node that lost its lease and got it back starts again.
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kura-checkpoint");
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      Tick();
      lock.lock();
    }
  });
}

void Checkpointer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    Tick();
  }
}

void Checkpointer::Tick() {
  g_runs.fetch_add(1);
  Status s = vault_->WriteCheckpoint();
  // Sealed: no key to sign with; not an error worth a log line per tick.
  if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) {
    log::Warn("audit: cannot write a checkpoint: " + s.message());
  }
}

}  // namespace kura::ops
