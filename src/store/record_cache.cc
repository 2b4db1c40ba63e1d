#include "store/record_cache.h"

namespace kura::store {

namespace {

// What an entry costs beyond its strings and ciphertext: the map node, the
// list node and the row's fixed fields, rounded up.
constexpr std::size_t kEntryOverhead = 192;

// A row larger than this share of the cache is not kept: one large document
// would otherwise push out hundreds of small ones.
constexpr std::size_t kMaxShareOfCache = 16;

}  // namespace

std::string RecordCache::Key(const std::string& tenant_id, const std::string& collection, const std::string& id) {
  // Names and ids never hold NUL (the vault checks them), so the key is
  // unambiguous.
  std::string key;
  key.reserve(tenant_id.size() + collection.size() + id.size() + 2);
  key.append(tenant_id).push_back('\0');
  key.append(collection).push_back('\0');
  key.append(id);
  return key;
}

std::uint64_t RecordCache::Ticket() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

std::optional<RecordRow> RecordCache::Find(const std::string& tenant_id, const std::string& collection,
                                           const std::string& id) {
  if (!enabled()) return std::nullopt;
  const std::string key = Key(tenant_id, collection, id);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.row;
}

void RecordCache::Fill(const RecordRow& current, std::uint64_t ticket) {
  if (!enabled() || current.version != current.current_version) return;
  std::string key = Key(current.tenant_id, current.collection, current.id);
  const std::size_t bytes = kEntryOverhead + 2 * key.size() + current.ciphertext.size();
  if (bytes > max_bytes_ / kMaxShareOfCache) return;
  std::lock_guard<std::mutex> lock(mu_);
  // A change began since the row was read: it may be older than the database.
  if (ticket != generation_ || changing_all_ || changing_.count(key) != 0) return;
  if (auto it = entries_.find(key); it != entries_.end()) EraseLocked(it);
  while (bytes_ + bytes > max_bytes_ && !lru_.empty()) EraseLocked(entries_.find(lru_.back()));
  lru_.push_front(key);
  Entry& e = entries_[std::move(key)];
  e.row = current;
  e.bytes = bytes;
  e.lru = lru_.begin();
  bytes_ += bytes;
}

void RecordCache::BeginChange(const std::string& tenant_id, const std::string& collection, const std::string& id) {
  if (!enabled()) return;
  std::string key = Key(tenant_id, collection, id);
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  if (auto it = entries_.find(key); it != entries_.end()) EraseLocked(it);
  changing_.insert(std::move(key));
}

void RecordCache::BeginChangeAll() {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  entries_.clear();
  lru_.clear();
  bytes_ = 0;
  changing_all_ = true;
}

void RecordCache::EndChanges() {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (changing_.empty() && !changing_all_) return;
  // Readers that took their ticket while the change was under way may have
  // read the row from before it: their fills must not land.
  ++generation_;
  changing_.clear();
  changing_all_ = false;
}

RecordCache::Stats RecordCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Stats{hits_, misses_, entries_.size(), bytes_};
}

void RecordCache::EraseLocked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

}  // namespace kura::store
