// Small helpers shared by the store's tests. Tests only.
#ifndef KURA_STORE_STORE_TEST_UTIL_H_
#define KURA_STORE_STORE_TEST_UTIL_H_

#include <string>
#include <string_view>

#include "core/bytes.h"
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

}  // namespace kura::store

#endif  // KURA_STORE_STORE_TEST_UTIL_H_
