#include "ops/reencryptor.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>

#include "core/log.h"

namespace kura::ops {
namespace {
std::atomic<std::int64_t> g_rewritten{0};
}  // namespace

std::int64_t Reencryptor::RewrittenInProcess() { return g_rewritten.load(); }

void Reencryptor::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kura-reencrypt");
    Run();
  });
}

void Reencryptor::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Reencryptor::Wait(std::chrono::nanoseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

std::chrono::milliseconds Reencryptor::PauseAfter(std::chrono::nanoseconds batch_time, bool foreground) const {
  if (!foreground) return options_.min_pause;
  const int load = std::clamp(options_.load_percent, 1, 100);
  // Proportional to what the batch cost: a batch slowed down by foreground
  // load (a busy writer, a busy CPU) is followed by a longer pause.
  auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(batch_time * (100 - load) / load);
  return std::max(pause, options_.min_pause);
}

void Reencryptor::Run() {
  std::string last_error;
  std::uint64_t served = vault_->RequestsServed();
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    auto step = vault_->ReencryptStep(options_.batch_size);
    const auto took = std::chrono::steady_clock::now() - start;
    std::chrono::nanoseconds pause = options_.idle_interval;
    if (!step.ok()) {
      // Sealed: nothing to do until unsealed, and nothing worth a log line.
      if (step.status().code() != StatusCode::kFailedPrecondition) {
        // One line per distinct problem, not one per retry.
        if (step.status().message() != last_error) {
          log::Warn("key rotation: re-encryption paused: " + step.status().message());
          last_error = step.status().message();
        }
        pause = options_.error_backoff;
      }
    } else {
      last_error.clear();
      if (!step->idle) {
        g_rewritten.fetch_add(step->rewritten);
        if (step->finished) {
          log::Info("key rotation: tenant '" + step->tenant +
                    "' is re-encrypted; its older data key versions are destroyed");
        }
        const std::uint64_t now_served = vault_->RequestsServed();
        pause = PauseAfter(took, /*foreground=*/now_served != served);
        served = now_served;
      }
    }
    if (!Wait(pause)) return;
  }
}

}  // namespace kura::ops
