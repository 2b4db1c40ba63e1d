#include "crypto/envelope.h"

#include <cstdlib>
#include <initializer_list>

#include "core/log.h"
#include "crypto/aead.h"

namespace kura::crypto {
namespace {

constexpr std::string_view kRecordLabel = "kura/record/v1";
constexpr std::string_view kKeyLabel = "kura/key/v1";

void AppendComponent(Bytes* out, std::string_view component) {
  out->push_back(0);
  out->insert(out->end(), component.begin(), component.end());
}

// Fixed width, so the last field needs no terminator and cannot be confused
// with a longer or shorter number.
void AppendInt64(Bytes* out, std::int64_t value) {
  out->push_back(0);
  const auto u = static_cast<std::uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<std::uint8_t>(u >> shift));
}

bool AllValid(std::initializer_list<std::string_view> components) {
  for (std::string_view c : components) {
    if (!IsValidAssociatedDataComponent(c)) return false;
  }
  return true;
}

// The NUL-separated layouts are unambiguous only without NUL inside a
// component ("a\0b","c" and "a","b\0c" would collide, letting a ciphertext
// open at a second location). Reaching here with one is a validation bug in
// the caller, and continuing would weaken the binding, so stop.
void RequireValid(std::initializer_list<std::string_view> components) {
  if (!AllValid(components)) {
    log::Error("associated data component contains NUL");
    std::abort();
  }
}

}  // namespace

bool IsValidAssociatedDataComponent(std::string_view component) {
  return component.find('\0') == std::string_view::npos;
}

Bytes RecordAssociatedData(std::string_view tenant, std::string_view collection, std::string_view record_id,
                           std::int64_t version) {
  RequireValid({tenant, collection, record_id});
  Bytes out(kRecordLabel.begin(), kRecordLabel.end());
  out.reserve(out.size() + tenant.size() + collection.size() + record_id.size() + 12);
  AppendComponent(&out, tenant);
  AppendComponent(&out, collection);
  AppendComponent(&out, record_id);
  AppendInt64(&out, version);
  return out;
}

Bytes KeyAssociatedData(KeyPurpose purpose, std::string_view owner, std::int64_t key_version) {
  RequireValid({owner});
  Bytes out(kKeyLabel.begin(), kKeyLabel.end());
  out.push_back(0);
  out.push_back(static_cast<std::uint8_t>(purpose));
  AppendComponent(&out, owner);
  AppendInt64(&out, key_version);
  return out;
}

Result<Bytes> SealRecord(const SecretBytes& data_key, ByteView plaintext, std::string_view tenant,
                         std::string_view collection, std::string_view record_id, std::int64_t version) {
  if (!AllValid({tenant, collection, record_id})) return InvalidArgumentError("record location contains NUL");
  return AeadSeal(data_key, plaintext, RecordAssociatedData(tenant, collection, record_id, version));
}

Result<SecretBytes> OpenRecord(const SecretBytes& data_key, ByteView sealed, std::string_view tenant,
                               std::string_view collection, std::string_view record_id, std::int64_t version) {
  if (!AllValid({tenant, collection, record_id})) return InvalidArgumentError("record location contains NUL");
  return AeadOpen(data_key, sealed, RecordAssociatedData(tenant, collection, record_id, version));
}

Result<Bytes> WrapKey(const SecretBytes& kek, const SecretBytes& key, KeyPurpose purpose, std::string_view owner,
                      std::int64_t key_version) {
  if (key.empty()) return InvalidArgumentError("key to wrap is empty");
  if (!IsValidAssociatedDataComponent(owner)) return InvalidArgumentError("key owner contains NUL");
  return AeadSeal(kek, key.view(), KeyAssociatedData(purpose, owner, key_version));
}

Result<SecretBytes> UnwrapKey(const SecretBytes& kek, ByteView wrapped, KeyPurpose purpose, std::string_view owner,
                              std::int64_t key_version) {
  if (!IsValidAssociatedDataComponent(owner)) return InvalidArgumentError("key owner contains NUL");
  KURA_ASSIGN_OR_RETURN(SecretBytes key, AeadOpen(kek, wrapped, KeyAssociatedData(purpose, owner, key_version)));
  // Keys live as long as the vault is unsealed: keep them in guarded, locked pages.
  return SecretBytes::FromBytes(key.view());
}

}  // namespace kura::crypto
