// Retention: crypto-shredding of records past their collection's retention
// (docs/operations/retention.md). The vault's side is one pass over every
// tenant's collections that declare retention_days, and the deletion of
// ended sessions; ops/retention.cc runs both on the lease holder at an
// interval.
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "vault/schema.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

// Tenants and collections are read in pages of this size.
constexpr int kScanPage = 100;

// The audit resource of a record, as on the request path.
std::string ExpiredRecordResource(const std::string& collection, const std::string& id) {
  return "collections/" + collection + "/records/" + id;
}

}  // namespace

Result<std::int64_t> VaultImpl::ExpireRecords(int max_records) {
  if (max_records < 1) return InvalidArgumentError("max_records must be at least 1");
  // Sealed is the operator's "stop everything": destroying data then would
  // act behind their back, so the job waits for the unseal.
  KURA_RETURN_IF_ERROR(RequireUnsealed());
  const std::int64_t now = NowSeconds();
  std::int64_t destroyed = 0;
  store::PageRequest tenants_page;
  tenants_page.limit = kScanPage;
  for (;;) {
    KURA_ASSIGN_OR_RETURN(auto tenants, store_->ListTenants(tenants_page));
    for (const store::TenantRow& tenant : tenants.items) {
      store::PageRequest collections_page;
      collections_page.limit = kScanPage;
      for (;;) {
        auto collections = store_->ListCollections(tenant.id, collections_page);
        // A tenant deleted during the pass has nothing left to expire.
        if (collections.status().code() == StatusCode::kNotFound) break;
        if (!collections.ok()) return collections.status();
        for (const store::CollectionRow& collection : collections->items) {
          auto schema = ParseSchema(json::parse(collection.schema_json, nullptr, /*allow_exceptions=*/false));
          if (!schema.ok()) {
            // Skipping is the safe side: a damaged schema must not make
            // records look expired, and the other collections still expire.
            log::Error("retention: the stored schema of a collection of tenant '" + tenant.id +
                       "' is malformed; its records are not expired");
            continue;
          }
          if (!schema->retention_days) continue;
          const std::int64_t cutoff = now - *schema->retention_days * kSecondsPerDay;
          std::string after;  // the last id listed: each page starts past the one before
          while (destroyed < max_records) {
            const int want = static_cast<int>(std::min<std::int64_t>(max_records - destroyed, kScanPage));
            KURA_ASSIGN_OR_RETURN(auto ids,
                                  store_->ListRecordsUpdatedBefore(tenant.id, collection.name, cutoff, after, want));
            if (!ids.empty()) after = ids.back();
            for (const std::string& id : ids) {
              AuditScope scope(this, RequestContext{}, "system", actions::kRecordExpire, tenant.id,
                               ExpiredRecordResource(collection.name, id));
              Status s = store_->ExpireRecord(tenant.id, collection.name, id, cutoff, scope.Change());
              // Updated or deleted since it was listed: nothing was destroyed,
              // so there is nothing to record either.
              if (s.code() == StatusCode::kAborted || s.code() == StatusCode::kNotFound) continue;
              KURA_RETURN_IF_ERROR(scope.Finish(s));
              ++destroyed;
            }
            if (static_cast<int>(ids.size()) < want) break;
          }
          if (destroyed >= max_records) return destroyed;
        }
        if (!collections->next) break;
        collections_page.after = *collections->next;
      }
    }
    if (!tenants.next) break;
    tenants_page.after = *tenants.next;
  }
  return destroyed;
}

Result<std::int64_t> VaultImpl::PurgeEndedSessions(int max_sessions) {
  if (max_sessions < 1) return InvalidArgumentError("max_sessions must be at least 1");
  KURA_RETURN_IF_ERROR(RequireUnsealed());
  AuditScope scope(this, RequestContext{}, "system", actions::kSessionPurge, "", "sessions");
  auto purged = store_->PurgeEndedSessions(NowSeconds() - kSessionKeptAfterEnd, max_sessions, scope.Change());
  // None had ended: nothing was deleted, so there is nothing to record.
  if (purged.status().code() == StatusCode::kNotFound) return std::int64_t{0};
  KURA_RETURN_IF_ERROR(scope.Finish(purged.status()));
  return std::int64_t{*purged};
}

}  // namespace kura::vault
