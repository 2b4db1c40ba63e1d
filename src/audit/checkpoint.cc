#include "audit/checkpoint.h"

#include <charconv>
#include <string>
#include <vector>

#include "audit/entry.h"
#include "audit/entry_internal.h"
#include "crypto/hash.h"

namespace kura::audit {
namespace {

constexpr std::string_view kHeader = "kura-audit-checkpoint v1";
constexpr std::size_t kKeyIdBytes = 8;
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// RFC 4648 §4 base64 with padding: the form `base64 -d` and every language's
// standard library read, for the one binary field of the note.
std::string Base64Encode(ByteView data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16 | std::uint32_t{data[i + 1]} << 8 | data[i + 2];
    out.push_back(kBase64[v >> 18]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(kBase64[(v >> 6) & 63]);
    out.push_back(kBase64[v & 63]);
  }
  if (data.size() - i == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    out.push_back(kBase64[v >> 18]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.append("==");
  } else if (data.size() - i == 2) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16 | std::uint32_t{data[i + 1]} << 8;
    out.push_back(kBase64[v >> 18]);
    out.push_back(kBase64[(v >> 12) & 63]);
    out.push_back(kBase64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

// Strict: only what Base64Encode produces decodes (checked by re-encoding),
// so one checkpoint has one note.
std::optional<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  Bytes out;
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t padding = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') { ++padding; continue; }
    else return std::nullopt;
    if (padding > 0) return std::nullopt;  // data after padding
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  if (padding > 2 || Base64Encode(out) != text) return std::nullopt;
  return out;
}

// A non-negative decimal with no sign and no leading zero.
std::optional<std::int64_t> ParseCount(std::string_view text) {
  if (text.empty() || text.size() > 19 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string Where(std::int64_t tree_size) { return "audit checkpoint at tree size " + std::to_string(tree_size); }

}  // namespace

std::string KeyId(ByteView public_key) {
  const Bytes digest = crypto::Sha256(public_key);
  return HexEncode(ByteView(digest).first(kKeyIdBytes));
}

std::string CheckpointNote(const Checkpoint& checkpoint) {
  std::string note(kHeader);
  note.push_back('\n');
  note += checkpoint.key_id;
  note.push_back('\n');
  note += std::to_string(checkpoint.tree_size);
  note.push_back('\n');
  note += Base64Encode(checkpoint.root);
  note.push_back('\n');
  note += std::to_string(checkpoint.at_ms);
  note.push_back('\n');
  return note;
}

Result<Checkpoint> ParseCheckpointNote(std::string_view note) {
  const auto bad = [](std::string_view why) {
    return DataLossError("audit checkpoint note is malformed: " + std::string(why));
  };
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < note.size()) {
    const std::size_t nl = note.find('\n', start);
    if (nl == std::string_view::npos) return bad("the last line does not end with a newline");
    lines.push_back(note.substr(start, nl - start));
    start = nl + 1;
  }
  if (lines.size() != 5) return bad("expected 5 lines");
  if (lines[0] != kHeader) return bad("unknown header");
  Checkpoint checkpoint;
  if (lines[1].size() != 2 * kKeyIdBytes || !internal::IsLowerHex(lines[1])) return bad("bad key id");
  checkpoint.key_id = std::string(lines[1]);
  auto size = ParseCount(lines[2]);
  if (!size) return bad("bad tree size");
  checkpoint.tree_size = *size;
  auto root = Base64Decode(lines[3]);
  if (!root || root->size() != kHashSize) return bad("bad root");
  checkpoint.root = std::move(*root);
  auto at = ParseCount(lines[4]);
  if (!at) return bad("bad time");
  checkpoint.at_ms = *at;
  return checkpoint;
}

store::AuditCheckpointRow SignCheckpoint(Checkpoint checkpoint, const crypto::SigningKey& key) {
  checkpoint.key_id = KeyId(key.public_key());
  store::AuditCheckpointRow row;
  row.tree_size = checkpoint.tree_size;
  row.at_ms = checkpoint.at_ms;
  row.root = checkpoint.root;
  row.note = CheckpointNote(checkpoint);
  row.signature = key.Sign(AsBytes(row.note));
  return row;
}

Status VerifyCheckpoint(const store::AuditCheckpointRow& row, ByteView public_key) {
  auto parsed = ParseCheckpointNote(row.note);
  if (!parsed.ok()) return DataLossError(Where(row.tree_size) + ": " + parsed.status().message());
  // The columns are what the store indexes and serves; the note is what was
  // signed. They must say the same, or a reader could be shown one thing
  // while the signature covers another.
  if (parsed->tree_size != row.tree_size) {
    return DataLossError(Where(row.tree_size) + ": the signed note says tree size " +
                         std::to_string(parsed->tree_size));
  }
  if (parsed->root != row.root) return DataLossError(Where(row.tree_size) + ": root column differs from the note");
  if (parsed->at_ms != row.at_ms) return DataLossError(Where(row.tree_size) + ": time column differs from the note");
  if (parsed->key_id != KeyId(public_key)) {
    return DataLossError(Where(row.tree_size) + ": signed by another key (key id " + parsed->key_id + ")");
  }
  if (!crypto::VerifySignature(public_key, AsBytes(row.note), row.signature)) {
    return DataLossError(Where(row.tree_size) + ": the signature does not verify");
  }
  return Status::Ok();
}

}  // namespace kura::audit
