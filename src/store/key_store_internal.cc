#include "store/key_store_internal.h"

#include <array>
#include <string_view>

namespace kura::store {
namespace {

// Key store migration 1. A wrapped key references the KEK version that wraps
// it: deleting a KEK version that still wraps a key fails, and inserting a key
// under a KEK version deleted meanwhile (rotated by another node) fails, so no
// key is ever left wrapped by a KEK that is gone. Names carry the key_ prefix
// so the PostgreSQL tables sit beside the data store's in one database and
// can be dumped apart (pg_dump -t 'key_*').
constexpr std::array<std::string_view, 4> kKeyInitial = {
    R"sql(CREATE TABLE key_meta (
  name {text} PRIMARY KEY,
  value {text} NOT NULL
))sql",
    R"sql(CREATE TABLE key_kek_versions (
  version BIGINT PRIMARY KEY,
  wrapped {bytes} NOT NULL,
  created_at BIGINT NOT NULL
))sql",
    R"sql(CREATE TABLE key_wrapped_keys (
  owner {text} NOT NULL,
  purpose BIGINT NOT NULL,
  version BIGINT NOT NULL,
  kek_version BIGINT NOT NULL REFERENCES key_kek_versions (version),
  wrapped {bytes} NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (owner, purpose, version)
))sql",
    // Serves the foreign key's check when a KEK version is deleted.
    R"sql(CREATE INDEX key_wrapped_keys_by_kek ON key_wrapped_keys (kek_version))sql",
};

constexpr std::array<Migration, 1> kKeyMigrations = {
    Migration{1, "key_initial", kKeyInitial},
};

}  // namespace

std::span<const Migration> KeyStoreMigrations() { return kKeyMigrations; }

}  // namespace kura::store
