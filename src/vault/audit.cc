// The vault's side of the audit log: one entry per request (AuditScope), the
// checkpoint signing key, checkpoints, trails and proofs.
#include <atomic>
#include <charconv>
#include <mutex>

#include "audit/checkpoint.h"
#include "core/log.h"
#include "crypto/envelope.h"
#include "policy/policy.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

constexpr char kSigningKeyMeta[] = "audit.signing_key";
// Format 2: the public key only; the seed moved to the key store.
constexpr int kSigningKeyFormat = 2;
constexpr char kSuccess[] = "success";
constexpr char kAuditUnavailable[] = "audit log unavailable: the request was not carried out";
constexpr int kMaxTrailPage = 1000;
constexpr int kMaxCheckpointPage = 1000;

std::string OutcomeOf(const Status& status) {
  return status.ok() ? kSuccess : std::string(StatusCodeName(status.code()));
}

Result<std::int64_t> ParseNonNegative(const std::string& text, std::string_view what) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < 0) {
    return InvalidArgumentError(std::string(what) + ": must be a non-negative integer");
  }
  return value;
}

// RFC 3339 or unix milliseconds.
Result<std::int64_t> ParseTimeMillis(const std::string& text, std::string_view what) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    return ParseNonNegative(text, what);
  }
  auto t = ParseRfc3339(text);
  if (!t) return InvalidArgumentError(std::string(what) + ": must be RFC 3339 or unix milliseconds");
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

std::string FormatMillis(std::int64_t ms) {
  return FormatRfc3339(TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(ms))));
}

std::vector<std::string> HexList(const std::vector<Bytes>& hashes) {
  std::vector<std::string> out;
  out.reserve(hashes.size());
  for (const Bytes& h : hashes) out.push_back(HexEncode(h));
  return out;
}

json CheckpointJson(const store::AuditCheckpointRow& row) {
  return {{"tree_size", row.tree_size},
          {"at", FormatMillis(row.at_ms)},
          {"root", HexEncode(row.root)},
          {"note", row.note},
          {"signature", HexEncode(row.signature)}};
}

Status CheckKeys(const AuditFilters& filters, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : filters) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) return InvalidArgumentError("unknown query parameter '" + key + "'");
  }
  return Status::Ok();
}

thread_local AuditDeferral* t_audit_deferral = nullptr;

}  // namespace

// --- Deferred durability ------------------------------------------------------------

struct AuditDeferral::State {
  std::mutex mu;
  int queued = 0;   // ever, while installed
  int pending = 0;  // queued and not yet complete
  Status failure;  // the first failed entry's status
  std::function<void(Status)> done;

  void Add() {
    std::lock_guard lock(mu);
    ++queued;
    ++pending;
  }
  void Complete(Status status) {
    std::function<void(Status)> fire;
    Status result;
    {
      std::lock_guard lock(mu);
      if (!status.ok() && failure.ok()) failure = std::move(status);
      if (--pending == 0 && done) {
        fire = std::move(done);
        result = failure;
      }
    }
    if (fire) fire(std::move(result));
  }
};

AuditDeferral::AuditDeferral() : state_(std::make_shared<State>()) {}

AuditDeferral::~AuditDeferral() { Uninstall(); }

void AuditDeferral::Install(bool changes) {
  if (installed_) return;
  changes_ = changes;
  outer_ = t_audit_deferral;
  t_audit_deferral = this;
  installed_ = true;
}

void AuditDeferral::Uninstall() {
  if (!installed_) return;
  t_audit_deferral = outer_;
  outer_ = nullptr;
  installed_ = false;
}

AuditDeferral* AuditDeferral::Current() { return t_audit_deferral; }

bool AuditDeferral::Queued() const {
  std::lock_guard lock(state_->mu);
  return state_->queued > 0;
}

void AuditDeferral::OnDurable(std::function<void(Status)> done) {
  Status result;
  {
    std::lock_guard lock(state_->mu);
    if (state_->pending > 0) {
      state_->done = std::move(done);
      return;
    }
    result = state_->failure;
  }
  done(std::move(result));
}

// --- AuditScope ---------------------------------------------------------------

// Notes whether the store linked the entry into the chain, i.e. wrote it in
// the change's transaction: a call that succeeded without that still needs
// its entry appended.
class AuditScope::ChangeEntry final : public store::AuditLink {
 public:
  explicit ChangeEntry(audit::Event event) : entry_(std::move(event)) {}
  store::AuditRow Link(std::int64_t seq, ByteView prev_hash) const override {
    linked_.store(true, std::memory_order_release);
    return entry_.Link(seq, prev_hash);
  }
  bool linked() const { return linked_.load(std::memory_order_acquire); }

 private:
  audit::PendingEntry entry_;
  mutable std::atomic<bool> linked_{false};
};

AuditScope::AuditScope(VaultImpl* vault, const Caller& caller, std::string_view action, std::string tenant,
                       std::string resource)
    : AuditScope(vault, caller.context, caller.principal.LogName(), action, std::move(tenant), std::move(resource)) {}

namespace {
thread_local AuditScope* t_current_scope = nullptr;
}  // namespace

void AuditScope::NoteGrant(const std::string& grant_ids) {
  if (t_current_scope != nullptr) t_current_scope->event_.grant_id = grant_ids;
}

AuditScope::AuditScope(VaultImpl* vault, const RequestContext& context, std::string principal,
                       std::string_view action, std::string tenant, std::string resource)
    : vault_(vault), outer_(t_current_scope) {
  t_current_scope = this;
  event_.principal = std::move(principal);
  event_.tenant = std::move(tenant);
  event_.action = std::string(action);
  event_.resource = std::move(resource);
  event_.client = context.client_address;
  event_.request_id = context.request_id;
  event_.reason = context.reason;
  // Background jobs watch this to tell whether clients are being served.
  if (event_.principal != "system") vault_->requests_served_.fetch_add(1, std::memory_order_relaxed);
}

AuditScope::~AuditScope() { t_current_scope = outer_; }

const store::AuditLink* AuditScope::Change() {
#ifdef KURA_BENCH_UNAUDITED
  return nullptr;  // benchmark build without the audit log (CMakeLists.txt)
#endif
  audit::Event event = event_;
  event.at_ms = vault_->NowMillis();
  event.outcome = kSuccess;
  change_ = std::make_unique<ChangeEntry>(std::move(event));
  change_outcome_.reset();
  return change_.get();
}

const store::AuditLink* AuditScope::FailureChange(const Status& outcome) {
#ifdef KURA_BENCH_UNAUDITED
  return nullptr;
#endif
  audit::Event event = event_;
  event.at_ms = vault_->NowMillis();
  event.outcome = failure_outcome_.empty() ? OutcomeOf(outcome) : failure_outcome_;
  change_ = std::make_unique<ChangeEntry>(std::move(event));
  change_outcome_ = outcome.code();
  return change_.get();
}

AuditScope::Detached AuditScope::Detach() {
  Detached out;
  audit::Event event = event_;
  event.at_ms = vault_->NowMillis();
  event.outcome = kSuccess;
#ifndef KURA_BENCH_UNAUDITED
  out.change = std::make_unique<audit::PendingEntry>(std::move(event));
#endif
  out.failure = event_;
  detached_ = true;
  return out;
}

Status AuditScope::Finish(Status status) {
  if (detached_) return status;  // the store and the deferral own the entry now
  // The change committed, and its entry with it. A change whose entry
  // records a failure counts only when the call ends with that failure: any
  // other status means the store call itself failed (and rolled back).
  if (change_ && change_->linked()) {
    if (!change_outcome_ && status.ok()) return status;
    if (change_outcome_ && status.code() == *change_outcome_) return status;
  }
  event_.at_ms = vault_->NowMillis();
  event_.outcome = status.ok() || failure_outcome_.empty() ? OutcomeOf(status) : failure_outcome_;
  if (Status appended = vault_->AppendEntry(event_); !appended.ok()) return appended;
  return status;
}

Result<Reply> AuditScope::Finish(Result<Reply> result) {
  Status s = Finish(result.ok() ? Status::Ok() : result.status());
  if (!s.ok()) return s;
  return result;
}

// --- Entries ----------------------------------------------------------------------

std::int64_t VaultImpl::NowMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now().time_since_epoch()).count();
}

Status VaultImpl::AppendEntry(const audit::Event& event) {
#ifdef KURA_BENCH_UNAUDITED
  (void)event;
  return Status::Ok();  // benchmark build without the audit log (CMakeLists.txt)
#endif
  if (AuditDeferral* deferral = AuditDeferral::Current()) {
    // The caller waits for durability itself (AuditDeferral) and sends
    // nothing before it.
    std::shared_ptr<AuditDeferral::State> state = deferral->state();
    state->Add();
    store_->AppendAuditAsync(std::make_unique<audit::PendingEntry>(event), [state](Status s) {
      if (!s.ok()) log::Error("audit: entry not durable, failing the request: " + s.message());
      state->Complete(s.ok() ? std::move(s) : UnavailableError(kAuditUnavailable));
    });
    return Status::Ok();
  }
  audit::PendingEntry entry(event);
  Status s = store_->AppendAudit(entry);
  if (s.ok()) return s;
  log::Error("audit: entry not durable, failing the request: " + s.message());
  return UnavailableError(kAuditUnavailable);
}

void VaultImpl::InsertRecordDeferred(AuditDeferral& deferral, store::RecordWrite write, AuditScope& scope) {
  std::shared_ptr<AuditDeferral::State> state = deferral.state();
  state->Add();
  AuditScope::Detached entry = scope.Detach();
  store_->InsertRecordAsync(
      std::move(write), std::move(entry.change), [this, state, failure = std::move(entry.failure)](Status s) mutable {
        if (s.ok()) {
          state->Complete(std::move(s));
          return;
        }
        // Nothing was written, and the entry with it: record the failure
        // (as Finish would have) before the caller hears of it.
        failure.at_ms = NowMillis();
        failure.outcome = OutcomeOf(s);
#ifdef KURA_BENCH_UNAUDITED
        state->Complete(std::move(s));
#else
        store_->AppendAuditAsync(std::make_unique<audit::PendingEntry>(std::move(failure)),
                                 [state, s](Status appended) mutable {
                                   if (!appended.ok()) {
                                     log::Error("audit: entry not durable, failing the request: " +
                                                appended.message());
                                   }
                                   state->Complete(appended.ok() ? std::move(s) : UnavailableError(kAuditUnavailable));
                                 });
#endif
      });
}

Status VaultImpl::AuditRejected(const Caller& caller, const AuditTarget& target, const Status& outcome) {
  audit::Event event;
  event.at_ms = NowMillis();
  event.principal = !caller.principal.id.empty()    ? caller.principal.LogName()
                    : !target.claimed_principal.empty() ? target.claimed_principal
                                                        : "anonymous";
  event.tenant = target.tenant;
  event.action = target.action;
  event.resource = target.resource;
  event.outcome = OutcomeOf(outcome);
  event.client = caller.context.client_address;
  event.request_id = caller.context.request_id;
  event.reason = caller.context.reason;
  return AppendEntry(event);
}

Status VaultImpl::AuditSystemEvent(const std::string& action, const std::string& resource, const Status& outcome) {
  audit::Event event;
  event.at_ms = NowMillis();
  event.principal = "system";
  event.action = action;
  event.resource = resource;
  event.outcome = OutcomeOf(outcome);
  return AppendEntry(event);
}

// --- Signing key ------------------------------------------------------------------

Status VaultImpl::LoadSigningKey(const KekSet& keks) {
  // The seed lives in the key store (owner "", kAuditSigningKey); the data
  // store keeps only the public key, which verifiers read while sealed.
  KURA_ASSIGN_OR_RETURN(SecretBytes seed, VaultKey(keks, crypto::KeyPurpose::kAuditSigningKey));
  KURA_ASSIGN_OR_RETURN(crypto::SigningKey key, crypto::SigningKey::FromSeed(seed));
  auto meta = store_->GetMeta(kSigningKeyMeta);
  if (!meta.ok() && meta.status().code() != StatusCode::kNotFound) return meta.status();
  if (!meta.ok()) {
    // First unseal of this vault: publish the public key. Another node may
    // race us with the same key (the seed is shared); the insert decides.
    json doc = {{"format", kSigningKeyFormat}, {"public_key", HexEncode(key.public_key())}};
    std::string text = doc.dump();
    AuditScope scope(this, RequestContext{}, "system", "audit.key.create", "", "sys/audit/pubkey");
    Status inserted = scope.Finish(store_->InsertMeta(kSigningKeyMeta, AsBytes(text), scope.Change()));
    if (!inserted.ok() && inserted.code() != StatusCode::kAlreadyExists) return inserted;
    KURA_ASSIGN_OR_RETURN(Bytes stored, store_->GetMeta(kSigningKeyMeta));
    meta = std::move(stored);
  }
  json doc = json::parse(AsString(*meta), nullptr, /*allow_exceptions=*/false);
  auto fail = [] { return DataLossError("vault meta entry '" + std::string(kSigningKeyMeta) + "' is malformed"); };
  if (!doc.is_object() || doc.value("format", 0) != kSigningKeyFormat || !doc.contains("public_key") ||
      !doc["public_key"].is_string()) {
    return fail();
  }
  auto public_key = HexDecode(doc["public_key"].get<std::string>());
  if (!public_key) return fail();
  if (key.public_key() != *public_key) return DataLossError("the audit signing key does not match its public key");
  std::lock_guard lock(signing_mu_);
  signing_key_ = std::make_shared<const crypto::SigningKey>(std::move(key));
  audit_public_key_ = std::move(*public_key);
  return Status::Ok();
}

// --- Checkpoints --------------------------------------------------------------------

Status VaultImpl::WriteCheckpoint() {
  std::shared_ptr<const crypto::SigningKey> key;
  {
    std::lock_guard lock(signing_mu_);
    key = signing_key_;
  }
  if (!key || keyring_.IsSealed()) return FailedPreconditionError("vault is sealed");
  KURA_ASSIGN_OR_RETURN(std::int64_t size, store_->AuditSize());
  std::int64_t covered = 0;
  if (auto latest = store_->LatestAuditCheckpoint(); latest.ok()) {
    covered = latest->tree_size;
  } else if (latest.status().code() != StatusCode::kNotFound) {
    return latest.status();
  }
  if (size <= covered) return Status::Ok();
  audit::Checkpoint checkpoint;
  checkpoint.tree_size = size;
  KURA_ASSIGN_OR_RETURN(checkpoint.root, tree_.Root(size));
  checkpoint.at_ms = NowMillis();
  Status s = store_->PutAuditCheckpoint(audit::SignCheckpoint(std::move(checkpoint), *key));
  // Another node signed the same size first: that checkpoint serves.
  if (s.code() == StatusCode::kAlreadyExists) return Status::Ok();
  return s;
}

Result<Reply> VaultImpl::ListCheckpoints(const Caller& caller, const AuditFilters& filters) {
  AuditScope scope(this, caller, actions::kAuditProof, "", "sys/audit/checkpoints");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(CheckKeys(filters, {"after", "limit"}));
    std::int64_t after = 0;
    int limit = 100;
    if (auto it = filters.find("after"); it != filters.end()) {
      KURA_ASSIGN_OR_RETURN(after, ParseNonNegative(it->second, "after"));
    }
    if (auto it = filters.find("limit"); it != filters.end()) {
      KURA_ASSIGN_OR_RETURN(std::int64_t l, ParseNonNegative(it->second, "limit"));
      if (l < 1) return InvalidArgumentError("limit: must be at least 1");
      limit = static_cast<int>(std::min<std::int64_t>(l, kMaxCheckpointPage));
    }
    KURA_ASSIGN_OR_RETURN(auto rows, store_->ListAuditCheckpoints(after, limit));
    json items = json::array();
    for (const auto& row : rows) items.push_back(CheckpointJson(row));
    Reply reply;
    reply.body = {{"items", std::move(items)}, {"latest", nullptr}};
    if (auto latest = store_->LatestAuditCheckpoint(); latest.ok()) {
      reply.body["latest"] = CheckpointJson(*latest);
    } else if (latest.status().code() != StatusCode::kNotFound) {
      return latest.status();
    }
    return reply;
  }());
}

Result<Reply> VaultImpl::InclusionProof(const Caller& caller, const std::string& seq_text,
                                        const AuditFilters& filters) {
  AuditScope scope(this, caller, actions::kAuditProof, "", "sys/audit/proof/" + seq_text);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(CheckKeys(filters, {"tree_size"}));
    KURA_ASSIGN_OR_RETURN(std::int64_t seq, ParseNonNegative(seq_text, "seq"));
    auto it = filters.find("tree_size");
    if (it == filters.end()) return InvalidArgumentError("tree_size: required");
    KURA_ASSIGN_OR_RETURN(std::int64_t tree_size, ParseNonNegative(it->second, "tree_size"));
    KURA_ASSIGN_OR_RETURN(std::int64_t size, store_->AuditSize());
    if (tree_size > size) return InvalidArgumentError("tree_size: larger than the log");
    if (seq >= tree_size) return InvalidArgumentError("seq: must be less than tree_size");
    KURA_ASSIGN_OR_RETURN(auto leaf, store_->AuditLeafHashes(seq, seq + 1));
    if (leaf.size() != 1) return InternalError("audit entry missing from the log");
    KURA_ASSIGN_OR_RETURN(auto proof, tree_.InclusionProof(seq, tree_size));
    Reply reply;
    reply.body = {{"seq", seq}, {"tree_size", tree_size}, {"leaf_hash", HexEncode(leaf[0])}, {"proof", HexList(proof)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::ConsistencyProof(const Caller& caller, const AuditFilters& filters) {
  AuditScope scope(this, caller, actions::kAuditProof, "", "sys/audit/consistency");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(CheckKeys(filters, {"from", "to"}));
    auto from_it = filters.find("from");
    auto to_it = filters.find("to");
    if (from_it == filters.end() || to_it == filters.end()) return InvalidArgumentError("from and to: required");
    KURA_ASSIGN_OR_RETURN(std::int64_t from, ParseNonNegative(from_it->second, "from"));
    KURA_ASSIGN_OR_RETURN(std::int64_t to, ParseNonNegative(to_it->second, "to"));
    KURA_ASSIGN_OR_RETURN(std::int64_t size, store_->AuditSize());
    if (from < 1 || from > to) return InvalidArgumentError("from: must be between 1 and to");
    if (to > size) return InvalidArgumentError("to: larger than the log");
    KURA_ASSIGN_OR_RETURN(auto proof, tree_.ConsistencyProof(from, to));
    KURA_ASSIGN_OR_RETURN(Bytes from_root, tree_.Root(from));
    KURA_ASSIGN_OR_RETURN(Bytes to_root, tree_.Root(to));
    Reply reply;
    reply.body = {{"from", from},
                  {"to", to},
                  {"from_root", HexEncode(from_root)},
                  {"to_root", HexEncode(to_root)},
                  {"proof", HexList(proof)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::AuditPublicKey(const Caller& caller) {
  AuditScope scope(this, caller, actions::kAuditProof, "", "sys/audit/pubkey");
  return scope.Finish([&]() -> Result<Reply> {
    Bytes public_key;
    {
      std::lock_guard lock(signing_mu_);
      public_key = audit_public_key_;
    }
    if (public_key.empty()) {
      // Sealed since start: the public key is stored in plain.
      KURA_ASSIGN_OR_RETURN(Bytes meta, store_->GetMeta(kSigningKeyMeta));
      json doc = json::parse(AsString(meta), nullptr, /*allow_exceptions=*/false);
      auto decoded = doc.is_object() && doc.contains("public_key") && doc["public_key"].is_string()
                         ? HexDecode(doc["public_key"].get<std::string>())
                         : std::nullopt;
      if (!decoded) return DataLossError("vault meta entry '" + std::string(kSigningKeyMeta) + "' is malformed");
      public_key = std::move(*decoded);
    }
    Reply reply;
    reply.body = {{"key_id", audit::KeyId(public_key)}, {"public_key_pem", crypto::PublicKeyToPem(public_key)}};
    return reply;
  }());
}

// --- Trails ---------------------------------------------------------------------------

Result<Reply> VaultImpl::AuditTrail(const std::optional<std::string>& tenant, const AuditFilters& filters) {
  KURA_RETURN_IF_ERROR(CheckKeys(filters, {"principal", "action", "resource", "outcome", "from", "to", "after",
                                           "limit", "last", "tenant"}));
  store::AuditQuery query;
  query.tenant_id = tenant;
  query.limit = 100;
  for (const auto& [key, value] : filters) {
    if (key == "principal") {
      query.principal = value;
    } else if (key == "action") {
      query.action = value;
    } else if (key == "resource") {
      query.resource = value;
    } else if (key == "outcome") {
      query.outcome = value;
    } else if (key == "from") {
      KURA_ASSIGN_OR_RETURN(query.from_ms, ParseTimeMillis(value, "from"));
    } else if (key == "to") {
      KURA_ASSIGN_OR_RETURN(query.to_ms, ParseTimeMillis(value, "to"));
    } else if (key == "after") {
      KURA_ASSIGN_OR_RETURN(query.after_seq, ParseNonNegative(value, "after"));
    } else if (key == "limit") {
      KURA_ASSIGN_OR_RETURN(std::int64_t l, ParseNonNegative(value, "limit"));
      if (l < 1) return InvalidArgumentError("limit: must be at least 1");
      query.limit = static_cast<int>(std::min<std::int64_t>(l, kMaxTrailPage));
    } else if (key == "last") {
      // The newest N matches, oldest first, and no next page.
      if (filters.contains("limit")) return InvalidArgumentError("last: give either last or limit, not both");
      KURA_ASSIGN_OR_RETURN(std::int64_t n, ParseNonNegative(value, "last"));
      if (n < 1 || n > kMaxTrailPage) {
        return InvalidArgumentError("last: must be between 1 and " + std::to_string(kMaxTrailPage));
      }
      query.limit = static_cast<int>(n);
      query.newest = true;
    } else if (key == "tenant") {
      if (tenant) return InvalidArgumentError("unknown query parameter 'tenant'");
      query.tenant_id = value;
    }
  }
  KURA_ASSIGN_OR_RETURN(auto page, store_->FindAudit(query));
  json items = json::array();
  for (const store::AuditRow& row : page.items) {
    items.push_back({{"seq", row.seq},
                     {"at", FormatMillis(row.at_ms)},
                     {"at_ms", row.at_ms},
                     {"tenant", row.tenant_id},
                     {"principal", row.principal},
                     {"action", row.action},
                     {"resource", row.resource},
                     {"outcome", row.outcome},
                     {"entry", std::string(AsString(row.entry))},
                     {"hash", HexEncode(row.hash)}});
  }
  Reply reply;
  reply.body = {{"items", std::move(items)}, {"next", page.next ? json(*page.next) : json(nullptr)}};
  return reply;
}

Result<Reply> VaultImpl::TenantAuditTrail(const Caller& caller, const std::string& tenant,
                                          const AuditFilters& filters) {
  AuditScope scope(this, caller, actions::kAuditRead, tenant, "audit");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    // Auditors and security officers read every trail (SPEC §1); they see
    // who did what, never a field value.
    bool staff_reader = caller.principal.kind == PrincipalKind::kStaff &&
                        RequireStaff(caller, {staff_roles::kAuditor, staff_roles::kSecurityOfficer}).ok();
    if (!staff_reader) {
      KURA_ASSIGN_OR_RETURN(auto role, RoleOf(caller.principal, tenant));
      if (!policy::Decide(*role, policy::Action::kAuditRead, "").allowed) {
        return PermissionDeniedError("permission denied");
      }
    }
    return AuditTrail(tenant, filters);
  }());
}

Result<Reply> VaultImpl::SystemAuditTrail(const Caller& caller, const AuditFilters& filters) {
  AuditScope scope(this, caller, actions::kAuditRead, "", "sys/audit");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kAuditor, staff_roles::kSecurityOfficer}));
    return AuditTrail(std::nullopt, filters);
  }());
}

}  // namespace kura::vault
