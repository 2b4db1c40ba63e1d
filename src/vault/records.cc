// Records: validated, encrypted as a whole under the tenant's data key with
// their place (tenant, collection, id, version) bound in as associated data,
// and found through blind indexes.
#include <string.h>  // explicit_bzero

#include <chrono>
#include <cstdio>

#include "crypto/aead.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "store/store.h"
#include "vault/body.h"
#include "vault/vault_impl.h"

namespace kura::vault {

using nlohmann::json;
using policy::Action;

namespace {

// The audit resource of a record (its path after /v1/t/{t}/).
std::string RecordResource(const std::string& collection, const std::string& id) {
  return "collections/" + collection + "/records/" + id;
}

constexpr std::size_t kRecordIdRandomBytes = 10;
constexpr std::size_t kMaxSubjectLength = 256;  // bytes
constexpr int kUnconditionalUpdateAttempts = 5;
// Blind-index domain of the data subject key (field domains are
// "<collection>/<field>", which cannot collide with it: names have no '/').
constexpr std::string_view kSubjectDomain = "subject";

Status CheckPath(const std::string& tenant, const std::string& collection) {
  if (!policy::IsValidName(tenant)) return InvalidArgumentError("tenant: invalid name");
  if (!policy::IsValidName(collection)) return InvalidArgumentError("collection: invalid name");
  return Status::Ok();
}

Status CheckRecordId(const std::string& id) {
  if (!IsValidRecordId(id)) return InvalidArgumentError("id: invalid record id");
  return Status::Ok();
}

Result<std::optional<std::string>> ParseSubject(const json& body) {
  KURA_ASSIGN_OR_RETURN(auto subject, OptionalString(body, "subject"));
  if (subject && (subject->empty() || subject->size() > kMaxSubjectLength)) {
    return InvalidArgumentError("subject: must be 1-" + std::to_string(kMaxSubjectLength) + " bytes");
  }
  return subject;
}

// Wipes a plaintext copy held in an ordinary string once it is encrypted.
void WipeString(std::string* s) {
  if (!s->empty()) explicit_bzero(s->data(), s->size());
  s->clear();
}

// Wipes a string holding record values when its scope ends, however it ends.
struct WipedOnExit {
  std::string* text;
  ~WipedOnExit() { WipeString(text); }
};

Status RecordDamaged(const std::string& id, std::int64_t version) {
  return DataLossError("record '" + id + "' version " + std::to_string(version) + " failed its integrity check");
}

Status KeyDestroyed(const std::string& tenant, std::int64_t key_version) {
  // What reading a crypto-shredded copy gives: the ciphertext is intact but
  // its key no longer exists anywhere.
  return DataLossError("data key version " + std::to_string(key_version) + " of tenant '" + tenant +
                       "' is destroyed");
}

}  // namespace

Result<std::shared_ptr<const TenantKeys>> VaultImpl::KeysFor(const std::string& tenant,
                                                             std::shared_ptr<const TenantKeys> keys,
                                                             std::int64_t key_version) {
  if (keys->DataKey(key_version) != nullptr) return keys;
  // A version the cached keys do not know: newer (another node rotated) or
  // destroyed since they were loaded. Reload once to tell which.
  keyring_.Forget(tenant);
  KURA_ASSIGN_OR_RETURN(keys, KeysOf(tenant));
  if (keys->DataKey(key_version) != nullptr) return keys;
  return KeyDestroyed(tenant, key_version);
}

Result<bool> VaultImpl::KeysOutdated(const std::string& tenant, const TenantKeys& keys) {
  auto row = store_->GetTenant(tenant);
  if (row.status().code() == StatusCode::kNotFound) return NotFoundError("tenant '" + tenant + "' not found");
  if (!row.ok()) return row.status();
  if (row->data_key_version == keys.data_key_version) return false;
  keyring_.Forget(tenant);
  return true;
}

Result<store::RecordWrite> VaultImpl::SealRecord(const TenantKeys& keys, const CollectionSchema& schema,
                                                 const std::string& tenant, const std::string& collection,
                                                 const std::string& id, std::int64_t version, const json& data,
                                                 std::string_view data_text,
                                                 const std::optional<std::string>& subject) const {
  store::RecordWrite w;
  w.tenant_id = tenant;
  w.collection = collection;
  w.id = id;
  w.version = version;
  w.at = NowSeconds();
  w.keep_versions = keep_versions_;
  // The store refuses the write unless this is still the tenant's current
  // version when it commits (a rotation may have moved on).
  w.key_version = keys.data_key_version;

  // Exactly what dumping {"data": data, "subject": subject} gives (members
  // sorted, compact), without dumping the data a second time: data_text is
  // ValidateRecordData's dump of it. FullViewBodyText relies on this form.
  std::string subject_text;
  try {
    subject_text = subject ? json(*subject).dump() : "null";
  } catch (const json::exception&) {
    return InvalidArgumentError("subject: must be valid UTF-8");
  }
  constexpr std::string_view kHead = R"({"data":)";
  constexpr std::string_view kSubject = R"(,"subject":)";
  std::string text;
  // Sized once: a reallocation would free a copy of the values unwiped.
  text.reserve(kHead.size() + data_text.size() + kSubject.size() + subject_text.size() + 1);
  text.append(kHead).append(data_text).append(kSubject).append(subject_text).push_back('}');
  WipeString(&subject_text);
  auto sealed = crypto::AeadSeal(keys.data_key, AsBytes(text),
                                 crypto::RecordAssociatedData(tenant, collection, id, version));
  WipeString(&text);
  if (!sealed.ok()) return sealed.status();
  w.ciphertext = std::move(sealed).value();

  for (const auto& [name, field] : schema.fields) {
    if (!field.index) continue;
    auto it = data.find(name);
    if (it == data.end()) continue;
    std::string normalised = NormaliseIndexValue(field.type, *it);
    w.index.push_back(store::IndexEntry{name, crypto::BlindIndex(keys.index_key, collection + "/" + name, normalised)});
    WipeString(&normalised);
  }
  if (subject) w.subject_hmac = crypto::BlindIndex(keys.index_key, kSubjectDomain, *subject);
  return w;
}

Result<SecretBytes> VaultImpl::OpenRecordText(const TenantKeys& keys, const store::RecordRow& row) const {
  // The associated data names where this ciphertext must be: a ciphertext
  // copied onto another record, collection, tenant or version fails here.
  const SecretBytes* key = keys.DataKey(row.key_version);
  if (key == nullptr) return KeyDestroyed(row.tenant_id, row.key_version);
  auto plain = crypto::AeadOpen(*key, row.ciphertext,
                                crypto::RecordAssociatedData(row.tenant_id, row.collection, row.id, row.version));
  if (!plain.ok()) return RecordDamaged(row.id, row.version);
  return plain;
}

namespace {

Result<json> ParseRecordText(const SecretBytes& plain, const store::RecordRow& row) {
  json doc = json::parse(AsString(plain.view()), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_object()) return RecordDamaged(row.id, row.version);
  return doc;
}

// The full-view reply of RecordBody as text, without parsing the document:
// SealRecord sealed exactly `{"data":{…},"subject":null}` or
// `…,"subject":"…"}` (nlohmann's compact dump: valid UTF-8, no whitespace),
// and the AEAD tag vouches that these are those bytes, so the document's
// members go into the reply as they are and the reply's own follow. Anything
// else (no such document was ever written) gives nullopt: the caller parses,
// which reports the damage. The order of members differs from RecordBody's
// (sorted); JSON objects are unordered.
std::optional<std::string> FullViewBodyText(const store::RecordRow& row, const SecretBytes& plain) {
  const std::string_view doc = AsString(plain.view());
  constexpr std::string_view kHead = R"({"data":{)";
  constexpr std::string_view kSubject = R"(,"subject":)";
  if (!doc.starts_with(kHead)) return std::nullopt;
  const std::size_t at = doc.rfind(kSubject);
  if (at == std::string_view::npos || at < kHead.size()) return std::nullopt;
  // The subject is null or a string; a string's own quotes and backslashes
  // are escaped, so the last `,"subject":` is the document's.
  const std::string_view subject = doc.substr(at + kSubject.size());
  const bool subject_ok =
      subject == "null}" || (subject.size() >= 3 && subject.front() == '"' && subject.ends_with("\"}"));
  if (!subject_ok) return std::nullopt;
  std::string tail = R"(,"id":)";
  AppendJsonString(row.id, &tail);
  tail += R"(,"version":)" + std::to_string(row.version) + R"(,"created_at":)";
  AppendCompactJson(TimeJson(row.created_at), &tail);
  tail += R"(,"updated_at":)";
  AppendCompactJson(TimeJson(row.updated_at), &tail);
  tail += '}';
  // Sized once: a reallocation would free a copy of the values unwiped.
  std::string text;
  text.reserve(doc.size() - 1 + tail.size());
  text.append(doc.substr(0, doc.size() - 1));  // without the closing brace
  text += tail;
  return text;
}

}  // namespace

Result<json> VaultImpl::OpenRecord(const TenantKeys& keys, const store::RecordRow& row) const {
  KURA_ASSIGN_OR_RETURN(SecretBytes plain, OpenRecordText(keys, row));
  return ParseRecordText(plain, row);
}

json VaultImpl::RecordBody(const store::RecordRow& row, const json& plain, const CollectionSchema& schema,
                           policy::FieldView view) const {
  json data = plain["data"];
  if (view == policy::FieldView::kMasked) {
    json masked = json::object();
    for (const auto& [name, value] : data.items()) {
      auto it = schema.fields.find(name);
      // A field the current schema no longer declares has no known rule:
      // leave it out rather than show it unmasked.
      if (it == schema.fields.end()) continue;
      auto out = policy::MaskValue(it->second.mask, value);
      if (out) masked[name] = std::move(*out);
    }
    data = std::move(masked);
  }
  json subject = plain.contains("subject") ? plain["subject"] : json(nullptr);
  return {{"id", row.id},
          {"version", row.version},
          {"data", std::move(data)},
          {"subject", std::move(subject)},
          {"created_at", TimeJson(row.created_at)},
          {"updated_at", TimeJson(row.updated_at)}};
}

Result<Reply> VaultImpl::CreateRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                      const json& body) {
  AuditScope scope(this, caller, actions::kRecordCreate, tenant, "collections/" + collection + "/records");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireRecordRight(caller, tenant, collection, Action::kRecordWrite).status());
    KURA_RETURN_IF_ERROR(CheckPath(tenant, collection));
    KURA_RETURN_IF_ERROR(CheckObject(body, {"data", "subject"}));
    if (!body.contains("data")) return InvalidArgumentError("data: required");
    KURA_ASSIGN_OR_RETURN(auto subject, ParseSubject(body));
    KURA_ASSIGN_OR_RETURN(auto keys, KeysOf(tenant));
    KURA_ASSIGN_OR_RETURN(auto schema, SchemaOf(tenant, collection));
    KURA_ASSIGN_OR_RETURN(std::string data_text, ValidateRecordData(*schema, body["data"]));
    const WipedOnExit wipe_data_text{&data_text};

    // 80 random bits per millisecond: a collision is not expected, but if the
    // store reports one, a fresh id is the right answer.
    bool resealed = false;
    for (int attempt = 0;; ++attempt) {
      std::string id = NewTimeOrderedId(clock_->Now(), kRecordIdRandomBytes);
      KURA_ASSIGN_OR_RETURN(store::RecordWrite w,
                            SealRecord(*keys, *schema, tenant, collection, id, 1, body["data"], data_text, subject));
      scope.set_resource(RecordResource(collection, id));
      Reply reply;
      reply.body = {{"id", id}, {"version", 1}};
      reply.created = true;
      reply.version = 1;
      if (AuditDeferral* deferral = AuditDeferral::Current(); deferral != nullptr && deferral->defers_changes()) {
        // On an I/O thread: the reply goes out only once the write and its
        // entry have committed, and is replaced by the error if they do not
        // (an Aborted one — keys rotated meanwhile — the server runs again on
        // its blocking pool, which reseals below).
        InsertRecordDeferred(*deferral, std::move(w), scope);
        return reply;
      }
      Status s = store_->InsertRecord(w, scope.Change());
      if (s.code() == StatusCode::kAlreadyExists && attempt < 2) continue;
      if (s.code() == StatusCode::kAborted && !resealed) {
        // The tenant's data key was rotated since its keys were cached:
        // seal again under the new current version, once.
        KURA_ASSIGN_OR_RETURN(bool outdated, KeysOutdated(tenant, *keys));
        if (outdated) {
          resealed = true;
          KURA_ASSIGN_OR_RETURN(keys, KeysOf(tenant));
          continue;
        }
      }
      KURA_RETURN_IF_ERROR(s);
      return reply;
    }
  }());
}

Result<Reply> VaultImpl::GetRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                   const std::string& id, std::optional<std::int64_t> version) {
  AuditScope scope(this, caller, actions::kRecordRead, tenant, RecordResource(collection, id));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_ASSIGN_OR_RETURN(policy::Decision d, RequireRecordRight(caller, tenant, collection, Action::kRecordRead));
    KURA_RETURN_IF_ERROR(CheckPath(tenant, collection));
    KURA_RETURN_IF_ERROR(CheckRecordId(id));
    if (version && *version < 1) return InvalidArgumentError("version: must be at least 1");
    KURA_ASSIGN_OR_RETURN(auto keys, KeysOf(tenant));
    KURA_ASSIGN_OR_RETURN(auto schema, SchemaOf(tenant, collection));
    auto prefetched = version ? std::nullopt : RecordPrefetch::Take(tenant, collection, id);
    auto row = prefetched ? std::move(*prefetched) : store_->GetRecord(tenant, collection, id, version);
    if (row.status().code() == StatusCode::kNotFound) {
      return NotFoundError(version ? "record '" + id + "' version " + std::to_string(*version) + " not found"
                                   : "record '" + id + "' not found");
    }
    if (!row.ok()) return row.status();
    auto open_keys = KeysFor(tenant, keys, row->key_version);
    if (open_keys.status().code() == StatusCode::kDataLoss) {
      // The version read may have been re-encrypted and its old key
      // destroyed between reading the row and reloading the keys: read once
      // more before calling it lost.
      auto again = store_->GetRecord(tenant, collection, id, version);
      if (again.ok() && again->key_version != row->key_version) {
        row = std::move(again);
        open_keys = KeysFor(tenant, keys, row->key_version);
      }
    }
    if (!open_keys.ok()) return open_keys.status();
    KURA_ASSIGN_OR_RETURN(SecretBytes plain_text, OpenRecordText(**open_keys, *row));
    Reply reply;
    reply.version = row->version;
    if (d.view == policy::FieldView::kFull) {
      if (auto text = FullViewBodyText(*row, plain_text)) {
        reply.body_text = std::move(*text);
        return reply;
      }
    }
    KURA_ASSIGN_OR_RETURN(json plain, ParseRecordText(plain_text, *row));
    reply.body = RecordBody(*row, plain, *schema, d.view);
    return reply;
  }());
}

// --- Prefetched reads

namespace {
thread_local RecordPrefetch* t_record_prefetch = nullptr;
}  // namespace

RecordPrefetch::RecordPrefetch(std::string tenant, std::string collection, std::string id, Result<store::RecordRow> row)
    : tenant_(std::move(tenant)),
      collection_(std::move(collection)),
      id_(std::move(id)),
      row_(std::make_unique<Result<store::RecordRow>>(std::move(row))) {}

RecordPrefetch::~RecordPrefetch() { Uninstall(); }

bool RecordPrefetch::answered() const { return row_->ok() || row_->status().code() == StatusCode::kNotFound; }

void RecordPrefetch::Install() {
  if (installed_) return;
  outer_ = t_record_prefetch;
  t_record_prefetch = this;
  installed_ = true;
}

void RecordPrefetch::Uninstall() {
  if (!installed_) return;
  t_record_prefetch = outer_;
  outer_ = nullptr;
  installed_ = false;
}

std::optional<Result<store::RecordRow>> RecordPrefetch::Take(const std::string& tenant, const std::string& collection,
                                                             const std::string& id) {
  RecordPrefetch* p = t_record_prefetch;
  if (p == nullptr || !p->row_ || p->tenant_ != tenant || p->collection_ != collection || p->id_ != id) {
    return std::nullopt;
  }
  std::optional<Result<store::RecordRow>> row(std::move(*p->row_));
  p->row_.reset();
  return row;
}

void VaultImpl::PrefetchRecord(const std::string& tenant, const std::string& collection, const std::string& id,
                               std::function<void(std::unique_ptr<RecordPrefetch>)> done) {
  if (!CheckPath(tenant, collection).ok() || !CheckRecordId(id).ok()) {
    done(nullptr);
    return;
  }
  store_->GetRecordAsync(tenant, collection, id,
                         [tenant, collection, id, done = std::move(done)](Result<store::RecordRow> row) {
                           done(std::make_unique<RecordPrefetch>(tenant, collection, id, std::move(row)));
                         });
}

Result<Reply> VaultImpl::UpdateRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                      const std::string& id, const json& body, std::optional<std::int64_t> if_match) {
  AuditScope scope(this, caller, actions::kRecordUpdate, tenant, RecordResource(collection, id));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireRecordRight(caller, tenant, collection, Action::kRecordWrite).status());
    KURA_RETURN_IF_ERROR(CheckPath(tenant, collection));
    KURA_RETURN_IF_ERROR(CheckRecordId(id));
    if (if_match && *if_match < 1) return InvalidArgumentError("If-Match: must be a version of at least 1");
    KURA_RETURN_IF_ERROR(CheckObject(body, {"data", "subject"}));
    if (!body.contains("data")) return InvalidArgumentError("data: required");
    bool subject_given = body.contains("subject");
    KURA_ASSIGN_OR_RETURN(auto subject, ParseSubject(body));
    KURA_ASSIGN_OR_RETURN(auto keys, KeysOf(tenant));
    KURA_ASSIGN_OR_RETURN(auto schema, SchemaOf(tenant, collection));
    KURA_ASSIGN_OR_RETURN(std::string data_text, ValidateRecordData(*schema, body["data"]));
    const WipedOnExit wipe_data_text{&data_text};

    bool resealed = false;
    for (int attempt = 1;; ++attempt) {
      auto current = store_->GetRecord(tenant, collection, id, std::nullopt);
      if (current.status().code() == StatusCode::kNotFound) return NotFoundError("record '" + id + "' not found");
      if (!current.ok()) return current.status();
      std::int64_t expected = current->current_version;
      if (if_match && *if_match != expected) {
        return AbortedError("version conflict: record '" + id + "' is at version " + std::to_string(expected));
      }
      std::optional<std::string> new_subject = subject;
      if (!subject_given) {
        // "subject" left out keeps the record's subject; an explicit null
        // removes it. Reading it back also proves the current version intact.
        // (Reloaded keys, if the version needs them, are the newest: seal with them too.)
        KURA_ASSIGN_OR_RETURN(keys, KeysFor(tenant, keys, current->key_version));
        KURA_ASSIGN_OR_RETURN(json plain, OpenRecord(*keys, *current));
        if (plain.contains("subject") && plain["subject"].is_string()) {
          new_subject = plain["subject"].get<std::string>();
        }
      }
      KURA_ASSIGN_OR_RETURN(store::RecordWrite w, SealRecord(*keys, *schema, tenant, collection, id, expected + 1,
                                                             body["data"], data_text, new_subject));
      Status s = store_->UpdateRecord(w, expected, scope.Change());
      if (s.code() == StatusCode::kAborted && !resealed) {
        // Aborted is a version conflict or a rotated data key; the latter
        // is no conflict of the caller's: seal again under the new key, once.
        KURA_ASSIGN_OR_RETURN(bool outdated, KeysOutdated(tenant, *keys));
        if (outdated) {
          resealed = true;
          KURA_ASSIGN_OR_RETURN(keys, KeysOf(tenant));
          --attempt;
          continue;
        }
      }
      if (s.code() == StatusCode::kAborted) {
        // A conditional update must not silently overwrite what it did not see;
        // an unconditional one retries against the newer version.
        if (if_match || attempt >= kUnconditionalUpdateAttempts) {
          return AbortedError("version conflict: record '" + id + "' was changed concurrently");
        }
        continue;
      }
      if (s.code() == StatusCode::kNotFound) return NotFoundError("record '" + id + "' not found");
      KURA_RETURN_IF_ERROR(s);
      Reply reply;
      reply.body = {{"id", id}, {"version", expected + 1}};
      reply.version = expected + 1;
      return reply;
    }
  }());
}

Result<Reply> VaultImpl::DeleteRecord(const Caller& caller, const std::string& tenant, const std::string& collection,
                                      const std::string& id) {
  AuditScope scope(this, caller, actions::kRecordDelete, tenant, RecordResource(collection, id));
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireRecordRight(caller, tenant, collection, Action::kRecordDelete).status());
    KURA_RETURN_IF_ERROR(CheckPath(tenant, collection));
    KURA_RETURN_IF_ERROR(CheckRecordId(id));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_RETURN_IF_ERROR(SchemaOf(tenant, collection).status());
    Status s = store_->DeleteRecord(tenant, collection, id, scope.Change());
    if (s.code() == StatusCode::kNotFound) return NotFoundError("record '" + id + "' not found");
    KURA_RETURN_IF_ERROR(s);
    Reply reply;
    reply.no_content = true;
    return reply;
  }());
}

Result<Reply> VaultImpl::ListVersions(const Caller& caller, const std::string& tenant, const std::string& collection,
                                      const std::string& id) {
  AuditScope scope(this, caller, actions::kRecordVersions, tenant, RecordResource(collection, id) + "/versions");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_RETURN_IF_ERROR(RequireRecordRight(caller, tenant, collection, Action::kRecordRead).status());
    KURA_RETURN_IF_ERROR(CheckPath(tenant, collection));
    KURA_RETURN_IF_ERROR(CheckRecordId(id));
    KURA_RETURN_IF_ERROR(RequireTenantExists(tenant));
    KURA_RETURN_IF_ERROR(SchemaOf(tenant, collection).status());
    auto versions = store_->ListVersions(tenant, collection, id);
    if (versions.status().code() == StatusCode::kNotFound) return NotFoundError("record '" + id + "' not found");
    if (!versions.ok()) return versions.status();
    json items = json::array();
    for (const auto& v : *versions) items.push_back({{"version", v.version}, {"created_at", TimeJson(v.created_at)}});
    Reply reply;
    reply.body = {{"items", std::move(items)}};
    return reply;
  }());
}

Result<Reply> VaultImpl::FindRecords(const Caller& caller, const std::string& tenant, const std::string& collection,
                                     const std::map<std::string, std::string>& filters, const PageParams& page) {
  AuditScope scope(this, caller, filters.empty() ? actions::kRecordList : actions::kRecordFind, tenant, "collections/" + collection + "/records");
  return scope.Finish([&]() -> Result<Reply> {
    KURA_RETURN_IF_ERROR(RequireUnsealed());
    KURA_ASSIGN_OR_RETURN(policy::Decision d, RequireRecordRight(caller, tenant, collection, Action::kRecordRead));
    if (filters.empty()) {
      // Walking a whole collection is bulk export (SPEC §3, export control): it
      // needs record.export on top of record.read.
      KURA_RETURN_IF_ERROR(RequireRecordRight(caller, tenant, collection, Action::kRecordExport).status());
    }
    KURA_RETURN_IF_ERROR(CheckPath(tenant, collection));
    if (filters.size() > 1) return InvalidArgumentError("at most one filter per lookup");
    KURA_ASSIGN_OR_RETURN(store::PageRequest req, ToPageRequest(page));
    KURA_ASSIGN_OR_RETURN(auto keys, KeysOf(tenant));
    KURA_ASSIGN_OR_RETURN(auto schema, SchemaOf(tenant, collection));

    store::Page<store::RecordRow> rows;
    if (filters.empty()) {
      KURA_ASSIGN_OR_RETURN(rows, store_->ListRecords(tenant, collection, req));
    } else {
      const auto& [field, value] = *filters.begin();
      auto it = schema->fields.find(field);
      if (it == schema->fields.end()) return InvalidArgumentError(field.substr(0, 64) + ": unknown field");
      if (!it->second.index) return InvalidArgumentError(field + ": field is not indexed");
      KURA_ASSIGN_OR_RETURN(std::string normalised, NormaliseQueryValue(it->second, value));
      Bytes hmac = crypto::BlindIndex(keys->index_key, collection + "/" + field, normalised);
      WipeString(&normalised);
      // The looked-up value itself never reaches the log: its blind index
      // does, so an auditor holding the value can find the lookup.
      scope.set_lookup(field + ":" + HexEncode(hmac));
      KURA_ASSIGN_OR_RETURN(rows, store_->FindRecords(tenant, collection, field, hmac, req));
    }
    json items = json::array();
    for (const auto& row : rows.items) {
      // A page may mix versions under the old and the new key while a
      // rotation re-encrypts the tenant.
      KURA_ASSIGN_OR_RETURN(keys, KeysFor(tenant, keys, row.key_version));
      KURA_ASSIGN_OR_RETURN(json plain, OpenRecord(*keys, row));
      items.push_back(RecordBody(row, plain, *schema, d.view));
    }
    Reply reply;
    reply.body = {{"items", std::move(items)}, {"next", rows.next ? json(*rows.next) : json(nullptr)}};
    return reply;
  }());
}

}  // namespace kura::vault
