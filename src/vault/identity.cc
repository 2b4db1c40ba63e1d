// Who is who: users (of tenants and staff), sign-in with a password and TOTP
// or with Kerberos, sessions, step-up for sensitive actions, sign-in policy
// (docs/identity.md). auth/ holds the pure logic (hashes, policy, TOTP,
// GSSAPI); this file combines it with the store, the keyring and the audit
// log.
#include <algorithm>

#include "auth/kerberos.h"
#include "auth/password.h"
#include "auth/token.h"
#include "auth/totp.h"
#include "core/log.h"
#include "crypto/random.h"
#include "vault/body.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

// One message for every failed password sign-in: which of unknown user, wrong
// password, locked or disabled applied must not be learnable from outside
// (the audit entry records which).
constexpr char kBadLogin[] = "sign-in failed: wrong username or password, or the account is locked or disabled";
constexpr char kTotpNeeded[] = "sign-in needs a TOTP code (\"totp\") or a recovery code (\"recovery_code\")";
constexpr char kBadSession[] = "invalid, expired or revoked token";
constexpr char kBadKerberos[] = "Kerberos authentication failed";
constexpr char kStaffPolicyMeta[] = "auth.policy.staff";
constexpr char kTenantPolicyMetaPrefix[] = "auth.policy.tenant/";
// A session's last_seen_at is written at most this often: the idle timeout is
// kept to within a minute without a write on every request.
constexpr std::int64_t kTouchGranularitySeconds = 60;
constexpr std::size_t kMaxPrincipalName = 256;

const std::vector<std::string_view>& StaffRoleNames() {
  static const std::vector<std::string_view> kNames = {staff_roles::kSupport, staff_roles::kSecurityOfficer,
                                                       staff_roles::kAuditor, staff_roles::kOperator};
  return kNames;
}

std::string AuditName(const std::string& tenant, const std::string& username) {
  return tenant.empty() ? "staff:" + username : "user:" + tenant + "/" + username;
}

// Owner of a wrapped TOTP secret: binds it to its account.
std::string TotpOwner(const store::UserRow& user) { return user.tenant_id + "/" + user.username; }

std::string UsersResource(const std::string& tenant, const std::string& username) {
  std::string base = tenant.empty() ? "sys/staff" : "users";
  return username.empty() ? base : base + "/" + username;
}

Result<std::vector<std::string>> StringList(const json& body, std::string_view key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_array()) return InvalidArgumentError(std::string(key) + ": must be an array of strings");
  std::vector<std::string> out;
  for (const json& v : *it) {
    if (!v.is_string()) return InvalidArgumentError(std::string(key) + ": must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// "name@REALM" with printable characters, no spaces.
bool IsValidKerberosPrincipal(std::string_view p) {
  if (p.empty() || p.size() > kMaxPrincipalName) return false;
  auto at = p.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == p.size()) return false;
  return std::all_of(p.begin(), p.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

json PolicyJson(const auth::PasswordPolicy& p, bool step_up_requires_totp) {
  return {{"min_length", p.min_length},
          {"max_age_days", p.max_age_days},
          {"history", p.history},
          {"lockout_threshold", p.lockout_threshold},
          {"lockout_window_seconds", p.lockout_window.count()},
          {"lockout_duration_seconds", p.lockout_duration.count()},
          {"require_totp", p.require_totp},
          {"step_up_requires_totp", step_up_requires_totp}};
}

}  // namespace

// --- Password work ----------------------------------------------------------------

// Each Argon2id computation takes its memory cost (64 MiB by default) for
// its whole run: at most one per core at a time, so a burst of sign-ins
// queues instead of exhausting memory.
class VaultImpl::PasswordSlot {
 public:
  explicit PasswordSlot(VaultImpl* vault) : vault_(vault) { vault_->password_slots_.acquire(); }
  ~PasswordSlot() { vault_->password_slots_.release(); }
  PasswordSlot(const PasswordSlot&) = delete;
  PasswordSlot& operator=(const PasswordSlot&) = delete;

 private:
  VaultImpl* vault_;
};

bool VaultImpl::VerifyPasswordBounded(std::string_view encoded, std::string_view password) {
  PasswordSlot slot(this);
  return auth::VerifyPassword(encoded, password);
}

Result<std::string> VaultImpl::HashPasswordBounded(std::string_view password, const auth::Argon2Params& params) {
  PasswordSlot slot(this);
  return auth::HashPassword(password, params);
}

// --- Policy ----------------------------------------------------------------------

const std::string& VaultImpl::DummyPasswordHash() {
  // A hash of a random password with the current parameters, made once (not
  // at start: servers that never see a password sign-in never pay for it).
  std::call_once(dummy_once_, [this] {
    auto dummy = HashPasswordBounded(Base64UrlEncode(crypto::RandomBytes(32)), identity_.argon2);
    if (dummy.ok()) dummy_password_hash_ = std::move(dummy).value();
  });
  return dummy_password_hash_;
}

Result<VaultImpl::AuthPolicy> VaultImpl::PolicyFor(const std::string& tenant) {
  AuthPolicy policy;
  policy.password = tenant.empty() ? identity_.staff_policy : identity_.tenant_policy;
  std::optional<json> stored;
  if (tenant.empty()) {
    auto meta = store_->GetMeta(kStaffPolicyMeta);
    if (meta.ok()) {
      stored = json::parse(AsString(*meta), nullptr, /*allow_exceptions=*/false);
      if (!stored->is_object()) return DataLossError("stored sign-in policy is malformed");
    } else if (meta.status().code() != StatusCode::kNotFound) {
      return meta.status();
    }
  } else {
    KURA_ASSIGN_OR_RETURN(stored, ReadTenantMeta(tenant, kTenantPolicyMetaPrefix + tenant));
  }
  if (stored) {
    const json& doc = *stored;
    auth::PasswordPolicy& p = policy.password;
    p.min_length = doc.value("min_length", p.min_length);
    p.max_age_days = doc.value("max_age_days", p.max_age_days);
    p.history = doc.value("history", p.history);
    p.lockout_threshold = doc.value("lockout_threshold", p.lockout_threshold);
    p.lockout_window = std::chrono::seconds(doc.value("lockout_window_seconds", p.lockout_window.count()));
    p.lockout_duration = std::chrono::seconds(doc.value("lockout_duration_seconds", p.lockout_duration.count()));
    p.require_totp = doc.value("require_totp", p.require_totp);
    policy.step_up_requires_totp = doc.value("step_up_requires_totp", false);
  }
  // Staff always need a second factor for a password sign-in (SPEC §3).
  if (tenant.empty()) policy.password.require_totp = true;
  return policy;
}

Result<Reply> VaultImpl::GetAuthPolicy(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kAuthPolicyRead, tenant, tenant.empty() ? "sys/auth-policy" : "auth-policy");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(tenant));
    Reply reply;
    reply.body = PolicyJson(policy.password, policy.step_up_requires_totp);
    return reply;
  }());
}

Result<Reply> VaultImpl::PutAuthPolicy(const Caller& caller, const std::string& tenant, const json& body) {
  AuditScope scope(this, caller, actions::kAuthPolicyWrite, tenant, tenant.empty() ? "sys/auth-policy" : "auth-policy");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckObject(body, {"min_length", "max_age_days", "history", "lockout_threshold",
                                            "lockout_window_seconds", "lockout_duration_seconds", "require_totp",
                                            "step_up_requires_totp"}));
    KURA_ASSIGN_OR_RETURN(AuthPolicy current, PolicyFor(tenant));
    json merged = PolicyJson(current.password, current.step_up_requires_totp);
    // Bounds: a policy may be made stricter freely, looser only down to a floor.
    struct Bound {
      const char* key;
      std::int64_t min;
      std::int64_t max;
    };
    for (const Bound& b : {Bound{"min_length", 8, 128}, Bound{"max_age_days", 0, 3650}, Bound{"history", 0, 24},
                           Bound{"lockout_threshold", 1, 100}, Bound{"lockout_window_seconds", 60, 86400},
                           Bound{"lockout_duration_seconds", 60, 86400}}) {
      KURA_ASSIGN_OR_RETURN(auto value, OptionalInteger(body, b.key));
      if (!value) continue;
      if (*value < b.min || *value > b.max) {
        return InvalidArgumentError(std::string(b.key) + ": must be between " + std::to_string(b.min) + " and " +
                                    std::to_string(b.max));
      }
      merged[b.key] = *value;
    }
    for (const char* key : {"require_totp", "step_up_requires_totp"}) {
      if (!body.contains(key)) continue;
      if (!body[key].is_boolean()) return InvalidArgumentError(std::string(key) + ": must be true or false");
      merged[key] = body[key].get<bool>();
    }
    if (tenant.empty() && !merged["require_totp"].get<bool>()) {
      return InvalidArgumentError("require_totp: staff always need TOTP for a password sign-in");
    }
    if (tenant.empty()) {
      std::string text = merged.dump();
      KURA_RETURN_IF_ERROR(store_->PutMeta(kStaffPolicyMeta, AsBytes(text), scope.Change()));
    } else {
      KURA_RETURN_IF_ERROR(WriteTenantMeta(tenant, kTenantPolicyMetaPrefix + tenant, merged, scope.Change()));
    }
    Reply reply;
    reply.body = std::move(merged);
    return reply;
  }());
}

// --- Rights ------------------------------------------------------------------------

Status VaultImpl::RequireUserAdmin(const Caller& caller, const std::string& tenant) {
  if (tenant.empty()) return RequireStaff(caller, {staff_roles::kOperator});
  return RequireTenantAdmin(caller, tenant);
}

Status VaultImpl::RequireFreshAuth(const Caller& caller) const {
  const Principal& p = caller.principal;
  if (p.kind == PrincipalKind::kRoot) return Status::Ok();  // the bootstrap credential has no second factor
  if (p.kind != PrincipalKind::kUser && p.kind != PrincipalKind::kStaff) return PermissionDeniedError(kDenied);
  std::int64_t age = NowSeconds() - p.authenticated_at;
  if (age < 0 || age > identity_.step_up_window.count()) {
    return PermissionDeniedError("this action needs a recent sign-in: authenticate again with POST /v1/auth/step-up");
  }
  return Status::Ok();
}

Result<store::SessionRow> VaultImpl::SessionOf(const Caller& caller) {
  const Principal& p = caller.principal;
  if ((p.kind != PrincipalKind::kUser && p.kind != PrincipalKind::kStaff) || p.session_hash.empty()) {
    return PermissionDeniedError("this needs a signed-in session (POST /v1/auth/login)");
  }
  auto session = store_->FindSession(p.session_hash);
  if (!session.ok()) {
    if (session.status().code() == StatusCode::kNotFound) return UnauthenticatedError(kBadSession);
    return session.status();
  }
  return session;
}

Result<SecretBytes> VaultImpl::TotpSecretOf(const store::UserRow& user) const {
  if (user.totp_secret_sealed.empty()) return InvalidArgumentError("TOTP is not enrolled");
  return keyring_.UnwrapSecret(user.totp_secret_sealed, crypto::KeyPurpose::kTotpSecret, TotpOwner(user));
}

// --- Authentication ------------------------------------------------------------------

Result<Principal> VaultImpl::AuthenticateSession(ByteView token_hash) {
  auto found = store_->FindSession(token_hash);
  if (!found.ok()) {
    if (found.status().code() == StatusCode::kNotFound) return UnauthenticatedError(kBadSession);
    return found.status();
  }
  const store::SessionRow& session = *found;
  std::int64_t now = NowSeconds();
  if (!ConstantTimeEquals(session.token_hash, token_hash) || session.revoked_at.has_value() ||
      now >= session.expires_at || now - session.last_seen_at >= identity_.session_idle.count()) {
    return UnauthenticatedError(kBadSession);
  }
  auto user = store_->GetUser(session.tenant_id, session.username);
  if (!user.ok()) {
    if (user.status().code() == StatusCode::kNotFound) return UnauthenticatedError(kBadSession);
    return user.status();
  }
  if (user->disabled) return UnauthenticatedError(kBadSession);
  if (now - session.last_seen_at >= kTouchGranularitySeconds) {
    // Bookkeeping only: a failure here must not fail the request. A caller
    // that must not block (an I/O thread, see AuditDeferral) only queues it.
    auto warn_on_failure = [](const Status& s) {
      if (!s.ok()) log::Warn("session touch failed: " + s.message());
    };
    if (AuditDeferral::Current() != nullptr && store_->NonBlocking()) {
      store_->TouchSessionAsync(Bytes(token_hash.begin(), token_hash.end()), now, warn_on_failure);
    } else {
      warn_on_failure(store_->TouchSession(token_hash, now));
    }
  }
  Principal p;
  p.kind = session.tenant_id.empty() ? PrincipalKind::kStaff : PrincipalKind::kUser;
  p.id = session.username;
  p.tenant_id = session.tenant_id;
  p.roles = ParseStringArray(user->roles_json);
  p.auth_method = session.method;
  p.authenticated_at = session.authenticated_at;
  p.restriction = session.restriction;
  p.session_hash = Bytes(token_hash.begin(), token_hash.end());
  return p;
}

Result<NegotiateResult> VaultImpl::AuthenticateNegotiate(std::string_view token_base64,
                                                         std::string* client_principal) {
  if (!identity_.kerberos) return UnauthenticatedError(kBadKerberos);
  std::string detail;
  auto accepted = identity_.kerberos->Accept(token_base64, &detail);
  if (!accepted.ok()) {
    log::Info("kerberos: refused: " + detail);
    return UnauthenticatedError(kBadKerberos);
  }
  const std::string& principal = accepted->client_principal;
  if (client_principal != nullptr) *client_principal = principal;
  auto user = store_->FindStaffByKerberos(principal);
  if (!user.ok() && user.status().code() == StatusCode::kNotFound) {
    // The realm mapping: name@REALM → staff "name", for single-component names.
    auto at = principal.rfind('@');
    std::string name = principal.substr(0, at);
    std::string realm = at == std::string::npos ? "" : principal.substr(at + 1);
    bool mapped_realm = std::find(identity_.kerberos_map_realms.begin(), identity_.kerberos_map_realms.end(),
                                  realm) != identity_.kerberos_map_realms.end();
    if (mapped_realm && policy::IsValidName(name)) {
      user = store_->GetUser("", name);
      // A user naming another principal explicitly is not reached by the rule.
      if (user.ok() && !user->kerberos_principal.empty() && user->kerberos_principal != principal) {
        user = NotFoundError("");
      }
    }
  }
  if (!user.ok()) {
    if (user.status().code() == StatusCode::kNotFound) {
      log::Info("kerberos: principal " + principal + " maps to no staff user");
      return UnauthenticatedError(kBadKerberos);
    }
    return user.status();
  }
  if (user->disabled) return UnauthenticatedError(kBadKerberos);
  NegotiateResult result;
  result.principal.kind = PrincipalKind::kStaff;
  result.principal.id = user->username;
  result.principal.roles = ParseStringArray(user->roles_json);
  result.principal.auth_method = "kerberos";
  result.principal.authenticated_at = NowSeconds();
  result.output_token = std::move(accepted->output_token);
  return result;
}

// --- Sign-in ---------------------------------------------------------------------------

Result<Reply> VaultImpl::Login(const RequestContext& ctx, const json& body) {
  AuditScope scope(this, ctx, "anonymous", actions::kLogin, "", "auth/login");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(CheckObject(body, {"username", "password", "totp", "recovery_code", "tenant"}));
    KURA_ASSIGN_OR_RETURN(std::string username, RequiredString(body, "username"));
    KURA_ASSIGN_OR_RETURN(std::string password, RequiredString(body, "password"));
    KURA_ASSIGN_OR_RETURN(auto totp, OptionalString(body, "totp"));
    KURA_ASSIGN_OR_RETURN(auto recovery_code, OptionalString(body, "recovery_code"));
    KURA_ASSIGN_OR_RETURN(auto tenant_field, OptionalString(body, "tenant"));
    std::string tenant = tenant_field.value_or("");
    if (tenant_field && !policy::IsValidName(tenant)) return InvalidArgumentError("tenant: invalid name");
    scope.set_tenant(tenant);
    bool valid_name = policy::IsValidName(username);
    if (valid_name) scope.set_principal(AuditName(tenant, username));
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(tenant));

    auto refuse_unknown = [&]() -> Status {
      // As long as a wrong password for a known user: no enumeration by timing.
      VerifyPasswordBounded(DummyPasswordHash(), password);
      scope.set_failure_outcome("unknown_user");
      return UnauthenticatedError(kBadLogin);
    };
    if (!valid_name) return refuse_unknown();

    // The password is verified once per hash: a retry after a concurrent
    // update of the account (another sign-in) re-reads the row but pays for
    // Argon2id again only if the hash itself changed.
    std::string verified_hash;
    bool verified_ok = false;
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      auto found = store_->GetUser(tenant, username);
      if (!found.ok()) {
        if (found.status().code() == StatusCode::kNotFound) return refuse_unknown();
        return found.status();
      }
      store::UserRow user = std::move(found).value();
      if (user.password_hash.empty()) return refuse_unknown();  // Kerberos-only staff
      std::int64_t now = NowSeconds();
      std::int64_t expected = user.version;
      auth::LoginFailures failures{user.failed_count, user.failed_window_start, user.locked_until};
      // Verify first, whatever else is wrong, so every refusal takes as long.
      if (verified_hash != user.password_hash) {
        verified_ok = VerifyPasswordBounded(user.password_hash, password);
        verified_hash = user.password_hash;
      }
      bool password_ok = verified_ok;
      if (user.disabled) {
        scope.set_failure_outcome("disabled");
        return UnauthenticatedError(kBadLogin);
      }
      if (auth::IsLockedOut(failures, now)) {
        scope.set_failure_outcome("locked_out");
        return UnauthenticatedError(kBadLogin);
      }

      // The second factor, once the password is right.
      std::string method = "password";
      bool factor_ok = password_ok;
      bool factor_missing = false;
      if (password_ok && user.totp_confirmed) {
        if (totp) {
          KURA_ASSIGN_OR_RETURN(SecretBytes secret, TotpSecretOf(user));
          auto step = auth::VerifyTotp(secret.view(), *totp, now, user.totp_last_step);
          factor_ok = step.has_value();
          if (step) user.totp_last_step = *step;
          method = "password+totp";
        } else if (recovery_code) {
          std::string hash = auth::RecoveryCodeHash(*recovery_code);
          std::vector<std::string> codes = ParseStringArray(user.recovery_codes_json);
          auto it = hash.empty() ? codes.end() : std::find(codes.begin(), codes.end(), hash);
          factor_ok = it != codes.end();
          if (factor_ok) codes.erase(it);  // each code works once
          user.recovery_codes_json = json(codes).dump();
          method = "recovery_code";
        } else {
          factor_ok = false;
          factor_missing = true;
        }
      }

      if (!factor_ok) {
        // A wrong password or second factor counts against the account; a
        // missing code after the right password does not.
        if (factor_missing) return UnauthenticatedError(kTotpNeeded);
        auth::LoginFailures next = auth::RecordLoginFailure(failures, now, policy.password);
        user.failed_count = next.count;
        user.failed_window_start = next.window_start;
        user.locked_until = next.locked_until;
        user.version = expected + 1;
        user.updated_at = now;
        Status refused = UnauthenticatedError(password_ok ? "sign-in failed: wrong TOTP or recovery code" : kBadLogin);
        bool locks_now = auth::IsLockedOut(next, now);
        scope.set_failure_outcome(locks_now ? "locked_out" : password_ok ? "bad_second_factor" : "bad_password");
        Status s = store_->UpdateUser(user, expected, nullptr, scope.FailureChange(refused));
        if (s.code() == StatusCode::kAborted) continue;  // raced another sign-in: count again
        KURA_RETURN_IF_ERROR(s);
        if (locks_now) log::Warn("auth: account " + AuditName(tenant, username) + " locked after failed sign-ins");
        return refused;
      }

      // Signed in. What the session may do until the user has done what the
      // policy asks: change an expired password, enrol TOTP.
      std::string restriction;
      // changed_at 0: set by an administrator, so the user picks their own.
      if (user.password_changed_at == 0 || auth::PasswordExpired(user.password_changed_at, now, policy.password)) {
        restriction = kRestrictPasswordChange;
      } else if (!user.totp_confirmed && policy.password.require_totp) {
        restriction = kRestrictTotpEnrollment;
      }
      user.failed_count = 0;
      user.failed_window_start = 0;
      user.locked_until = 0;
      if (auth::NeedsRehash(user.password_hash, identity_.argon2)) {
        // Parameters were raised since this hash was made: upgrade it now,
        // while the password is at hand.
        KURA_ASSIGN_OR_RETURN(user.password_hash, HashPasswordBounded(password, identity_.argon2));
      }
      user.version = expected + 1;
      user.updated_at = now;

      std::string token = auth::GenerateSessionToken();
      store::SessionRow session;
      session.token_hash = auth::TokenHash(token);
      session.tenant_id = tenant;
      session.username = username;
      session.method = method;
      session.restriction = restriction;
      session.created_at = now;
      session.last_seen_at = now;
      session.expires_at = now + identity_.session_lifetime.count();
      session.authenticated_at = now;
      Status s = store_->UpdateUser(user, expected, &session, scope.Change());
      if (s.code() == StatusCode::kAborted) continue;
      KURA_RETURN_IF_ERROR(s);
      Reply reply;
      reply.body = {{"token", token},
                    {"expires_at", TimeJson(session.expires_at)},
                    {"auth_method", method},
                    {"restriction", restriction.empty() ? json(nullptr) : json(restriction)}};
      if (method == "recovery_code") {
        reply.body["recovery_codes_left"] = ParseStringArray(user.recovery_codes_json).size();
      }
      return reply;
    }
    return UnavailableError("sign-in: too many concurrent updates of the account, try again");
  }());
}

Result<Reply> VaultImpl::KerberosLogin(const Caller& caller) {
  AuditScope scope(this, caller, actions::kKerberosLogin, "", "auth/kerberos");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    const Principal& p = caller.principal;
    if (p.kind != PrincipalKind::kStaff || p.auth_method != "kerberos" || !p.session_hash.empty()) {
      return UnauthenticatedError("this route takes Authorization: Negotiate");
    }
    std::int64_t now = NowSeconds();
    std::string token = auth::GenerateSessionToken();
    store::SessionRow session;
    session.token_hash = auth::TokenHash(token);
    session.username = p.id;
    session.method = "kerberos";  // strong: the KDC enforces its own factors, no TOTP asked
    session.created_at = now;
    session.last_seen_at = now;
    session.expires_at = now + identity_.session_lifetime.count();
    session.authenticated_at = now;
    // The session goes in with an update of the account (no change but its
    // version), so a user deleted meanwhile gets none.
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      auto found = store_->GetUser("", p.id);
      // Deleted since its ticket was accepted: no session, as for any refusal.
      if (found.status().code() == StatusCode::kNotFound) return UnauthenticatedError(kBadKerberos);
      KURA_RETURN_IF_ERROR(found.status());
      store::UserRow user = std::move(found).value();
      std::int64_t expected = user.version;
      user.version = expected + 1;
      user.updated_at = now;
      Status s = store_->UpdateUser(user, expected, &session, scope.Change());
      if (s.code() == StatusCode::kAborted) continue;
      KURA_RETURN_IF_ERROR(s);
      Reply reply;
      reply.body = {{"token", token}, {"expires_at", TimeJson(session.expires_at)}, {"auth_method", "kerberos"},
                    {"restriction", nullptr}};
      return reply;
    }
    return UnavailableError("sign-in: too many concurrent updates of the account, try again");
  }());
}

Result<Reply> VaultImpl::Logout(const Caller& caller) {
  AuditScope scope(this, caller, actions::kLogout, caller.principal.tenant_id, "auth/logout");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_ASSIGN_OR_RETURN(store::SessionRow session, SessionOf(caller));
    Status s = store_->RevokeSession(session.token_hash, NowSeconds(), scope.Change());
    if (s.code() == StatusCode::kNotFound) return UnauthenticatedError(kBadSession);
    KURA_RETURN_IF_ERROR(s);
    return NoContent();
  }());
}

Result<Reply> VaultImpl::StepUp(const Caller& caller, const json& body) {
  AuditScope scope(this, caller, actions::kStepUp, caller.principal.tenant_id, "auth/step-up");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(CheckObject(body, {"password", "totp"}));
    KURA_ASSIGN_OR_RETURN(store::SessionRow session, SessionOf(caller));
    if (!session.restriction.empty()) return PermissionDeniedError("finish signing in first (" + session.restriction + ")");
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(session.tenant_id));
    KURA_ASSIGN_OR_RETURN(auto password, OptionalString(body, "password"));
    KURA_ASSIGN_OR_RETURN(auto totp, OptionalString(body, "totp"));
    std::int64_t now = NowSeconds();
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      KURA_ASSIGN_OR_RETURN(store::UserRow user, store_->GetUser(session.tenant_id, session.username));
      if (auth::IsLockedOut({user.failed_count, user.failed_window_start, user.locked_until}, now)) {
        // No guesses at all while locked, or a session would be a way around the lockout.
        scope.set_failure_outcome("locked_out");
        return UnauthenticatedError("step-up failed: the account is locked");
      }
      std::int64_t expected = user.version;
      bool ok = false;
      std::string method;
      // The strongest factor the user has: TOTP when enrolled, else the
      // password (Kerberos sessions re-authenticate with Kerberos).
      if (user.totp_confirmed) {
        if (!totp) return InvalidArgumentError("totp: required (TOTP is enrolled)");
        KURA_ASSIGN_OR_RETURN(SecretBytes secret, TotpSecretOf(user));
        auto step = auth::VerifyTotp(secret.view(), *totp, now, user.totp_last_step);
        ok = step.has_value();
        if (step) user.totp_last_step = *step;
        method = "totp";
      } else {
        if (policy.step_up_requires_totp) {
          return PermissionDeniedError("this tenant requires TOTP for sensitive actions: enrol it first");
        }
        if (!password) return InvalidArgumentError("password: required");
        if (user.password_hash.empty()) return PermissionDeniedError("no password set: sign in with Kerberos again");
        ok = VerifyPasswordBounded(user.password_hash, *password);
        method = "password";
      }
      user.version = expected + 1;
      user.updated_at = now;
      if (!ok) {
        auth::LoginFailures next = auth::RecordLoginFailure(
            {user.failed_count, user.failed_window_start, user.locked_until}, now, policy.password);
        user.failed_count = next.count;
        user.failed_window_start = next.window_start;
        user.locked_until = next.locked_until;
        Status refused = UnauthenticatedError("step-up failed: wrong " + method);
        scope.set_failure_outcome(auth::IsLockedOut(next, now) ? "locked_out" : "bad_" + method);
        Status s = store_->UpdateUser(user, expected, nullptr, scope.FailureChange(refused));
        if (s.code() == StatusCode::kAborted) continue;
        KURA_RETURN_IF_ERROR(s);
        return refused;
      }
      // The replay guard first (a used code must stay used), then the session.
      Status s = store_->UpdateUser(user, expected, nullptr, nullptr);
      if (s.code() == StatusCode::kAborted) continue;
      KURA_RETURN_IF_ERROR(s);
      session.authenticated_at = now;
      KURA_RETURN_IF_ERROR(store_->UpdateSession(session, scope.Change()));
      Reply reply;
      reply.body = {{"authenticated_at", TimeJson(now)},
                    {"fresh_until", TimeJson(now + identity_.step_up_window.count())}};
      return reply;
    }
    return UnavailableError("step-up: too many concurrent updates of the account, try again");
  }());
}

Result<Reply> VaultImpl::ChangePassword(const Caller& caller, const json& body) {
  AuditScope scope(this, caller, actions::kPasswordChange, caller.principal.tenant_id, "auth/password");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(CheckObject(body, {"current_password", "new_password"}));
    KURA_ASSIGN_OR_RETURN(std::string current, RequiredString(body, "current_password"));
    KURA_ASSIGN_OR_RETURN(std::string next_password, RequiredString(body, "new_password"));
    KURA_ASSIGN_OR_RETURN(store::SessionRow session, SessionOf(caller));
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(session.tenant_id));
    std::int64_t now = NowSeconds();
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      KURA_ASSIGN_OR_RETURN(store::UserRow user, store_->GetUser(session.tenant_id, session.username));
      if (auth::IsLockedOut({user.failed_count, user.failed_window_start, user.locked_until}, now)) {
        scope.set_failure_outcome("locked_out");
        return UnauthenticatedError("current_password: the account is locked");
      }
      std::int64_t expected = user.version;
      user.version = expected + 1;
      user.updated_at = now;
      if (user.password_hash.empty() || !VerifyPasswordBounded(user.password_hash, current)) {
        auth::LoginFailures next = auth::RecordLoginFailure(
            {user.failed_count, user.failed_window_start, user.locked_until}, now, policy.password);
        user.failed_count = next.count;
        user.failed_window_start = next.window_start;
        user.locked_until = next.locked_until;
        Status refused = UnauthenticatedError("current_password: wrong password");
        scope.set_failure_outcome(auth::IsLockedOut(next, now) ? "locked_out" : "bad_password");
        Status s = store_->UpdateUser(user, expected, nullptr, scope.FailureChange(refused));
        if (s.code() == StatusCode::kAborted) continue;
        KURA_RETURN_IF_ERROR(s);
        return refused;
      }
      KURA_RETURN_IF_ERROR(auth::CheckPasswordStrength(next_password, user.username, policy.password));
      std::vector<std::string> history = ParseStringArray(user.password_history_json);
      bool reused = false;
      {
        PasswordSlot slot(this);  // one Argon2id per remembered password
        reused = auth::PasswordReused(next_password, user.password_hash, history, policy.password);
      }
      if (reused) {
        return InvalidArgumentError("new_password: one of the last " + std::to_string(policy.password.history) +
                                    " passwords; choose another");
      }
      KURA_ASSIGN_OR_RETURN(std::string hash, HashPasswordBounded(next_password, identity_.argon2));
      user.password_history_json =
          json(auth::NextPasswordHistory(std::move(user.password_hash), std::move(history), policy.password)).dump();
      user.password_hash = std::move(hash);
      user.password_changed_at = now;
      Status s = store_->UpdateUser(user, expected, nullptr, scope.Change());
      if (s.code() == StatusCode::kAborted) continue;
      KURA_RETURN_IF_ERROR(s);
      if (session.restriction == kRestrictPasswordChange) {
        // The expired password is replaced: what is left is TOTP enrolment, if due.
        session.restriction = !user.totp_confirmed && policy.password.require_totp ? kRestrictTotpEnrollment : "";
        KURA_RETURN_IF_ERROR(store_->UpdateSession(session, nullptr));
      }
      return NoContent();
    }
    return UnavailableError("password change: too many concurrent updates of the account, try again");
  }());
}

Result<Reply> VaultImpl::TotpEnroll(const Caller& caller) {
  AuditScope scope(this, caller, actions::kTotpEnroll, caller.principal.tenant_id, "auth/totp/enroll");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_ASSIGN_OR_RETURN(store::SessionRow session, SessionOf(caller));
    if (session.restriction == kRestrictPasswordChange) return PermissionDeniedError("change the expired password first");
    std::int64_t now = NowSeconds();
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      KURA_ASSIGN_OR_RETURN(store::UserRow user, store_->GetUser(session.tenant_id, session.username));
      if (user.totp_confirmed) {
        return AlreadyExistsError("TOTP is already enrolled; an administrator can reset it");
      }
      std::int64_t expected = user.version;
      Bytes secret = auth::NewTotpSecret();
      SecretBytes held = SecretBytes::FromBytes(secret);
      KURA_ASSIGN_OR_RETURN(user.totp_secret_sealed,
                            keyring_.WrapSecret(held, crypto::KeyPurpose::kTotpSecret, TotpOwner(user)));
      user.totp_last_step = 0;
      user.version = expected + 1;
      user.updated_at = now;
      Status s = store_->UpdateUser(user, expected, nullptr, scope.Change());
      if (s.code() == StatusCode::kAborted) continue;
      KURA_RETURN_IF_ERROR(s);
      std::string account = session.tenant_id.empty() ? user.username : user.username + "@" + session.tenant_id;
      std::string uri = auth::TotpUri(identity_.totp_issuer, account, secret);
      KURA_ASSIGN_OR_RETURN(std::string svg, auth::QrCodeSvg(uri));
      Reply reply;
      reply.body = {{"secret", auth::Base32Encode(secret)}, {"uri", uri}, {"qr_svg", svg}};
      std::fill(secret.begin(), secret.end(), 0);
      return reply;
    }
    return UnavailableError("TOTP enrolment: too many concurrent updates of the account, try again");
  }());
}

Result<Reply> VaultImpl::TotpConfirm(const Caller& caller, const json& body) {
  AuditScope scope(this, caller, actions::kTotpConfirm, caller.principal.tenant_id, "auth/totp/confirm");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(CheckObject(body, {"code"}));
    KURA_ASSIGN_OR_RETURN(std::string code, RequiredString(body, "code"));
    KURA_ASSIGN_OR_RETURN(store::SessionRow session, SessionOf(caller));
    if (session.restriction == kRestrictPasswordChange) return PermissionDeniedError("change the expired password first");
    std::int64_t now = NowSeconds();
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      KURA_ASSIGN_OR_RETURN(store::UserRow user, store_->GetUser(session.tenant_id, session.username));
      if (user.totp_confirmed) return AlreadyExistsError("TOTP is already enrolled");
      if (user.totp_secret_sealed.empty()) return InvalidArgumentError("no TOTP enrolment to confirm: start with POST /v1/auth/totp/enroll");
      KURA_ASSIGN_OR_RETURN(SecretBytes secret, TotpSecretOf(user));
      auto step = auth::VerifyTotp(secret.view(), code, now, user.totp_last_step);
      if (!step) return InvalidArgumentError("code: wrong or expired TOTP code");
      std::int64_t expected = user.version;
      auth::RecoveryCodes recovery = auth::GenerateRecoveryCodes();
      user.totp_confirmed = true;
      user.totp_last_step = *step;
      user.recovery_codes_json = json(recovery.hashes).dump();
      user.version = expected + 1;
      user.updated_at = now;
      Status s = store_->UpdateUser(user, expected, nullptr, scope.Change());
      if (s.code() == StatusCode::kAborted) continue;
      KURA_RETURN_IF_ERROR(s);
      if (session.restriction == kRestrictTotpEnrollment) {
        session.restriction.clear();
        session.method = "password+totp";
        session.authenticated_at = now;
        KURA_RETURN_IF_ERROR(store_->UpdateSession(session, nullptr));
      }
      Reply reply;
      reply.body = {{"recovery_codes", recovery.codes}};
      return reply;
    }
    return UnavailableError("TOTP confirmation: too many concurrent updates of the account, try again");
  }());
}

// --- Users and staff ----------------------------------------------------------------------

namespace {

json UserJson(const store::UserRow& u, const auth::PasswordPolicy& policy, std::int64_t now) {
  json out = {{"username", u.username},
              {"tenant", u.tenant_id.empty() ? json(nullptr) : json(u.tenant_id)},
              {"roles", ParseStringArray(u.roles_json)},
              {"password_set", !u.password_hash.empty()},
              {"password_changed_at", u.password_changed_at > 0 ? TimeJson(u.password_changed_at) : json(nullptr)},
              // changed_at 0: set by an administrator, to be changed at the next sign-in.
              {"password_must_change", !u.password_hash.empty() && u.password_changed_at == 0},
              {"password_expires_at", policy.max_age_days > 0 && u.password_changed_at > 0
                                          ? TimeJson(u.password_changed_at + policy.max_age_days * 86400LL)
                                          : json(nullptr)},
              {"totp", u.totp_confirmed},
              {"locked_until", u.locked_until > now ? TimeJson(u.locked_until) : json(nullptr)},
              {"disabled", u.disabled},
              {"created_at", TimeJson(u.created_at)},
              {"updated_at", TimeJson(u.updated_at)}};
  if (u.tenant_id.empty()) {
    out["kerberos"] = u.kerberos_principal.empty() ? json(nullptr) : json(u.kerberos_principal);
  }
  return out;
}

Status CheckRoles(const std::string& tenant, const std::vector<std::string>& roles) {
  if (roles.empty()) return InvalidArgumentError("roles: at least one role");
  for (const std::string& r : roles) {
    if (tenant.empty()) {
      const auto& names = StaffRoleNames();
      if (std::find(names.begin(), names.end(), r) == names.end()) {
        return InvalidArgumentError("roles: unknown staff role '" + r +
                                    "' (support, security_officer, auditor, operator)");
      }
    } else if (!policy::IsValidName(r)) {
      return InvalidArgumentError("roles: invalid role name");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<store::UserRow> VaultImpl::PrepareUser(const std::string& tenant, const json& body) {
  if (tenant.empty()) {
    KURA_RETURN_IF_ERROR(CheckObject(body, {"username", "password", "roles", "kerberos"}));
  } else {
    KURA_RETURN_IF_ERROR(CheckObject(body, {"username", "password", "roles"}));
  }
  KURA_ASSIGN_OR_RETURN(std::string username, RequiredString(body, "username"));
  if (!policy::IsValidName(username)) {
    return InvalidArgumentError("username: invalid name (1-64 of a-z, 0-9, '_', '-')");
  }
  KURA_ASSIGN_OR_RETURN(std::vector<std::string> roles, StringList(body, "roles"));
  KURA_RETURN_IF_ERROR(CheckRoles(tenant, roles));
  KURA_ASSIGN_OR_RETURN(auto password, OptionalString(body, "password"));
  KURA_ASSIGN_OR_RETURN(auto kerberos, OptionalString(body, "kerberos"));
  if (kerberos && !IsValidKerberosPrincipal(*kerberos)) {
    return InvalidArgumentError("kerberos: must be a principal name@REALM");
  }
  if (!password && !kerberos) return InvalidArgumentError("password: required");
  std::int64_t now = NowSeconds();
  store::UserRow row;
  row.tenant_id = tenant;
  row.username = username;
  row.roles_json = json(roles).dump();
  row.kerberos_principal = kerberos.value_or("");
  if (password) {
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(tenant));
    KURA_RETURN_IF_ERROR(auth::CheckPasswordStrength(*password, username, policy.password));
    KURA_ASSIGN_OR_RETURN(row.password_hash, HashPasswordBounded(*password, identity_.argon2));
    row.password_changed_at = now;
  }
  row.created_at = now;
  row.updated_at = now;
  row.version = 1;
  return row;
}

Result<Reply> VaultImpl::CreateUser(const Caller& caller, const std::string& tenant, const json& body) {
  AuditScope scope(this, caller, actions::kUserCreate, tenant, UsersResource(tenant, ""));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    if (!tenant.empty()) KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_ASSIGN_OR_RETURN(store::UserRow row, PrepareUser(tenant, body));
    if (!tenant.empty()) {
      KURA_RETURN_IF_ERROR(RequireNoGrantEscalation(caller, tenant, ParseStringArray(row.roles_json)));
    }
    scope.set_resource(UsersResource(tenant, row.username));
    Status s = store_->CreateUser(row, scope.Change());
    if (s.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("user '" + row.username + "' already exists, or the Kerberos principal is taken");
    }
    KURA_RETURN_IF_ERROR(s);
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(tenant));
    Reply reply;
    reply.body = UserJson(row, policy.password, NowSeconds());
    reply.created = true;
    return reply;
  }());
}

Result<Reply> VaultImpl::GetUser(const Caller& caller, const std::string& tenant, const std::string& username) {
  AuditScope scope(this, caller, actions::kUserRead, tenant, UsersResource(tenant, username));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    auto row = store_->GetUser(tenant, username);
    if (row.status().code() == StatusCode::kNotFound) return NotFoundError("user '" + username + "' not found");
    KURA_RETURN_IF_ERROR(row.status());
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(tenant));
    Reply reply;
    reply.body = UserJson(*row, policy.password, NowSeconds());
    return reply;
  }());
}

Result<Reply> VaultImpl::ListUsers(const Caller& caller, const std::string& tenant, const PageParams& page) {
  AuditScope scope(this, caller, actions::kUserList, tenant, UsersResource(tenant, ""));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    KURA_ASSIGN_OR_RETURN(store::PageRequest req, ToPageRequest(page));
    KURA_ASSIGN_OR_RETURN(auto rows, store_->ListUsers(tenant, req));
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(tenant));
    std::int64_t now = NowSeconds();
    json items = json::array();
    for (const auto& row : rows.items) items.push_back(UserJson(row, policy.password, now));
    Reply reply;
    reply.body = {{"items", std::move(items)}, {"next", rows.next ? json(*rows.next) : json(nullptr)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::UpdateUser(const Caller& caller, const std::string& tenant, const std::string& username,
                                    const json& body) {
  AuditScope scope(this, caller, actions::kUserUpdate, tenant, UsersResource(tenant, username));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    if (tenant.empty()) {
      KURA_RETURN_IF_ERROR(CheckObject(body, {"roles", "password", "disabled", "kerberos", "reset_totp", "unlock"}));
    } else {
      KURA_RETURN_IF_ERROR(CheckObject(body, {"roles", "password", "disabled", "reset_totp", "unlock"}));
    }
    KURA_ASSIGN_OR_RETURN(AuthPolicy policy, PolicyFor(tenant));
    KURA_ASSIGN_OR_RETURN(auto password, OptionalString(body, "password"));
    std::string new_hash;
    if (password) {
      KURA_RETURN_IF_ERROR(auth::CheckPasswordStrength(*password, username, policy.password));
      KURA_ASSIGN_OR_RETURN(new_hash, HashPasswordBounded(*password, identity_.argon2));
    }
    for (const char* key : {"disabled", "reset_totp", "unlock"}) {
      if (body.contains(key) && !body[key].is_boolean()) return InvalidArgumentError(std::string(key) + ": must be true or false");
    }
    std::int64_t now = NowSeconds();
    for (int attempt = 0; attempt < kUpdateRetries; ++attempt) {
      auto found = store_->GetUser(tenant, username);
      if (found.status().code() == StatusCode::kNotFound) return NotFoundError("user '" + username + "' not found");
      KURA_RETURN_IF_ERROR(found.status());
      store::UserRow user = std::move(found).value();
      if (!tenant.empty() && caller.principal.kind == PrincipalKind::kStaff) {
        // Under a grant, staff never take over an account (no password set)
        // nor touch one that holds the powers they may not hand out.
        if (password) return PermissionDeniedError("permission denied: staff do not set a tenant user's password");
        KURA_RETURN_IF_ERROR(RequireNoGrantEscalation(caller, tenant, ParseStringArray(user.roles_json)));
      }
      std::int64_t expected = user.version;
      if (body.contains("roles")) {
        KURA_ASSIGN_OR_RETURN(std::vector<std::string> roles, StringList(body, "roles"));
        KURA_RETURN_IF_ERROR(CheckRoles(tenant, roles));
        if (!tenant.empty()) KURA_RETURN_IF_ERROR(RequireNoGrantEscalation(caller, tenant, roles));
        user.roles_json = json(roles).dump();
      }
      if (password) {
        std::vector<std::string> history = ParseStringArray(user.password_history_json);
        if (!user.password_hash.empty()) {
          user.password_history_json =
              json(auth::NextPasswordHistory(user.password_hash, std::move(history), policy.password)).dump();
        }
        user.password_hash = new_hash;
        // Set by an administrator: the user chooses their own at the next
        // sign-in (the session is restricted to a password change).
        user.password_changed_at = 0;
      }
      if (body.contains("disabled")) user.disabled = body["disabled"].get<bool>();
      if (body.value("unlock", false)) {
        user.failed_count = 0;
        user.failed_window_start = 0;
        user.locked_until = 0;
      }
      if (body.value("reset_totp", false)) {
        user.totp_secret_sealed.clear();
        user.totp_confirmed = false;
        user.recovery_codes_json = "[]";
      }
      if (body.contains("kerberos")) {
        KURA_ASSIGN_OR_RETURN(auto kerberos, OptionalString(body, "kerberos"));
        if (kerberos && !IsValidKerberosPrincipal(*kerberos)) {
          return InvalidArgumentError("kerberos: must be a principal name@REALM");
        }
        user.kerberos_principal = kerberos.value_or("");
      }
      user.version = expected + 1;
      user.updated_at = now;
      Status s = store_->UpdateUser(user, expected, nullptr, scope.Change());
      if (s.code() == StatusCode::kAborted) continue;
      if (s.code() == StatusCode::kAlreadyExists) return AlreadyExistsError("kerberos: principal is mapped to another user");
      KURA_RETURN_IF_ERROR(s);
      if (user.disabled || password) {
        // A disabled account, or one whose password an administrator reset,
        // keeps no session: enabling it again does not bring old ones back.
        // Part of the audited update above.
        KURA_RETURN_IF_ERROR(store_->RevokeUserSessions(tenant, username, now, nullptr).status());
      }
      Reply reply;
      reply.body = UserJson(user, policy.password, now);
      return reply;
    }
    return UnavailableError("user update: too many concurrent updates of the account, try again");
  }());
}

Result<Reply> VaultImpl::DeleteUser(const Caller& caller, const std::string& tenant, const std::string& username) {
  AuditScope scope(this, caller, actions::kUserDelete, tenant, UsersResource(tenant, username));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    if (!tenant.empty() && caller.principal.kind == PrincipalKind::kStaff) {
      auto target = store_->GetUser(tenant, username);
      if (target.ok()) KURA_RETURN_IF_ERROR(RequireNoGrantEscalation(caller, tenant, ParseStringArray(target->roles_json)));
    }
    Status s = store_->DeleteUser(tenant, username, scope.Change());
    if (s.code() == StatusCode::kNotFound) return NotFoundError("user '" + username + "' not found");
    KURA_RETURN_IF_ERROR(s);
    return NoContent();
  }());
}

Result<Reply> VaultImpl::RevokeUserSessions(const Caller& caller, const std::string& tenant,
                                            const std::string& username) {
  AuditScope scope(this, caller, actions::kSessionRevoke, tenant, UsersResource(tenant, username) + "/sessions");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireUserAdmin(caller, tenant));
    auto user = store_->GetUser(tenant, username);
    if (user.status().code() == StatusCode::kNotFound) return NotFoundError("user '" + username + "' not found");
    KURA_RETURN_IF_ERROR(user.status());
    KURA_ASSIGN_OR_RETURN(int revoked, store_->RevokeUserSessions(tenant, username, NowSeconds(), scope.Change()));
    Reply reply;
    reply.body = {{"revoked", revoked}};
    return reply;
  }());
}

Result<Reply> VaultImpl::RevokeRootToken(const Caller& caller) {
  AuditScope scope(this, caller, actions::kRootTokenRevoke, "", "sys/root-token");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kOperator}));
    KURA_RETURN_IF_ERROR(RequireFreshAuth(caller));
    std::lock_guard lifecycle(lifecycle_mu_);
    KURA_ASSIGN_OR_RETURN(Bytes meta, store_->GetMeta(kInitMetaKey));
    json doc = json::parse(AsString(meta), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) return DataLossError("vault meta entry is malformed");
    if (doc.value("root_token_hash", "").empty()) return NotFoundError("the root token is already revoked");
    doc["root_token_hash"] = "";
    doc["root_token_revoked_at"] = NowSeconds();
    std::string text = doc.dump();
    KURA_RETURN_IF_ERROR(store_->PutMeta(kInitMetaKey, AsBytes(text), scope.Change()));
    std::unique_lock state(state_mu_);
    root_token_hash_.clear();
    return NoContent();
  }());
}

}  // namespace kura::vault
