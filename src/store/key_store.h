// KeyStore: where kura keeps its wrapped keys, apart from the data store
// (store.h), so that a backup of the data never holds a key and destroying a
// key makes every old data backup of it unreadable (docs/formats/keys.md).
//
// It holds:
//   - KEK versions, each wrapped by the seal key (the newest is current);
//   - wrapped keys: per tenant its data keys (several versions) and its
//     blind-index key, and the vault's own keys (owner ""), each wrapped by
//     one KEK version;
//   - small named values (the description of the seal the KEKs are wrapped
//     with).
// Like the data store it sees only wrapped (encrypted) keys, never a key.
//
// Backends: its own SQLite file (`<data>/keys.db`, WAL, synchronous=FULL,
// mode 0600) or its own tables (key_*) in the PostgreSQL database of the data
// store. Every mutating call is one transaction, durable when it returns OK.
//
// Thread safety: all methods are safe to call concurrently. Calls are rare
// (unseal, a tenant's first use, rotation), so backends serialise them.
#ifndef KURA_STORE_KEY_STORE_H_
#define KURA_STORE_KEY_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "store/store.h"

namespace kura::store {

// A KEK version, wrapped by the seal key.
struct KekVersionRow {
  std::int64_t version = 0;  // 1, 2, …; the largest is current
  Bytes wrapped;
  std::int64_t created_at = 0;  // unix seconds
};

// A key wrapped by one KEK version.
struct WrappedKeyRow {
  std::string owner;             // tenant id; "" = the vault's own keys
  int purpose = 0;               // crypto::KeyPurpose value
  std::int64_t version = 1;      // version of this key (data keys rotate)
  std::int64_t kek_version = 0;  // the KEK version that wraps it
  Bytes wrapped;
  std::int64_t created_at = 0;   // unix seconds
};

// Names of KeyStore meta values.
inline constexpr char kKeyMetaSeal[] = "seal";  // JSON: {"type", "shares"?, "threshold"?}

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // A named value. NotFound when absent.
  virtual Result<std::string> GetMeta(const std::string& name) = 0;

  // --- KEK versions.
  // Every stored KEK version, ascending (empty before initialisation).
  virtual Result<std::vector<KekVersionRow>> ListKekVersions() = 0;
  // Stores the first KEK version and the seal description together.
  // AlreadyExists when a KEK version is stored already.
  virtual Status Initialize(const KekVersionRow& kek, const std::string& seal_json) = 0;
  // KEK rotation, in one transaction: inserts `kek` (a version above every
  // stored one), replaces the wrapped bytes of every key in `rewrapped`
  // (matched by owner, purpose and version; each must have kek_version ==
  // kek.version) and deletes every older KEK version. Aborted, with nothing
  // changed, when the stored keys changed since they were listed (a key was
  // added, destroyed or already rewrapped) or kek.version is taken: list
  // again and retry.
  virtual Status RotateKek(const KekVersionRow& kek, const std::vector<WrappedKeyRow>& rewrapped) = 0;
  // Seal migration, in one transaction: replaces the wrapped bytes of every
  // KEK version (`keks` must name exactly the stored versions) and the seal
  // description. Aborted, with nothing changed, when the versions differ.
  virtual Status ResealKeks(const std::vector<KekVersionRow>& keks, const std::string& seal_json) = 0;

  // --- Wrapped keys.
  // Inserts keys in one transaction. AlreadyExists on a duplicate (owner,
  // purpose, version); NotFound when a key's kek_version is not stored (the
  // KEK was rotated meanwhile: reload the KEK versions and wrap again).
  virtual Status InsertKeys(const std::vector<WrappedKeyRow>& keys) = 0;
  // The keys of one owner, ordered by purpose and version.
  virtual Result<std::vector<WrappedKeyRow>> ListKeys(const std::string& owner) = 0;
  // Every key, ordered by owner, purpose and version.
  virtual Result<std::vector<WrappedKeyRow>> ListAllKeys() = 0;
  // Destroys every key of `owner` (crypto-shredding a tenant). Returns how
  // many were destroyed (0 is fine). The SQLite backend also overwrites the
  // freed space and empties its write-ahead log, so the wrapped bytes are
  // gone from the file, not just unlinked.
  virtual Result<int> DestroyKeys(const std::string& owner) = 0;
  // Destroys the keys of (owner, purpose) with a version below `version`.
  virtual Result<int> DestroyKeysBelow(const std::string& owner, int purpose, std::int64_t version) = 0;
};

struct SqliteKeyStoreOptions {
  std::string path;      // e.g. <data>/keys.db; created 0600 (directory 0700)
  bool durable = true;   // synchronous=FULL; false only for unit tests
};

// Opens (creating and migrating as needed) the SQLite key store. Unavailable
// when the file cannot be opened; FailedPrecondition when it belongs to
// another application or its schema is newer than this binary.
Result<std::unique_ptr<KeyStore>> OpenSqliteKeyStore(const SqliteKeyStoreOptions& options);

// Opens the key store's tables (key_*) in the PostgreSQL database of
// `options` (the data store's options; pool_size is ignored: one
// connection, reopened after a failure). Same errors as OpenPostgresStore.
Result<std::unique_ptr<KeyStore>> OpenPostgresKeyStore(const PostgresOptions& options);

}  // namespace kura::store

#endif  // KURA_STORE_KEY_STORE_H_
