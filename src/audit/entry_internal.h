// Module-only helpers of the audit entry encoding: the allocation-free fast
// path the verifier uses on every entry, and UTF-8 handling shared by the
// encoder and the stored columns.
#ifndef KURA_AUDIT_ENTRY_INTERNAL_H_
#define KURA_AUDIT_ENTRY_INTERNAL_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace kura::audit::internal {

// The fields of an entry the verifier compares with the stored columns, as
// views into the entry's bytes.
struct EntryFields {
  std::int64_t seq = 0;
  std::string_view prev_hex;  // "" or 64 lowercase hex digits
  std::int64_t at_ms = 0;
  std::string_view principal;
  std::string_view tenant;
  std::string_view action;
  std::string_view resource;
  std::string_view outcome;
};

// True when `bytes` is a canonical entry (exactly what EncodeEntry produces)
// whose strings contain no escape sequence, i.e. the common case of plain
// printable ASCII; then `out` views into `bytes`. False means "not decided
// here": the caller must use DecodeEntry, which decides every other case.
// Never accepts bytes that DecodeEntry would reject.
bool ScanPlainEntry(std::string_view bytes, EntryFields* out);

// `text` with every byte that does not belong to a well-formed UTF-8 sequence
// replaced by U+FFFD, exactly as the encoder treats it; what a column holds
// so that it equals the decoded entry.
std::string ValidUtf8(std::string_view text);
// The same, taking `text` over without a copy when it is plain ASCII.
std::string ValidUtf8(std::string&& text);

// The leaf hash of `entry` (SHA-256 of 0x00 || entry) into `out` (32 bytes),
// reusing `scratch` to avoid an allocation per entry.
void LeafHashInto(std::string_view entry, std::string* scratch, std::uint8_t* out);

// True when every character of `s` is 0-9 or a-f (hashes, key ids).
inline bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace kura::audit::internal

#endif  // KURA_AUDIT_ENTRY_INTERNAL_H_
