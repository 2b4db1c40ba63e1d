// Small helpers shared by the store's tests. Tests only.
#ifndef KURA_STORE_STORE_TEST_UTIL_H_
#define KURA_STORE_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace kura::store {

inline Bytes B(std::string_view s) { return ToBytes(s); }

// A tenant row as Store::CreateTenant takes it.
inline TenantRow Tenant(const std::string& id) {
  TenantRow t;
  t.id = id;
  t.name = "Tenant " + id;
  t.region = "eu";
  t.created_at = 1700000000;
  return t;
}

// An SQLite store at `path` that skips its syncs, for a test that needs a
// real store beside what it tests. nullptr, and a test failure, if it does
// not open.
inline std::unique_ptr<Store> OpenScratchSqliteStore(const std::string& path) {
  SqliteOptions options;
  options.path = path;
  options.durable = false;
  auto opened = OpenSqliteStore(options);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? std::move(opened).value() : nullptr;
}

}  // namespace kura::store

#endif  // KURA_STORE_STORE_TEST_UTIL_H_
