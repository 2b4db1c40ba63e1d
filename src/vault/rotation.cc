// DEK rotation: a new data key version for a tenant, and the background job
// that re-encrypts the tenant's record versions under it and then destroys
// the older versions (docs/operations/key-rotation.md).
//
// Safety across nodes rests on the store: a record write commits only under
// the tenant's current data key version (store.h, RecordWrite::key_version),
// so once the rotation moved it on, versions under older keys can only
// become fewer. The job walks the tenant's record versions in key order with
// a persisted cursor, rewrites each batch with compare-and-set on (row, old
// key version) in one transaction that also advances the cursor, and
// destroys the old keys only after a last count over the whole tenant finds
// nothing under them.
#include <algorithm>

#include "crypto/aead.h"
#include "crypto/envelope.h"
#include "store/store.h"
#include "vault/body.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

constexpr char kRunning[] = "running";
constexpr char kDone[] = "done";
constexpr int kMaxBatch = 10000;  // the store's scan limit

std::string RotationResource(const std::string& tenant) { return "tenants/" + tenant + "/rotate-key"; }

}  // namespace

Status VaultImpl::RequireKeyRotationRight(const Caller& caller, const std::string& tenant) {
  // An operator rotates any tenant's key (routine hygiene, or after a
  // suspected exposure); the tenant's own admins may rotate theirs (their
  // compliance may demand it), as they administer everything else of it.
  if (RequireStaff(caller, {staff_roles::kOperator}).ok()) return Status::Ok();
  return RequireTenantAdmin(caller, tenant);
}

json VaultImpl::RotationJson(const std::string& tenant, std::int64_t current_version,
                             const std::optional<store::KeyRotationRow>& rotation) const {
  json out = {{"tenant", tenant}, {"data_key_version", current_version}};
  if (!rotation) {
    out["state"] = "none";
    return out;
  }
  out["state"] = rotation->state;
  out["to_version"] = rotation->to_version;
  out["total"] = rotation->total;
  out["done"] = rotation->done;
  out["started_at"] = TimeJson(rotation->started_at);
  out["finished_at"] = rotation->finished_at == 0 ? json(nullptr) : TimeJson(rotation->finished_at);
  return out;
}

Result<Reply> VaultImpl::RotateTenantKey(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kDataKeyRotate, tenant, RotationResource(tenant));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireKeyRotationRight(caller, tenant));
    if (!policy::IsValidName(tenant)) return InvalidArgumentError("tenant: invalid name");
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    // One rotation at a time per node; across nodes two racing starts are
    // still safe (each job re-encrypts to its own version, and a key is
    // destroyed only when nothing under it is left), just wasteful.
    std::lock_guard lock(rotation_start_mu_);
    auto last = store_->GetKeyRotation(tenant);
    if (last.ok() && last->state == kRunning) {
      return AbortedError("a data key rotation of tenant '" + tenant + "' is still running (to version " +
                          std::to_string(last->to_version) + ", " + std::to_string(last->done) + " of " +
                          std::to_string(last->total) + " re-encrypted)");
    }
    if (!last.ok() && last.status().code() != StatusCode::kNotFound) return last.status();

    // The new version is current from here on: every write from now on,
    // on any node, is sealed under it (or refused and sealed again).
    KURA_ASSIGN_OR_RETURN(std::int64_t version, CreateDataKeyVersion(tenant, scope));
    store::KeyRotationRow rotation;
    rotation.tenant_id = tenant;
    rotation.to_version = version;
    rotation.state = kRunning;
    rotation.started_at = NowSeconds();
    KURA_ASSIGN_OR_RETURN(rotation.total, store_->CountRecordVersionsBelowKey(tenant, version));
    // Bookkeeping of the audited key.rotate above (its entry committed with
    // the new version). Should this fail or the node die first, the old key
    // simply stays until the next rotation re-encrypts what is under it.
    KURA_RETURN_IF_ERROR(store_->PutKeyRotation(rotation, nullptr));
    Reply reply;
    reply.body = RotationJson(tenant, version, rotation);
    reply.created = true;
    return reply;
  }());
}

Result<Reply> VaultImpl::GetTenantKeyRotation(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kDataKeyRotationRead, tenant, RotationResource(tenant));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireKeyRotationRight(caller, tenant));
    if (!policy::IsValidName(tenant)) return InvalidArgumentError("tenant: invalid name");
    auto row = store_->GetTenant(tenant);
    if (row.status().code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
    if (!row.ok()) return row.status();
    std::optional<store::KeyRotationRow> rotation;
    auto last = store_->GetKeyRotation(tenant);
    if (last.ok()) {
      rotation = std::move(last).value();
    } else if (last.status().code() != StatusCode::kNotFound) {
      return last.status();
    }
    Reply reply;
    reply.body = RotationJson(tenant, row->data_key_version, rotation);
    return reply;
  }());
}

Result<ReencryptProgress> VaultImpl::ReencryptStep(int batch_size) {
  batch_size = std::clamp(batch_size, 1, kMaxBatch);
  std::lock_guard lock(rotation_mu_);
  KURA_RETURN_IF_ERROR(RequireUnsealed());
  ReencryptProgress progress;
  KURA_ASSIGN_OR_RETURN(std::vector<store::KeyRotationRow> running, store_->ListRunningKeyRotations());
  if (running.empty()) return progress;
  // Round robin: the first tenant after the one served last, so one large
  // tenant does not hold up the others.
  auto it = std::find_if(running.begin(), running.end(),
                         [this](const store::KeyRotationRow& r) { return r.tenant_id > last_rotated_tenant_; });
  const store::KeyRotationRow& job = it == running.end() ? running.front() : *it;
  last_rotated_tenant_ = job.tenant_id;
  const std::string& tenant = job.tenant_id;
  progress.idle = false;
  progress.tenant = tenant;

  KURA_ASSIGN_OR_RETURN(std::vector<store::StoredCiphertext> rows,
                        store_->ScanRecordVersionsBelowKey(tenant, job.to_version, job.cursor, batch_size));
  if (rows.empty()) return FinishRotation(job);

  KURA_ASSIGN_OR_RETURN(std::shared_ptr<const TenantKeys> keys, KeysOf(tenant));
  KURA_ASSIGN_OR_RETURN(keys, KeysFor(tenant, keys, job.to_version));
  std::vector<store::CiphertextRewrite> rewrites;
  rewrites.reserve(rows.size());
  for (const store::StoredCiphertext& row : rows) {
    KURA_ASSIGN_OR_RETURN(keys, KeysFor(tenant, keys, row.key_version));
    // The same associated data as when it was written: the ciphertext stays
    // bound to its tenant, collection, record and version.
    Bytes ad = crypto::RecordAssociatedData(tenant, row.key.collection, row.key.record_id, row.key.version);
    auto plain = crypto::AeadOpen(*keys->DataKey(row.key_version), row.ciphertext, ad);
    if (!plain.ok()) {
      return DataLossError("record '" + row.key.record_id + "' version " + std::to_string(row.key.version) +
                           " of collection '" + row.key.collection + "' failed its integrity check");
    }
    const SecretBytes* to_key = keys->DataKey(job.to_version);
    if (to_key == nullptr) return InternalError("the rotation's data key version is unknown");
    KURA_ASSIGN_OR_RETURN(Bytes sealed, crypto::AeadSeal(*to_key, plain->view(), ad));
    rewrites.push_back(store::CiphertextRewrite{row.key, row.key_version, std::move(sealed)});
  }
  auto rewritten = store_->RewriteRecordCiphertexts(tenant, job.to_version, rewrites, rows.back().key);
  // Aborted: the rotation is no longer running (finished by another node
  // meanwhile, or its tenant deleted): nothing was written, nothing to do.
  if (rewritten.status().code() == StatusCode::kAborted) return progress;
  if (!rewritten.ok()) return rewritten.status();
  progress.scanned = static_cast<std::int64_t>(rows.size());
  progress.rewritten = *rewritten;
  return progress;
}

Result<ReencryptProgress> VaultImpl::FinishRotation(const store::KeyRotationRow& job) {
  const std::string& tenant = job.tenant_id;
  ReencryptProgress progress;
  progress.idle = false;
  progress.tenant = tenant;
  // The cursor reached the end. Writes cannot add versions under older keys
  // (the store refuses them), but the old keys are destroyed only on the
  // evidence of the whole tenant, not of the walk alone.
  KURA_ASSIGN_OR_RETURN(std::int64_t left, store_->CountRecordVersionsBelowKey(tenant, job.to_version));
  if (left > 0) {
    // Walk again from the start (an empty batch moves only the cursor).
    auto restarted = store_->RewriteRecordCiphertexts(tenant, job.to_version, {}, store::RecordVersionKey{});
    if (!restarted.ok() && restarted.status().code() != StatusCode::kAborted) return restarted.status();
    return progress;
  }
  AuditScope scope(this, RequestContext{}, "system", actions::kDataKeyReencrypted, tenant, RotationResource(tenant));
  Status s = scope.Finish([&]() -> Status {
    // key.destroy is audited on its own; a crash between it and the row
    // below repeats it at the next step, which then finds nothing to destroy.
    KURA_RETURN_IF_ERROR(DestroyDataKeysBelow(tenant, job.to_version));
    store::KeyRotationRow done = job;
    done.state = kDone;
    done.finished_at = NowSeconds();
    return store_->PutKeyRotation(done, scope.Change());
  }());
  KURA_RETURN_IF_ERROR(s);
  progress.finished = true;
  return progress;
}

}  // namespace kura::vault
