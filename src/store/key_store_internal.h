// Module-internal: the key store's schema, shared by its SQLite and
// PostgreSQL backends (docs/formats/keys.md).
#ifndef KURA_STORE_KEY_STORE_INTERNAL_H_
#define KURA_STORE_KEY_STORE_INTERNAL_H_

#include <span>

#include "store/migrations.h"

namespace kura::store {

// The key store's migrations, recorded in kKeyMigrationsTable (not
// schema_migrations: on PostgreSQL both table sets share one database).
std::span<const Migration> KeyStoreMigrations();
inline constexpr char kKeyMigrationsTable[] = "key_schema_migrations";

// Stored in the SQLite header of keys.db (PRAGMA application_id): 'kurk', so
// neither kura.db nor keys.db can be opened as the other.
inline constexpr std::int64_t kKeyStoreApplicationId = 0x6B75726B;

}  // namespace kura::store

#endif  // KURA_STORE_KEY_STORE_INTERNAL_H_
