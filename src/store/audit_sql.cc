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

constexpr unsigned kTenantBit = 1u << 0;
constexpr unsigned kPrincipalBit = 1u << 1;

// The statement text for one mask: parameters numbered ($n, or ?n in SQLite,
// which lets the block query below use one twice) in AuditFilterMask's order.
std::string BuildOne(Dialect dialect, unsigned mask) {
  const char* sigil = dialect == Dialect::kSqlite ? "?" : "$";
  int n = 0;
  auto param = [&] { return sigil + std::to_string(++n); };
  const bool newest = (mask & kNewestBit) != 0;
  // SQLite with a tenant or principal filter: through that key's blocks
  // (audit_sql.h). CROSS JOIN keeps the blocks as the outer loop; blocks
  // ascending, then seq ascending within each, is seq order, so the planner
  // needs no sort for ORDER BY (in either direction).
  const bool by_block = dialect == Dialect::kSqlite && (mask & (kTenantBit | kPrincipalBit)) != 0;
  std::string sql = "SELECT ";
  if (by_block) {
    const bool tenant = (mask & kTenantBit) != 0;
    const std::string shift = std::to_string(kAuditBlockShift);
    // ?1 is after_seq; ?2 the tenant, or the principal when only it is set.
    sql += std::string("a.seq, a.at_ms, a.tenant_id, a.principal, a.action, a.resource, a.outcome, a.entry, a.hash ") +
           "FROM " +
           (tenant ? "audit_tenant_blocks b CROSS JOIN audit_log a WHERE b.tenant_id = ?2"
                   : "audit_principal_blocks b CROSS JOIN audit_log a WHERE b.principal = ?2") +
           " AND b.block >= ((?1 + 1) >> " + shift + ") AND a.seq >= (b.block << " + shift +
           ") AND a.seq < ((b.block + 1) << " + shift + ") AND a.seq > " + param();
  } else {
    sql += std::string(kAuditColumns) + " FROM audit_log WHERE seq > " + param();
  }
  for (int i = 0; i < kFilters; ++i) {
    if ((mask & (1u << i)) != 0) {
      sql += std::string(" AND ") + (by_block ? "a." : "") + kConditions[static_cast<std::size_t>(i)] + param();
    }
  }
  if (by_block) {
    sql += newest ? " ORDER BY b.block DESC, a.seq DESC LIMIT " : " ORDER BY b.block, a.seq LIMIT ";
  } else {
    sql += newest ? " ORDER BY seq DESC LIMIT " : " ORDER BY seq LIMIT ";
  }
  return sql + param();
}

std::array<std::string, kCombinations> Build(Dialect dialect) {
  std::array<std::string, kCombinations> out;
  for (unsigned mask = 0; mask < kCombinations; ++mask) out[mask] = BuildOne(dialect, mask);
  return out;
}

}  // namespace

unsigned AuditFilterMask(const AuditQuery& q) {
  unsigned mask = 0;
  if (q.tenant_id.has_value()) mask |= kTenantBit;
  if (!q.principal.empty()) mask |= kPrincipalBit;
  if (!q.action.empty()) mask |= 1u << 2;
  if (!q.resource.empty()) mask |= 1u << 3;
  if (!q.outcome.empty()) mask |= 1u << 4;
  if (q.from_ms.has_value()) mask |= 1u << 5;
  if (q.to_ms.has_value()) mask |= 1u << 6;
  if (q.newest) mask |= kNewestBit;
  return mask;
}

Status CheckAuditAppendSeq(std::int64_t next_seq) {
  if (next_seq >= 0 && next_seq < kMaxAuditSeq) return Status::Ok();
  return DataLossError("audit log: the next sequence number (" + std::to_string(next_seq) +
                       ") is out of range: the database was altered; run `kura audit verify`");
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
