// TtlCache: a small thread-safe map whose entries expire after a fixed time.
// The vault uses it for what every request would otherwise read from the
// store (API keys by token hash, roles, collection schemas). Changes made
// through this process erase entries at once; the TTL bounds how long a change
// made by another node sharing the database can go unseen.
//
// Thread safety: all methods are safe to call concurrently.
#ifndef KURA_VAULT_TTL_CACHE_H_
#define KURA_VAULT_TTL_CACHE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"

namespace kura::vault {

template <typename V>
class TtlCache {
 public:
  TtlCache(const Clock* clock, std::chrono::seconds ttl, std::size_t max_entries)
      : clock_(clock), ttl_(ttl), max_entries_(max_entries) {}

  std::optional<V> Get(const std::string& key) const {
    std::shared_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || clock_->Now() >= it->second.expires) return std::nullopt;
    return it->second.value;
  }

  // Changes whenever an entry is erased. Read it before loading a value from
  // the store and pass it to Put: a load that raced with an erase (say, a key
  // revoked meanwhile) is then not cached.
  std::uint64_t Generation() const {
    std::shared_lock lock(mu_);
    return generation_;
  }

  void Put(const std::string& key, V value, std::uint64_t generation) {
    std::unique_lock lock(mu_);
    if (generation != generation_) return;
    // Bounded memory: when full, start over rather than track recency; a
    // refill costs one store read per entry.
    if (map_.size() >= max_entries_ && !map_.contains(key)) map_.clear();
    map_.insert_or_assign(key, Entry{std::move(value), clock_->Now() + ttl_});
  }

  void Erase(const std::string& key) {
    std::unique_lock lock(mu_);
    ++generation_;
    map_.erase(key);
  }

  void EraseIf(const std::function<bool(const std::string&, const V&)>& pred) {
    std::unique_lock lock(mu_);
    ++generation_;
    std::erase_if(map_, [&](const auto& kv) { return pred(kv.first, kv.second.value); });
  }

  void Clear() {
    std::unique_lock lock(mu_);
    ++generation_;
    map_.clear();
  }

 private:
  struct Entry {
    V value;
    TimePoint expires;
  };
  const Clock* clock_;
  std::chrono::seconds ttl_;
  std::size_t max_entries_;
  mutable std::shared_mutex mu_;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, Entry> map_;
};

}  // namespace kura::vault

#endif  // KURA_VAULT_TTL_CACHE_H_
