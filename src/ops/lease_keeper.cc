#include "ops/lease_keeper.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/log.h"

namespace kura::ops {

LeaseKeeper::LeaseKeeper(store::Store* store, std::string name, std::string node_id, std::chrono::milliseconds ttl,
                         std::function<void(bool holding)> on_change)
    : store_(store),
      name_(std::move(name)),
      node_id_(std::move(node_id)),
      ttl_(std::max(ttl, std::chrono::milliseconds(300))),
      on_change_(std::move(on_change)) {}

std::string LeaseKeeper::DefaultNodeId(const std::string& site, const std::string& data_dir) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::error_code ec;
  std::string path = std::filesystem::weakly_canonical(data_dir, ec).string();
  if (ec || path.empty()) path = data_dir;
  // FNV-1a: stable across builds and runs (std::hash is not promised to be).
  std::uint32_t h = 2166136261u;
  for (unsigned char c : path) h = (h ^ c) * 16777619u;
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", h);
  return site + "/" + (host[0] != '\0' ? host : "host") + "/" + hex;
}

std::chrono::milliseconds LeaseKeeper::TtlFor(std::chrono::milliseconds checkpoint_interval) {
  return std::clamp(checkpoint_interval * 3, std::chrono::milliseconds(3000), std::chrono::milliseconds(30000));
}

void LeaseKeeper::Start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kura-lease");
    Run();
  });
}

void LeaseKeeper::Set(bool holding) {
  if (holding_.load() == holding) return;
  holding_.store(holding);
  log::Info(std::string("lease ") + name_ + (holding ? ": this node (" + node_id_ + ") holds it; starting its jobs"
                                                     : ": no longer held by this node; its jobs are paused"));
  if (on_change_) on_change_(holding);
}

void LeaseKeeper::Run() {
  using Clock = std::chrono::steady_clock;
  const auto renew_every = ttl_ / 3;
  // Let go this long before the lease can expire in the database: covers
  // the difference between the database's and this node's clock rates.
  const auto margin = std::max(std::chrono::milliseconds(100), ttl_ / 10);
  Clock::time_point valid_until{};  // end of the lease as this node counts it
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const auto sent = Clock::now();
    auto held = store_->HoldLease(name_, node_id_, ttl_);
    const auto now = Clock::now();
    if (held.ok() && *held) {
      valid_until = sent + ttl_ - margin;
      Set(now < valid_until);
    } else if (held.ok()) {
      valid_until = {};
      Set(false);
    } else {
      // Database unreachable: keep running only while the last renewal
      // still covers us.
      if (holding_.load()) log::Warn("lease " + name_ + ": cannot renew: " + held.status().message());
      Set(now < valid_until);
    }
    lock.lock();
    auto wake = Clock::now() + renew_every;
    if (holding_.load() && valid_until < wake) wake = valid_until;
    cv_.wait_until(lock, wake, [this] { return stopping_; });
  }
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (holding_.load()) {
    Set(false);
    // Best effort: if it fails, the lease simply expires after its ttl.
    if (Status s = store_->ReleaseLease(name_, node_id_); !s.ok()) {
      log::Warn("lease " + name_ + ": cannot release: " + s.message());
    }
  }
}

}  // namespace kura::ops
