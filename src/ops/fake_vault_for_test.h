// FakeVault: an in-memory stand-in for vault::Vault, for unit tests of ops and
// http only (never linked into the server). Every data call echoes its name and
// arguments as the reply body ({"call":"GetRecord","tenant":…}), so a test can
// see which vault method a route reached and with which arguments.
//
// Tokens: "root-token" → the root principal, "key-token" → API key "k1" of
// tenant "acme" with role "app"; anything else → Unauthenticated.
//
// Thread safety: the knobs are atomics; safe to flip while a server runs.
#ifndef KURA_OPS_FAKE_VAULT_FOR_TEST_H_
#define KURA_OPS_FAKE_VAULT_FOR_TEST_H_

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "crypto/seal.h"
#include "vault/vault.h"

namespace kura::ops::testing {

class FakeVault : public vault::Vault {
 public:
  std::atomic<bool> sealed{false};
  std::atomic<bool> initialized{true};
  // Mutating calls sleep this long first (to test graceful drain).
  std::atomic<int> write_delay_ms{0};
  // Counts of started and completed calls, by kind.
  std::atomic<int> writes_started{0};
  std::atomic<int> writes_done{0};
  std::atomic<int> reads_done{0};

  // The last RequestContext any call saw (guarded by mu_).
  vault::RequestContext LastContext() const {
    std::lock_guard lock(mu_);
    return last_context_;
  }

  vault::SealStatus GetSealStatus() const override {
    vault::SealStatus s;
    s.initialized = initialized;
    s.sealed = sealed;
    s.type = "keyfile";
    return s;
  }
  bool IsSealed() const override { return sealed; }
  bool ServesInline() const override { return false; }
  std::uint64_t RequestsServed() const override { return requests_served; }
  std::uint64_t requests_served = 0;

  Result<vault::Reply> Initialize(const vault::RequestContext& ctx, const nlohmann::json& body) override {
    Remember(ctx);
    Write();
    return Echo("Initialize", {{"body", body}});
  }
  Result<vault::Reply> Unseal(const vault::RequestContext& ctx, const nlohmann::json& body) override {
    Remember(ctx);
    Write();
    return Echo("Unseal", {{"body", body}});
  }
  Status AutoUnseal() override { return Status::Ok(); }
  Result<vault::Reply> Seal(const vault::Caller& c) override {
    if (auto s = Root(c); !s.ok()) return s;
    Write();
    sealed = true;
    return NoContent();
  }
  Result<std::string> DevInitialize(const std::string&) override { return std::string("root-token"); }

  Result<vault::Principal> Authenticate(std::string_view token) override {
    if (sealed) return FailedPreconditionError("vault is sealed");
    vault::Principal p;
    if (token == "root-token") {
      p.kind = vault::PrincipalKind::kRoot;
      p.id = "root";
      return p;
    }
    if (token == "key-token") {
      p.kind = vault::PrincipalKind::kApiKey;
      p.id = "k1";
      p.tenant_id = "acme";
      p.role = "app";
      return p;
    }
    return UnauthenticatedError("invalid or expired token");
  }
  Result<vault::Reply> Whoami(const vault::Caller& c) override {
    Read(c);
    return Echo("Whoami", {{"principal", c.principal.LogName()}});
  }

  Result<vault::Reply> CreateTenant(const vault::Caller& c, const nlohmann::json& body) override {
    if (auto s = Root(c); !s.ok()) return s;
    Write();
    if (body.value("id", "") == "taken") return AlreadyExistsError("tenant exists");
    return Created(Echo("CreateTenant", {{"body", body}}));
  }
  Result<vault::Reply> GetTenant(const vault::Caller& c, const std::string& t) override {
    Read(c);
    if (t == "missing") return NotFoundError("no such tenant");
    return Echo("GetTenant", {{"tenant", t}});
  }
  Result<vault::Reply> ListTenants(const vault::Caller& c, const vault::PageParams& page) override {
    Read(c);
    return Echo("ListTenants", {{"after", page.after}, {"limit", page.limit ? nlohmann::json(*page.limit) : nullptr}});
  }
  Result<vault::Reply> DeleteTenant(const vault::Caller& c, const std::string&) override {
    Write(c);
    return NoContent();
  }
  Result<vault::Reply> RotateTenantKey(const vault::Caller& c, const std::string& t) override {
    Write(c);
    return Created(Echo("RotateTenantKey", {{"tenant", t}}));
  }
  Result<vault::Reply> GetTenantKeyRotation(const vault::Caller& c, const std::string& t) override {
    Read(c);
    return Echo("GetTenantKeyRotation", {{"tenant", t}});
  }
  Result<vault::ReencryptProgress> ReencryptStep(int) override { return vault::ReencryptProgress{}; }
  Result<vault::Reply> RotateKek(const vault::Caller&) override { return vault::Reply{}; }
  Result<vault::Reply> ListKeys(const vault::Caller&) override { return vault::Reply{}; }
  Result<vault::Reply> MigrateSeal(std::unique_ptr<crypto::Seal>, const crypto::SealInitOptions&) override {
    return vault::Reply{};
  }
  Result<vault::Reply> PutCollection(const vault::Caller& c, const std::string& t, const std::string& coll,
                                     const nlohmann::json& body) override {
    Write(c);
    return Echo("PutCollection", {{"tenant", t}, {"collection", coll}, {"body", body}});
  }
  Result<vault::Reply> GetCollection(const vault::Caller& c, const std::string& t, const std::string& coll) override {
    Read(c);
    return Echo("GetCollection", {{"tenant", t}, {"collection", coll}});
  }
  Result<vault::Reply> ListCollections(const vault::Caller& c, const std::string& t) override {
    Read(c);
    return Echo("ListCollections", {{"tenant", t}});
  }
  Result<vault::Reply> PutRole(const vault::Caller& c, const std::string& t, const std::string& r,
                               const nlohmann::json& body) override {
    Write(c);
    return Echo("PutRole", {{"tenant", t}, {"role", r}, {"body", body}});
  }
  Result<vault::Reply> GetRole(const vault::Caller& c, const std::string& t, const std::string& r) override {
    Read(c);
    return Echo("GetRole", {{"tenant", t}, {"role", r}});
  }
  Result<vault::Reply> ListRoles(const vault::Caller& c, const std::string& t) override {
    Read(c);
    return Echo("ListRoles", {{"tenant", t}});
  }
  Result<vault::Reply> DeleteRole(const vault::Caller& c, const std::string&, const std::string&) override {
    Write(c);
    return NoContent();
  }
  Result<vault::Reply> CreateApiKey(const vault::Caller& c, const std::string& t, const nlohmann::json& body) override {
    Write(c);
    return Created(Echo("CreateApiKey", {{"tenant", t}, {"body", body}}));
  }
  Result<vault::Reply> ListApiKeys(const vault::Caller& c, const std::string& t) override {
    Read(c);
    return Echo("ListApiKeys", {{"tenant", t}});
  }
  Result<vault::Reply> RevokeApiKey(const vault::Caller& c, const std::string&, const std::string&) override {
    Write(c);
    return NoContent();
  }

  Result<vault::Reply> CreateRecord(const vault::Caller& c, const std::string& t, const std::string& coll,
                                    const nlohmann::json& body) override {
    if (auto s = Tenant(c); !s.ok()) return s;
    Write(c);
    vault::Reply r = Echo("CreateRecord", {{"tenant", t}, {"collection", coll}, {"body", body}});
    r.created = true;
    r.version = 1;
    return r;
  }
  Result<vault::Reply> GetRecord(const vault::Caller& c, const std::string& t, const std::string& coll,
                                 const std::string& id, std::optional<std::int64_t> version) override {
    if (auto s = Tenant(c); !s.ok()) return s;
    Read(c);
    if (id == "missing") return NotFoundError("no such record");
    if (id == "corrupt") return DataLossError("record r1 failed authentication");
    if (id == "broken") return InternalError("secret detail that must not leak");
    vault::Reply r = Echo(
        "GetRecord",
        {{"tenant", t}, {"collection", coll}, {"id", id}, {"version", version ? nlohmann::json(*version) : nullptr}});
    r.version = version.value_or(3);
    return r;
  }
  // Reads nothing ahead: GetRecord answers by itself.
  void PrefetchRecord(const std::string&, const std::string&, const std::string&,
                      std::function<void(std::unique_ptr<vault::RecordPrefetch>)> done) override {
    done(nullptr);
  }
  Result<vault::Reply> UpdateRecord(const vault::Caller& c, const std::string& t, const std::string& coll,
                                    const std::string& id, const nlohmann::json& body,
                                    std::optional<std::int64_t> if_match) override {
    if (auto s = Tenant(c); !s.ok()) return s;
    Write(c);
    if (if_match && *if_match != 3) return AbortedError("version conflict");
    vault::Reply r = Echo("UpdateRecord", {{"tenant", t},
                                           {"collection", coll},
                                           {"id", id},
                                           {"body", body},
                                           {"if_match", if_match ? nlohmann::json(*if_match) : nullptr}});
    r.version = 4;
    return r;
  }
  Result<vault::Reply> DeleteRecord(const vault::Caller& c, const std::string&, const std::string&,
                                    const std::string&) override {
    if (auto s = Tenant(c); !s.ok()) return s;
    Write(c);
    return NoContent();
  }
  Result<vault::Reply> ListVersions(const vault::Caller& c, const std::string& t, const std::string& coll,
                                    const std::string& id) override {
    Read(c);
    return Echo("ListVersions", {{"tenant", t}, {"collection", coll}, {"id", id}});
  }
  Result<vault::Reply> FindRecords(const vault::Caller& c, const std::string& t, const std::string& coll,
                                   const std::map<std::string, std::string>& filters,
                                   const vault::PageParams& page) override {
    if (auto s = Tenant(c); !s.ok()) return s;
    Read(c);
    return Echo("FindRecords", {{"tenant", t},
                                {"collection", coll},
                                {"filters", filters},
                                {"after", page.after},
                                {"limit", page.limit ? nlohmann::json(*page.limit) : nullptr}});
  }

  // Audit: the transport's refusals are counted (and their targets kept);
  // `audit_fails` makes them fail as a full disk would.
  std::atomic<bool> audit_fails{false};
  std::atomic<int> rejected_audits{0};
  vault::AuditTarget LastRejectedTarget() const {
    std::lock_guard lock(mu_);
    return last_rejected_;
  }
  std::string LastRejectedOutcome() const {
    std::lock_guard lock(mu_);
    return last_rejected_outcome_;
  }
  Status AuditRejected(const vault::Caller& c, const vault::AuditTarget& target, const Status& outcome) override {
    if (audit_fails) return UnavailableError("audit log unavailable: the request was not carried out");
    Remember(c.context);
    std::lock_guard lock(mu_);
    last_rejected_ = target;
    last_rejected_outcome_ = std::string(StatusCodeName(outcome.code()));
    ++rejected_audits;
    return Status::Ok();
  }
  Result<vault::Reply> TenantAuditTrail(const vault::Caller& c, const std::string& t,
                                        const vault::AuditFilters& filters) override {
    Read(c);
    return Echo("TenantAuditTrail", {{"tenant", t}, {"filters", filters}});
  }
  Result<vault::Reply> SystemAuditTrail(const vault::Caller& c, const vault::AuditFilters& filters) override {
    Read(c);
    return Echo("SystemAuditTrail", {{"filters", filters}});
  }
  Result<vault::Reply> ListCheckpoints(const vault::Caller& c, const vault::AuditFilters& filters) override {
    Read(c);
    return Echo("ListCheckpoints", {{"filters", filters}});
  }
  Result<vault::Reply> InclusionProof(const vault::Caller& c, const std::string& seq,
                                      const vault::AuditFilters& filters) override {
    Read(c);
    return Echo("InclusionProof", {{"seq", seq}, {"filters", filters}});
  }
  Result<vault::Reply> ConsistencyProof(const vault::Caller& c, const vault::AuditFilters& filters) override {
    Read(c);
    return Echo("ConsistencyProof", {{"filters", filters}});
  }
  Result<vault::Reply> AuditPublicKey(const vault::Caller& c) override {
    Read(c);
    return Echo("AuditPublicKey", {});
  }
  Status WriteCheckpoint() override { return Status::Ok(); }
  Status AuditSystemEvent(const std::string&, const std::string&, const Status&) override { return Status::Ok(); }
  Result<std::int64_t> ExpireRecords(int) override { return std::int64_t{0}; }
  Result<std::int64_t> PurgeEndedSessions(int) override { return std::int64_t{0}; }

  // Identity: the transport tests need only that the routes reach the vault.
  Result<vault::NegotiateResult> AuthenticateNegotiate(std::string_view, std::string*) override {
    return UnauthenticatedError("Kerberos authentication failed");
  }
  Result<vault::Reply> Login(const vault::RequestContext& ctx, const nlohmann::json&) override {
    Remember(ctx);
    return Echo("Login", {});
  }
  Result<vault::Reply> KerberosLogin(const vault::Caller& c) override { return Called(c, "KerberosLogin"); }
  Result<vault::Reply> Logout(const vault::Caller& c) override { return Called(c, "Logout"); }
  Result<vault::Reply> ChangePassword(const vault::Caller& c, const nlohmann::json&) override {
    return Called(c, "ChangePassword");
  }
  Result<vault::Reply> StepUp(const vault::Caller& c, const nlohmann::json&) override { return Called(c, "StepUp"); }
  Result<vault::Reply> TotpEnroll(const vault::Caller& c) override { return Called(c, "TotpEnroll"); }
  Result<vault::Reply> TotpConfirm(const vault::Caller& c, const nlohmann::json&) override {
    return Called(c, "TotpConfirm");
  }
  Result<vault::Reply> CreateUser(const vault::Caller& c, const std::string&, const nlohmann::json&) override {
    return Called(c, "CreateUser");
  }
  Result<vault::Reply> GetUser(const vault::Caller& c, const std::string&, const std::string&) override {
    return Called(c, "GetUser");
  }
  Result<vault::Reply> ListUsers(const vault::Caller& c, const std::string&, const vault::PageParams&) override {
    return Called(c, "ListUsers");
  }
  Result<vault::Reply> UpdateUser(const vault::Caller& c, const std::string&, const std::string&,
                                  const nlohmann::json&) override {
    return Called(c, "UpdateUser");
  }
  Result<vault::Reply> DeleteUser(const vault::Caller& c, const std::string&, const std::string&) override {
    return Called(c, "DeleteUser");
  }
  Result<vault::Reply> RevokeUserSessions(const vault::Caller& c, const std::string&, const std::string&) override {
    return Called(c, "RevokeUserSessions");
  }
  Result<vault::Reply> GetAuthPolicy(const vault::Caller& c, const std::string&) override {
    return Called(c, "GetAuthPolicy");
  }
  Result<vault::Reply> PutAuthPolicy(const vault::Caller& c, const std::string&, const nlohmann::json&) override {
    return Called(c, "PutAuthPolicy");
  }
  Result<vault::Reply> RevokeRootToken(const vault::Caller& c) override { return Called(c, "RevokeRootToken"); }
  Result<vault::Reply> CreateAccessRequest(const vault::Caller& c, const nlohmann::json&) override {
    return Called(c, "CreateAccessRequest");
  }
  Result<vault::Reply> ListAccessRequests(const vault::Caller& c, const std::string&,
                                          const std::map<std::string, std::string>&,
                                          const vault::PageParams&) override {
    return Called(c, "ListAccessRequests");
  }
  Result<vault::Reply> GetAccessRequest(const vault::Caller& c, const std::string&, const std::string&) override {
    return Called(c, "GetAccessRequest");
  }
  Result<vault::Reply> ApproveAccessRequest(const vault::Caller& c, const std::string&, const std::string&,
                                            const nlohmann::json&) override {
    return Called(c, "ApproveAccessRequest");
  }
  Result<vault::Reply> DenyAccessRequest(const vault::Caller& c, const std::string&, const std::string&,
                                         const nlohmann::json&) override {
    return Called(c, "DenyAccessRequest");
  }
  Result<vault::Reply> RevokeAccessRequest(const vault::Caller& c, const std::string&, const std::string&) override {
    return Called(c, "RevokeAccessRequest");
  }
  Result<vault::Reply> GetLockboxPolicy(const vault::Caller& c, const std::string&) override {
    return Called(c, "GetLockboxPolicy");
  }
  Result<vault::Reply> PutLockboxPolicy(const vault::Caller& c, const std::string&, const nlohmann::json&) override {
    return Called(c, "PutLockboxPolicy");
  }
  Result<std::string> SignWebhookDelivery(const std::string&, std::string_view, std::int64_t,
                                          std::string_view) override {
    return std::string();
  }

 private:
  static vault::Reply Echo(const char* call, nlohmann::json fields) {
    vault::Reply r;
    r.body = std::move(fields);
    r.body["call"] = call;
    return r;
  }
  vault::Reply Called(const vault::Caller& c, const char* call) {
    Read(c);
    return Echo(call, {});
  }
  static vault::Reply Created(vault::Reply r) {
    r.created = true;
    return r;
  }
  static vault::Reply NoContent() {
    vault::Reply r;
    r.no_content = true;
    return r;
  }
  static Status Root(const vault::Caller& c) {
    if (c.principal.kind != vault::PrincipalKind::kRoot) return PermissionDeniedError("operator only");
    return Status::Ok();
  }
  // Records are tenant data: the root token never reaches them.
  static Status Tenant(const vault::Caller& c) {
    if (c.principal.kind == vault::PrincipalKind::kRoot) return PermissionDeniedError("operator cannot read records");
    return Status::Ok();
  }
  void Remember(const vault::RequestContext& ctx) {
    std::lock_guard lock(mu_);
    last_context_ = ctx;
  }
  void Read(const vault::Caller& c) {
    Remember(c.context);
    ++reads_done;
  }
  void Write() {
    ++writes_started;
    if (int ms = write_delay_ms; ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    ++writes_done;
  }
  void Write(const vault::Caller& c) {
    Remember(c.context);
    Write();
  }

  mutable std::mutex mu_;
  vault::RequestContext last_context_;
  vault::AuditTarget last_rejected_;
  std::string last_rejected_outcome_;
};

}  // namespace kura::ops::testing

#endif  // KURA_OPS_FAKE_VAULT_FOR_TEST_H_
