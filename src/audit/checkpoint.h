// Signed checkpoints (tree heads) of the audit log (docs/formats/audit.md).
//
// The signed text is a small note, one field per line, so anyone can check a
// checkpoint with `openssl pkeyutl -verify -rawin`:
//
//   kura-audit-checkpoint v1\n
//   <key id: hex of the first 8 bytes of SHA-256(public key)>\n
//   <tree size, decimal>\n
//   <root, base64 (standard alphabet, padded)>\n
//   <time, unix milliseconds, decimal>\n
#ifndef KURA_AUDIT_CHECKPOINT_H_
#define KURA_AUDIT_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/status.h"
#include "crypto/signing.h"
#include "store/store.h"

namespace kura::audit {

struct Checkpoint {
  std::string key_id;
  std::int64_t tree_size = 0;
  Bytes root;
  std::int64_t at_ms = 0;
};

std::string KeyId(ByteView public_key);
std::string CheckpointNote(const Checkpoint& checkpoint);
// DataLoss when `note` is not exactly a note of this format.
Result<Checkpoint> ParseCheckpointNote(std::string_view note);

// Fills key_id from `key` and signs.
store::AuditCheckpointRow SignCheckpoint(Checkpoint checkpoint, const crypto::SigningKey& key);
// OK when the note parses, its columns (tree size, root, time) agree with it,
// its key id names `public_key` and the signature verifies; DataLoss naming
// the checkpoint's tree size otherwise.
Status VerifyCheckpoint(const store::AuditCheckpointRow& row, ByteView public_key);

}  // namespace kura::audit

#endif  // KURA_AUDIT_CHECKPOINT_H_
