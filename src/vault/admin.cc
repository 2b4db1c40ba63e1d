// Tenants (operator) and tenant administration: collections, roles, API keys.
#include "auth/token.h"
#include "store/store.h"
#include "vault/body.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxDisplayName = 200;  // code points

Status CheckName(std::string_view what, const std::string& name) {
  if (!policy::IsValidName(name)) {
    return InvalidArgumentError(std::string(what) + ": invalid name (1-64 of a-z, 0-9, '_', '-')");
  }
  return Status::Ok();
}

Status CheckDisplayName(const std::string& name) {
  std::size_t n = CodePointCount(name);
  if (n < 1 || n > kMaxDisplayName) {
    return InvalidArgumentError("name: must be 1-" + std::to_string(kMaxDisplayName) + " characters");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return InvalidArgumentError("name: must not contain control characters");
  }
  return Status::Ok();
}

json TenantJson(const store::TenantRow& row) {
  return {{"id", row.id}, {"name", row.name}, {"region", row.region}, {"created_at", TimeJson(row.created_at)}};
}

json ApiKeyJson(const store::ApiKeyRow& row) {
  return {{"id", row.id},
          {"name", row.name},
          {"role", row.role},
          {"created_at", TimeJson(row.created_at)},
          {"expires_at", TimeJson(row.expires_at)},
          {"revoked_at", TimeJson(row.revoked_at)}};
}

}  // namespace

// --- Tenants -----------------------------------------------------------------

Result<Reply> VaultImpl::CreateTenant(const Caller& caller, const json& body) {
  AuditScope scope(this, caller, actions::kTenantCreate, "", "tenants");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kOperator}));
    KURA_RETURN_IF_ERROR(CheckObject(body, {"id", "name", "region", "admin"}));
    KURA_ASSIGN_OR_RETURN(std::string id, RequiredString(body, "id"));
    KURA_RETURN_IF_ERROR(CheckName("id", id));
    scope.set_tenant(id);
    scope.set_resource("tenants/" + id);
    KURA_ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
    KURA_RETURN_IF_ERROR(CheckDisplayName(name));
    KURA_ASSIGN_OR_RETURN(auto region, OptionalString(body, "region"));
    if (region && !IsKnownRegion(*region)) return InvalidArgumentError("region: unknown region (jp|us|eu|in)");
    // The tenant's first admin (SPEC Appendix A): checked in full (name,
    // password policy) before the tenant is made, so a weak password leaves
    // nothing behind.
    std::optional<store::UserRow> admin;
    if (body.contains("admin") && !body["admin"].is_null()) {
      json admin_body = body["admin"];
      if (!admin_body.is_object()) return InvalidArgumentError("admin: must be an object {\"username\",\"password\"}");
      KURA_RETURN_IF_ERROR(CheckObject(admin_body, {"username", "password"}));
      admin_body["roles"] = json::array({policy::kAdminRoleName});
      auto prepared = PrepareUser(id, admin_body);
      if (!prepared.ok()) return Status(prepared.status().code(), "admin." + prepared.status().message());
      admin = std::move(prepared).value();
    }

    store::TenantRow row;
    row.id = id;
    row.name = name;
    row.region = region.value_or(region_);
    row.created_at = NowSeconds();
    row.data_key_version = 1;
    // Keys first, in the key store; then the row. A crash in between leaves
    // keys without a tenant, which `tenant delete` destroys.
    Status keyed = InsertWrappedKeys([&] { return keyring_.NewTenantKeys(id, row.created_at); });
    if (keyed.code() == StatusCode::kAlreadyExists) {
      if (store_->GetTenant(id).ok()) return AlreadyExistsError("tenant '" + id + "' already exists");
      return AlreadyExistsError("keys of a tenant '" + id +
                                "' exist without the tenant (an interrupted create, or one running now); "
                                "delete tenant '" + id + "' to destroy them, then create it again");
    }
    KURA_RETURN_IF_ERROR(keyed);
    Status s = store_->CreateTenant(row, scope.Change());
    if (!s.ok()) {
      // The row did not go in: the keys just made belong to nobody. (A row
      // that exists already has no keys of its own: ours went in, so the key
      // store held none for it.)
      key_store_->DestroyKeys(id).status().IgnoreError();
      if (s.code() == StatusCode::kAlreadyExists) return AlreadyExistsError("tenant '" + id + "' already exists");
      return s;
    }
    // A tenant of the same id may have existed before (deleted elsewhere):
    // never keep anything cached under its name.
    ForgetTenant(id);
    Reply reply;
    reply.body = TenantJson(row);
    if (admin) {
      AuditScope user_scope(this, caller, actions::kUserCreate, id, "users/" + admin->username);
      KURA_RETURN_IF_ERROR(user_scope.Finish(store_->CreateUser(*admin, user_scope.Change())));
      reply.body["admin"] = admin->username;
    }
    reply.created = true;
    return reply;
  }());
}

Result<Reply> VaultImpl::GetTenant(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kTenantRead, tenant, "tenants/" + tenant);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kOperator, staff_roles::kSecurityOfficer,
                                               staff_roles::kAuditor, staff_roles::kSupport}));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    auto row = store_->GetTenant(tenant);
    if (row.status().code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
    if (!row.ok()) return row.status();
    Reply reply;
    reply.body = TenantJson(*row);
    return reply;
  }());
}

Result<Reply> VaultImpl::ListTenants(const Caller& caller, const PageParams& page) {
  AuditScope scope(this, caller, actions::kTenantList, "", "tenants");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kOperator, staff_roles::kSecurityOfficer,
                                               staff_roles::kAuditor, staff_roles::kSupport}));
    KURA_ASSIGN_OR_RETURN(store::PageRequest req, ToPageRequest(page));
    KURA_ASSIGN_OR_RETURN(auto rows, store_->ListTenants(req));
    json items = json::array();
    for (const auto& row : rows.items) items.push_back(TenantJson(row));
    Reply reply;
    reply.body = {{"items", std::move(items)}, {"next", rows.next ? json(*rows.next) : json(nullptr)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::DeleteTenant(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kTenantDelete, tenant, "tenants/" + tenant);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireStaff(caller, {staff_roles::kOperator}));
    KURA_RETURN_IF_ERROR(RequireFreshAuth(caller));  // sensitive: destroys the tenant's keys
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    // Crypto-shredding: the keys go first, from the key store, which no
    // backup of the data store holds. From then on every copy of the
    // tenant's ciphertext, in this store or in any backup, is unreadable,
    // even if deleting the rows below fails. A tenant whose keys are gone
    // already (an earlier, interrupted delete) is deleted all the same.
    int destroyed = 0;
    {
      AuditScope keys_scope(this, caller, actions::kKeyDestroy, tenant, "tenants/" + tenant + "/keys");
      auto n = key_store_->DestroyKeys(tenant);
      ForgetTenant(tenant);
      KURA_RETURN_IF_ERROR(keys_scope.Finish(n.status()));
      destroyed = *n;
    }
    Status s = store_->DeleteTenant(tenant, scope.Change());
    // Forget cached keys either way: if the rows are gone, so must be the keys.
    ForgetTenant(tenant);
    if (s.code() == StatusCode::kNotFound) {
      // Keys without a tenant (an interrupted create): destroying them was the work.
      if (destroyed > 0) return NoContent();
      return NotFoundError("tenant '" + tenant + "' not found");
    }
    KURA_RETURN_IF_ERROR(s);
    return NoContent();
  }());
}

// --- Collections ---------------------------------------------------------------

Result<Reply> VaultImpl::PutCollection(const Caller& caller, const std::string& tenant, const std::string& collection,
                                       const json& body) {
  AuditScope scope(this, caller, actions::kCollectionWrite, tenant, "collections/" + collection);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(CheckName("collection", collection));
    KURA_ASSIGN_OR_RETURN(CollectionSchema schema, ParseSchema(body));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    json stored = SchemaToJson(schema);
    store::CollectionRow row;
    row.tenant_id = tenant;
    row.name = collection;
    row.schema_json = stored.dump();
    row.created_at = NowSeconds();
    row.updated_at = row.created_at;
    KURA_ASSIGN_OR_RETURN(bool created, store_->PutCollection(row, scope.Change()));
    schemas_.Erase(PairKey(tenant, collection));
    Reply reply;
    reply.body = std::move(stored);
    reply.created = created;
    return reply;
  }());
}

Result<Reply> VaultImpl::GetCollection(const Caller& caller, const std::string& tenant,
                                       const std::string& collection) {
  AuditScope scope(this, caller, actions::kCollectionRead, tenant, "collections/" + collection);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    {
      // Tenant admins, and any key, user or grant with some permission on
      // this collection (an application needs the schema it writes to).
      KURA_ASSIGN_OR_RETURN(auto role, RoleOf(caller.principal, tenant));
      bool allowed = policy::Decide(*role, policy::Action::kUsersAdmin, "").allowed;
      for (policy::Action a : policy::AllActions()) {
        allowed = allowed || (a != policy::Action::kUsersAdmin && policy::Decide(*role, a, collection).allowed);
      }
      if (!allowed) return PermissionDeniedError("permission denied");
    }
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(CheckName("collection", collection));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_ASSIGN_OR_RETURN(auto schema, SchemaOf(tenant, collection));
    Reply reply;
    reply.body = SchemaToJson(*schema);
    return reply;
  }());
}

Result<Reply> VaultImpl::ListCollections(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kCollectionList, tenant, "collections");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    std::shared_ptr<const policy::Role> limited;  // set when only some collections may be shown
    {
      KURA_ASSIGN_OR_RETURN(auto role, RoleOf(caller.principal, tenant));
      if (!policy::Decide(*role, policy::Action::kUsersAdmin, "").allowed) limited = std::move(role);
    }
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    json items = json::array();
    store::PageRequest req;
    req.limit = max_page_size_;
    // Collections per tenant are few (schemas, not data): list them all.
    for (;;) {
      KURA_ASSIGN_OR_RETURN(auto page, store_->ListCollections(tenant, req));
      for (const auto& row : page.items) {
        if (limited) {
          bool any = false;
          for (policy::Action a : policy::AllActions()) {
            any = any || (a != policy::Action::kUsersAdmin && policy::Decide(*limited, a, row.name).allowed);
          }
          if (!any) continue;
        }
        items.push_back({{"name", row.name},
                         {"created_at", TimeJson(row.created_at)},
                         {"updated_at", TimeJson(row.updated_at)}});
      }
      if (!page.next) break;
      req.after = *page.next;
    }
    Reply reply;
    reply.body = {{"items", std::move(items)}};
    return reply;
  }());
}

// --- Roles -------------------------------------------------------------------

Result<Reply> VaultImpl::PutRole(const Caller& caller, const std::string& tenant, const std::string& role,
                                 const json& body) {
  AuditScope scope(this, caller, actions::kRoleWrite, tenant, "roles/" + role);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(CheckName("role", role));
    if (role == policy::kAdminRoleName) return InvalidArgumentError("role: 'admin' is built in and cannot be changed");
    KURA_ASSIGN_OR_RETURN(policy::Role parsed, policy::ParseRole(role, body));
    KURA_RETURN_IF_ERROR(RequireNoGrantEscalation(caller, tenant, parsed));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    json out = policy::RoleToJson(parsed);
    store::RoleRow row;
    row.tenant_id = tenant;
    row.name = role;
    row.permissions_json = json{{"permissions", out["permissions"]}}.dump();
    row.updated_at = NowSeconds();
    KURA_ASSIGN_OR_RETURN(bool created, store_->PutRole(row, scope.Change()));
    roles_.Erase(PairKey(tenant, role));
    Reply reply;
    reply.body = std::move(out);
    reply.created = created;
    return reply;
  }());
}

Result<Reply> VaultImpl::GetRole(const Caller& caller, const std::string& tenant, const std::string& role) {
  AuditScope scope(this, caller, actions::kRoleRead, tenant, "roles/" + role);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(CheckName("role", role));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    auto loaded = LoadRole(tenant, role);
    if (loaded.status().code() == StatusCode::kNotFound) return NotFoundError("role '" + role + "' not found");
    if (!loaded.ok()) return loaded.status();
    Reply reply;
    reply.body = policy::RoleToJson(**loaded);
    return reply;
  }());
}

Result<Reply> VaultImpl::ListRoles(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kRoleList, tenant, "roles");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_ASSIGN_OR_RETURN(auto rows, store_->ListRoles(tenant));
    json items = json::array();
    items.push_back(policy::RoleToJson(policy::BuiltinAdminRole()));
    for (const auto& row : rows) {
      json body = json::parse(row.permissions_json, nullptr, /*allow_exceptions=*/false);
      auto parsed = policy::ParseRole(row.name, body);
      if (!parsed.ok()) return DataLossError("stored role '" + row.name + "' of tenant '" + tenant + "' is malformed");
      items.push_back(policy::RoleToJson(*parsed));
    }
    Reply reply;
    reply.body = {{"items", std::move(items)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::DeleteRole(const Caller& caller, const std::string& tenant, const std::string& role) {
  AuditScope scope(this, caller, actions::kRoleDelete, tenant, "roles/" + role);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(CheckName("role", role));
    if (role == policy::kAdminRoleName) return InvalidArgumentError("role: 'admin' is built in and cannot be deleted");
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    Status s = store_->DeleteRole(tenant, role, scope.Change());
    roles_.Erase(PairKey(tenant, role));
    if (s.code() == StatusCode::kNotFound) return NotFoundError("role '" + role + "' not found");
    KURA_RETURN_IF_ERROR(s);
    return NoContent();
  }());
}

// --- API keys ------------------------------------------------------------------

Result<Reply> VaultImpl::CreateApiKey(const Caller& caller, const std::string& tenant, const json& body) {
  AuditScope scope(this, caller, actions::kApiKeyCreate, tenant, "apikeys");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(CheckObject(body, {"name", "role", "expires_at"}));
    KURA_ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
    KURA_RETURN_IF_ERROR(CheckDisplayName(name));
    KURA_ASSIGN_OR_RETURN(std::string role, RequiredString(body, "role"));
    KURA_RETURN_IF_ERROR(RequireNoGrantEscalation(caller, tenant, std::vector<std::string>{role}));
    KURA_RETURN_IF_ERROR(CheckName("role", role));
    KURA_ASSIGN_OR_RETURN(auto expires_text, OptionalString(body, "expires_at"));
    std::optional<std::int64_t> expires_at;
    if (expires_text) {
      auto t = ParseRfc3339(*expires_text);
      if (!t) return InvalidArgumentError("expires_at: expected an RFC 3339 time, e.g. 2030-01-31T00:00:00Z");
      expires_at = ToUnixSeconds(*t);
      if (*expires_at <= NowSeconds()) return InvalidArgumentError("expires_at: must be in the future");
    }
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    auto loaded = LoadRole(tenant, role);
    if (loaded.status().code() == StatusCode::kNotFound) {
      return InvalidArgumentError("role: no role '" + role + "' in this tenant");
    }
    if (!loaded.ok()) return loaded.status();

    auth::NewApiKey key = auth::GenerateApiKey();
    store::ApiKeyRow row;
    row.id = key.id;
    row.tenant_id = tenant;
    row.name = name;
    row.role = role;
    row.key_hash = auth::TokenHash(key.token);  // the key itself is never stored
    row.created_at = NowSeconds();
    row.expires_at = expires_at;
    scope.set_resource("apikeys/" + row.id);
    KURA_RETURN_IF_ERROR(store_->CreateApiKey(row, scope.Change()));
    Reply reply;
    reply.body = ApiKeyJson(row);
    reply.body["key"] = key.token;
    reply.created = true;
    return reply;
  }());
}

Result<Reply> VaultImpl::ListApiKeys(const Caller& caller, const std::string& tenant) {
  AuditScope scope(this, caller, actions::kApiKeyList, tenant, "apikeys");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_ASSIGN_OR_RETURN(auto rows, store_->ListApiKeys(tenant));
    json items = json::array();
    for (const auto& row : rows) items.push_back(ApiKeyJson(row));
    Reply reply;
    reply.body = {{"items", std::move(items)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::RevokeApiKey(const Caller& caller, const std::string& tenant, const std::string& key_id) {
  AuditScope scope(this, caller, actions::kApiKeyRevoke, tenant, "apikeys/" + key_id);
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireTenantAdmin(caller, tenant));
    KURA_RETURN_IF_ERROR(CheckName("tenant", tenant));
    if (!auth::IsValidApiKeyId(key_id)) return InvalidArgumentError("id: not an API key id");
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    Status s = store_->RevokeApiKey(tenant, key_id, NowSeconds(), scope.Change());
    // Revocation takes effect at once for this process's authentication cache.
    api_keys_.EraseIf([&](const std::string&, const store::ApiKeyRow& row) { return row.id == key_id; });
    if (s.code() == StatusCode::kNotFound) return NotFoundError("API key '" + key_id + "' not found");
    KURA_RETURN_IF_ERROR(s);
    return NoContent();
  }());
}

}  // namespace kura::vault
