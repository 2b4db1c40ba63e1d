// Audit entries: what one entry says, its canonical encoding and its leaf
// hash (docs/formats/audit.md).
//
// An entry is encoded once, when the store gives it its sequence number and
// the previous entry's hash, as canonical JSON: fixed key order, no
// whitespace, ASCII only (non-ASCII escaped as \uXXXX). The stored bytes are
// what is hashed; verifiers never re-encode. No secret, token or field value
// ever goes into an Event: a looked-up value appears only as a keyed HMAC.
#ifndef KURA_AUDIT_ENTRY_H_
#define KURA_AUDIT_ENTRY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/status.h"
#include "store/store.h"

namespace kura::audit {

constexpr int kEntryFormat = 1;  // the "v" of every entry
constexpr std::size_t kHashSize = 32;

// What the vault knows about one request (or one internal event) and its outcome.
struct Event {
  std::int64_t at_ms = 0;   // unix milliseconds
  std::string principal;    // "root", "apikey:<id>", "anonymous", "system", …
  std::string tenant;       // "" when the request concerns no tenant
  std::string action;       // "record.read", "tenant.create", "auth", …
  std::string resource;     // "customers/<id>", "roles/support", "" …
  std::string outcome;      // "success", or the error code ("permission_denied", …)
  std::string client;       // client address, "" for internal events
  std::string request_id;
  std::string grant_id;     // the lockbox grant used, "" if none
  std::string reason;       // X-Kura-Reason (purpose of use), "" if none
  std::string lookup;       // "<field>:<hex HMAC>" of a looked-up value, "" if none
};

struct Entry {
  std::int64_t seq = 0;
  Bytes prev_hash;  // 32 bytes; empty for seq 0
  Event event;
};

// The canonical bytes of entry `seq` following the entry with hash `prev_hash`.
std::string EncodeEntry(std::int64_t seq, ByteView prev_hash, const Event& event);
// Parses canonical bytes. DataLoss when they are not a well-formed entry of a
// known format (wrong key order or extra whitespace included: canonical only).
Result<Entry> DecodeEntry(std::string_view bytes);
// RFC 6962 leaf hash: SHA-256(0x00 || entry).
Bytes LeafHash(ByteView entry);

// The store's view of an event waiting for its sequence number.
class PendingEntry final : public store::AuditLink {
 public:
  // Encodes everything but the head (seq, prev) here, on the caller's
  // thread, so that Link (in the store's writer) only adds the head and hashes.
  explicit PendingEntry(Event event);
  store::AuditRow Link(std::int64_t seq, ByteView prev_hash) const override;

 private:
  std::int64_t at_ms_;
  std::string body_;
  std::string tenant_, principal_, action_, resource_, outcome_;
};

// Whether a stored row's columns agree with its encoded entry (seq, time,
// tenant, principal, action, resource, outcome) and its hash with LeafHash.
// DataLoss naming the first disagreement.
Status CheckRow(const store::AuditRow& row, const Entry& decoded);

}  // namespace kura::audit

#endif  // KURA_AUDIT_ENTRY_H_
