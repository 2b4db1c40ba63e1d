#include "store/audit_sql.h"

#include <array>
#include <string>

namespace kura::store {
namespace {

constexpr int kFilters = 7;
constexpr unsigned kCombinations = 1u << kFilters;
// Filter columns in bit order; from/to compare at_ms.
constexpr std::array<const char*, kFilters> kConditions = {
    "tenant_id = ", "principal = ", "action = ", "resource = ", "outcome = ", "at_ms >= ", "at_ms < ",
};

std::array<std::string, kCombinations> Build(Dialect dialect) {
  std::array<std::string, kCombinations> out;
  for (unsigned mask = 0; mask < kCombinations; ++mask) {
    int n = 0;
    auto param = [&] { return dialect == Dialect::kSqlite ? std::string("?") : "$" + std::to_string(++n); };
    std::string sql = std::string("SELECT ") + kAuditColumns + " FROM audit_log WHERE seq > " + param();
    for (int i = 0; i < kFilters; ++i) {
      if ((mask & (1u << i)) != 0) sql += std::string(" AND ") + kConditions[static_cast<std::size_t>(i)] + param();
    }
    sql += " ORDER BY seq LIMIT " + param();
    out[mask] = std::move(sql);
  }
  return out;
}

}  // namespace

unsigned AuditFilterMask(const AuditQuery& q) {
  unsigned mask = 0;
  if (q.tenant_id.has_value()) mask |= 1u << 0;
  if (!q.principal.empty()) mask |= 1u << 1;
  if (!q.action.empty()) mask |= 1u << 2;
  if (!q.resource.empty()) mask |= 1u << 3;
  if (!q.outcome.empty()) mask |= 1u << 4;
  if (q.from_ms.has_value()) mask |= 1u << 5;
  if (q.to_ms.has_value()) mask |= 1u << 6;
  return mask;
}

const char* FindAuditSql(Dialect dialect, unsigned mask) {
  // Built on first use, thread-safe (magic statics), never freed.
  static const std::array<std::string, kCombinations> sqlite = Build(Dialect::kSqlite);
  static const std::array<std::string, kCombinations> postgres = Build(Dialect::kPostgres);
  const auto& table = dialect == Dialect::kSqlite ? sqlite : postgres;
  return table[mask % kCombinations].c_str();
}

}  // namespace kura::store
