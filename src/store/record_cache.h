// RecordCache: the current version of recently read records, as stored —
// sealed, never decrypted — in front of the SQLite store's GetRecord.
//
// Why a cache in front of an embedded database: SQLite drops a reader
// connection's whole page cache whenever the database changed, and with every
// request audited the database changes at every group commit, so each record
// read re-read its B-tree pages from the OS (pread) and took the WAL read lock
// (fcntl) — system calls that are most of a read's cost. Vault keeps an LRU
// cache in front of its storage backends for the same reason.
//
// Coherence (the reason this lives in the store, beside its only writer): the
// SQLite store is the one process writing its database (it holds the
// database's lock file, sqlite_internal.h), and every change of an existing
// record runs on its writer thread. Before such a change, inside the batch's
// transaction, the writer calls BeginChange (or BeginChangeAll for changes of
// many records); after the batch committed or rolled back, EndChanges. A key
// being changed is erased and cannot be filled until EndChanges, and a reader
// fills only if no change began since it took its ticket, so a row read
// before a change never lands in the cache after it. New records need no
// mark: a missing record is never cached.
//
// Thread safety: all methods are safe to call concurrently.
#ifndef KURA_STORE_RECORD_CACHE_H_
#define KURA_STORE_RECORD_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "store/store.h"

namespace kura::store {

class RecordCache {
 public:
  // `max_bytes` bounds the rows kept (ciphertext, names and bookkeeping);
  // 0 turns the cache off. The least recently read row goes first.
  explicit RecordCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}
  RecordCache(const RecordCache&) = delete;
  RecordCache& operator=(const RecordCache&) = delete;

  bool enabled() const { return max_bytes_ > 0; }

  // Readers. Take a ticket before reading a row from the database, and pass
  // it to Fill with the row read.
  std::uint64_t Ticket() const;
  std::optional<RecordRow> Find(const std::string& tenant_id, const std::string& collection, const std::string& id);
  void Fill(const RecordRow& current, std::uint64_t ticket);

  // The writer thread, inside the transaction that changes or deletes
  // existing records, before the change; EndChanges after that transaction
  // committed or rolled back.
  void BeginChange(const std::string& tenant_id, const std::string& collection, const std::string& id);
  void BeginChangeAll();
  void EndChanges();

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::size_t entries = 0;
    std::size_t bytes = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    RecordRow row;
    std::size_t bytes = 0;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recent)
  };

  static std::string Key(const std::string& tenant_id, const std::string& collection, const std::string& id);
  void EraseLocked(std::unordered_map<std::string, Entry>::iterator it);

  const std::size_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  std::size_t bytes_ = 0;
  // Advanced by every BeginChange, BeginChangeAll and EndChanges that ended
  // a change: a fill whose ticket is older may hold a row from before it.
  std::uint64_t generation_ = 0;
  std::unordered_set<std::string> changing_;
  bool changing_all_ = false;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace kura::store

#endif  // KURA_STORE_RECORD_CACHE_H_
