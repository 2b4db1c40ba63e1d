#include "store/audit_sql.h"

#include <algorithm>
#include <array>
#include <string>

namespace kura::store {
namespace {

constexpr int kFilters = 7;
// One more bit after the filters: newest first.
constexpr unsigned kNewestBit = 1u << kFilters;
constexpr unsigned kCombinations = 1u << (kFilters + 1);
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
    sql += (mask & kNewestBit) != 0 ? " ORDER BY seq DESC LIMIT " : " ORDER BY seq LIMIT ";
    sql += param();
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
  if (q.newest) mask |= kNewestBit;
  return mask;
}

void FinishAuditPage(const AuditQuery& query, int limit, Page<AuditRow>& page) {
  const bool more = static_cast<int>(page.items.size()) > limit;
  if (more) page.items.pop_back();
  if (query.newest) {
    std::reverse(page.items.begin(), page.items.end());
  } else if (more) {
    page.next = std::to_string(page.items.back().seq);
  }
}

const char* FindAuditSql(Dialect dialect, unsigned mask) {
  // Built on first use, thread-safe (magic statics), never freed.
  static const std::array<std::string, kCombinations> sqlite = Build(Dialect::kSqlite);
  static const std::array<std::string, kCombinations> postgres = Build(Dialect::kPostgres);
  const auto& table = dialect == Dialect::kSqlite ? sqlite : postgres;
  return table[mask % kCombinations].c_str();
}

}  // namespace kura::store
