#include "audit/entry.h"

#include <charconv>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "audit/entry_internal.h"
#include "crypto/hash.h"

namespace kura::audit {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char32_t kReplacement = 0xFFFD;

// The length of the well-formed UTF-8 sequence at s[i] (2 to 4) and its code
// point, or 0 when the bytes there are not one (RFC 3629 §4: no overlong
// forms, no surrogates, nothing above U+10FFFF). Precondition: s[i] >= 0x80.
std::size_t Utf8Sequence(std::string_view s, std::size_t i, char32_t* cp) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  const auto cont = [&](std::size_t k) { return k < s.size() && (at(k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) {
    if (!cont(i + 1)) return 0;
    *cp = (char32_t{c} & 0x1F) << 6 | (at(i + 1) & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    const unsigned char c1 = at(i + 1);
    if (c == 0xE0 && c1 < 0xA0) return 0;  // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // UTF-16 surrogate
    *cp = (char32_t{c} & 0x0F) << 12 | (char32_t{c1} & 0x3F) << 6 | (at(i + 2) & 0x3F);
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    const unsigned char c1 = at(i + 1);
    if (c == 0xF0 && c1 < 0x90) return 0;   // overlong
    if (c == 0xF4 && c1 >= 0x90) return 0;  // above U+10FFFF
    *cp = (char32_t{c} & 0x07) << 18 | (char32_t{c1} & 0x3F) << 12 | (char32_t{at(i + 2)} & 0x3F) << 6 |
          (at(i + 3) & 0x3F);
    return 4;
  }
  return 0;
}

// Printable ASCII that JSON lets stand for itself.
inline bool IsPlain(unsigned char c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; }

void AppendU(std::string* out, unsigned v) {
  char buf[6] = {'\\', 'u', kHexDigits[(v >> 12) & 0xF], kHexDigits[(v >> 8) & 0xF], kHexDigits[(v >> 4) & 0xF],
                 kHexDigits[v & 0xF]};
  out->append(buf, sizeof(buf));
}

// A JSON string in the canonical form: printable ASCII as itself; the short
// escapes for '"', '\\', \b \f \n \r \t; \u00XX for the other C0 controls and
// DEL (so an entry shown on a terminal cannot move the cursor); \uXXXX
// (lowercase hex) for every other code point, as a UTF-16 surrogate pair
// beyond the BMP. Each byte that is not part of well-formed UTF-8 becomes
// U+FFFD, so any input has exactly one encoding and the output is pure ASCII.
void AppendString(std::string* out, std::string_view s) {
  out->push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t run = i;
    while (run < s.size() && IsPlain(static_cast<unsigned char>(s[run]))) ++run;
    out->append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out->append("\\\""); break;
        case '\\': out->append("\\\\"); break;
        case '\b': out->append("\\b"); break;
        case '\f': out->append("\\f"); break;
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        case '\t': out->append("\\t"); break;
        default: AppendU(out, c); break;
      }
      ++i;
      continue;
    }
    char32_t cp = 0;
    std::size_t len = Utf8Sequence(s, i, &cp);
    if (len == 0) {
      cp = kReplacement;
      len = 1;
    }
    if (cp >= 0x10000) {
      const char32_t v = cp - 0x10000;
      AppendU(out, 0xD800 + (v >> 10));
      AppendU(out, 0xDC00 + (v & 0x3FF));
    } else {
      AppendU(out, cp);
    }
    i += len;
  }
  out->push_back('"');
}

void AppendInt(std::string* out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

void AppendHex(std::string* out, ByteView bytes) {
  for (std::uint8_t b : bytes) {
    out->push_back(kHexDigits[b >> 4]);
    out->push_back(kHexDigits[b & 0xF]);
  }
}

Status NotAnEntry(std::string_view why) { return DataLossError("audit entry is malformed: " + std::string(why)); }

// nlohmann keeps integers that fit as signed or unsigned 64-bit; anything
// else (a fraction, an exponent) is a float and no canonical integer.
bool GetInt64(const nlohmann::json& j, std::int64_t* out) {
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
    *out = static_cast<std::int64_t>(u);
    return true;
  }
  if (j.is_number_integer()) {
    *out = j.get<std::int64_t>();
    return true;
  }
  return false;
}

bool GetString(const nlohmann::json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

constexpr std::size_t kEntryKeys = 14;

Result<Entry> DecodeJson(std::string_view bytes) {
  const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return NotAnEntry("not a JSON object");
  if (j.size() != kEntryKeys) return NotAnEntry("wrong set of keys");
  std::int64_t v = 0;
  auto it = j.find("v");
  if (it == j.end() || !GetInt64(*it, &v)) return NotAnEntry("no format version");
  if (v != kEntryFormat) return NotAnEntry("unknown format version " + std::to_string(v));

  Entry entry;
  std::string prev_hex;
  it = j.find("seq");
  if (it == j.end() || !GetInt64(*it, &entry.seq) || entry.seq < 0) return NotAnEntry("bad seq");
  it = j.find("at_ms");
  if (it == j.end() || !GetInt64(*it, &entry.event.at_ms)) return NotAnEntry("bad at_ms");
  Event& e = entry.event;
  if (!GetString(j, "prev", &prev_hex) || !GetString(j, "principal", &e.principal) ||
      !GetString(j, "tenant", &e.tenant) || !GetString(j, "action", &e.action) ||
      !GetString(j, "resource", &e.resource) || !GetString(j, "outcome", &e.outcome) ||
      !GetString(j, "client", &e.client) || !GetString(j, "request_id", &e.request_id) ||
      !GetString(j, "grant_id", &e.grant_id) || !GetString(j, "reason", &e.reason) ||
      !GetString(j, "lookup", &e.lookup)) {
    return NotAnEntry("a field is missing or not a string");
  }
  if (!prev_hex.empty()) {
    auto prev = prev_hex.size() == 2 * kHashSize ? HexDecode(prev_hex) : std::nullopt;
    if (!prev) return NotAnEntry("bad prev");
    entry.prev_hash = std::move(*prev);
  }
  return entry;
}

// Reads a canonical integer (as std::to_chars writes it: no '+', no leading
// zero, no "-0") at s[*i].
bool ScanInt(std::string_view s, std::size_t* i, std::int64_t* out) {
  const std::size_t start = *i;
  std::size_t k = start;
  if (k < s.size() && s[k] == '-') ++k;
  const std::size_t digits = k;
  while (k < s.size() && s[k] >= '0' && s[k] <= '9') ++k;
  if (k == digits) return false;
  if (s[digits] == '0' && (k - digits > 1 || digits != start)) return false;
  auto [end, ec] = std::from_chars(s.data() + start, s.data() + k, *out);
  if (ec != std::errc() || end != s.data() + k) return false;
  *i = k;
  return true;
}

bool ScanLiteral(std::string_view s, std::size_t* i, std::string_view literal) {
  if (s.substr(*i, literal.size()) != literal) return false;
  *i += literal.size();
  return true;
}

// A string of plain characters only (see IsPlain), the closing quote
// included; the opening quote must already be consumed.
bool ScanPlainString(std::string_view s, std::size_t* i, std::string_view* out) {
  const std::size_t start = *i;
  std::size_t k = start;
  while (k < s.size() && IsPlain(static_cast<unsigned char>(s[k]))) ++k;
  if (k == s.size() || s[k] != '"') return false;
  *out = s.substr(start, k - start);
  *i = k + 1;
  return true;
}

}  // namespace

namespace {

// An entry's encoding is its head (format, seq, prev: known only when it is
// linked) followed by its body (the event: known as soon as it is made). The
// body is encoded once, by whoever makes the entry, so linking — done inside
// the store's single writer — only adds the head and hashes.
void AppendEntryHead(std::string* out, std::int64_t seq, ByteView prev_hash) {
  out->append("{\"v\":");
  AppendInt(out, kEntryFormat);
  out->append(",\"seq\":");
  AppendInt(out, seq);
  out->append(",\"prev\":\"");
  AppendHex(out, prev_hash);
  out->push_back('"');
}

std::string EncodeEntryBody(const Event& event) {
  std::string out;
  out.reserve(160 + event.principal.size() + event.tenant.size() + event.action.size() + event.resource.size() +
              event.outcome.size() + event.client.size() + event.request_id.size() + event.grant_id.size() +
              event.reason.size() + event.lookup.size());
  out.append(",\"at_ms\":");
  AppendInt(&out, event.at_ms);
  out.append(",\"principal\":");
  AppendString(&out, event.principal);
  out.append(",\"tenant\":");
  AppendString(&out, event.tenant);
  out.append(",\"action\":");
  AppendString(&out, event.action);
  out.append(",\"resource\":");
  AppendString(&out, event.resource);
  out.append(",\"outcome\":");
  AppendString(&out, event.outcome);
  out.append(",\"client\":");
  AppendString(&out, event.client);
  out.append(",\"request_id\":");
  AppendString(&out, event.request_id);
  out.append(",\"grant_id\":");
  AppendString(&out, event.grant_id);
  out.append(",\"reason\":");
  AppendString(&out, event.reason);
  out.append(",\"lookup\":");
  AppendString(&out, event.lookup);
  out.push_back('}');
  return out;
}

std::string JoinEntry(std::int64_t seq, ByteView prev_hash, std::string_view body) {
  std::string out;
  out.reserve(48 + 2 * prev_hash.size() + body.size());
  AppendEntryHead(&out, seq, prev_hash);
  out.append(body);
  return out;
}

// The length of `text`'s leading run of ASCII bytes.
std::size_t AsciiPrefix(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80) ++i;
  return i;
}

}  // namespace

std::string EncodeEntry(std::int64_t seq, ByteView prev_hash, const Event& event) {
  return JoinEntry(seq, prev_hash, EncodeEntryBody(event));
}

Result<Entry> DecodeEntry(std::string_view bytes) {
  Result<Entry> entry = NotAnEntry("unparsed");
  try {
    entry = DecodeJson(bytes);
  } catch (const nlohmann::json::exception&) {
    return NotAnEntry("not JSON");
  }
  if (!entry.ok()) return entry;
  // Only the canonical bytes of an entry are an entry: another spelling of
  // the same values (key order, white space, escapes) would hash differently,
  // so accepting it would let two different logs mean the same thing.
  if (EncodeEntry(entry->seq, entry->prev_hash, entry->event) != bytes) {
    return DataLossError("audit entry " + std::to_string(entry->seq) + " is not in canonical form");
  }
  return entry;
}

Bytes LeafHash(ByteView entry) {
  Bytes buf;
  buf.reserve(entry.size() + 1);
  buf.push_back(0x00);  // RFC 6962 leaf prefix: a leaf can never pass for a node
  buf.insert(buf.end(), entry.begin(), entry.end());
  return crypto::Sha256(buf);
}

// Keeps only what Link needs: the event's other strings are freed here, on
// the caller's thread, rather than by the store's writer, which destroys the
// entry after its commit.
PendingEntry::PendingEntry(Event event) : at_ms_(event.at_ms), body_(EncodeEntryBody(event)) {
  // The columns hold what the entry says, which differs from the event only
  // where the event had malformed UTF-8.
  tenant_ = internal::ValidUtf8(std::move(event.tenant));
  principal_ = internal::ValidUtf8(std::move(event.principal));
  action_ = internal::ValidUtf8(std::move(event.action));
  resource_ = internal::ValidUtf8(std::move(event.resource));
  outcome_ = internal::ValidUtf8(std::move(event.outcome));
}

store::AuditRow PendingEntry::Link(std::int64_t seq, ByteView prev_hash) const {
  store::AuditRow row;
  std::string entry = JoinEntry(seq, prev_hash, body_);
  row.seq = seq;
  row.at_ms = at_ms_;
  row.tenant_id = tenant_;
  row.principal = principal_;
  row.action = action_;
  row.resource = resource_;
  row.outcome = outcome_;
  row.hash = LeafHash(AsBytes(entry));
  row.entry.assign(entry.begin(), entry.end());
  return row;
}

Status CheckRow(const store::AuditRow& row, const Entry& decoded) {
  const std::string where = "audit entry " + std::to_string(row.seq) + ": ";
  if (row.hash != LeafHash(row.entry)) return DataLossError(where + "the entry does not match its stored hash");
  if (row.seq != decoded.seq) {
    return DataLossError(where + "the entry says seq " + std::to_string(decoded.seq));
  }
  // Column values are not repeated in the message: a message may reach logs
  // that the audit trail's readers do not.
  const auto mismatch = [&](const char* column) {
    return DataLossError(where + "column " + column + " does not match the entry");
  };
  if (row.at_ms != decoded.event.at_ms) return mismatch("at_ms");
  if (row.tenant_id != decoded.event.tenant) return mismatch("tenant_id");
  if (row.principal != decoded.event.principal) return mismatch("principal");
  if (row.action != decoded.event.action) return mismatch("action");
  if (row.resource != decoded.event.resource) return mismatch("resource");
  if (row.outcome != decoded.event.outcome) return mismatch("outcome");
  return Status::Ok();
}

namespace internal {

bool ScanPlainEntry(std::string_view s, EntryFields* out) {
  std::size_t i = 0;
  std::string_view ignored;
  if (!ScanLiteral(s, &i, "{\"v\":1,\"seq\":") || !ScanInt(s, &i, &out->seq) || out->seq < 0) return false;
  if (!ScanLiteral(s, &i, ",\"prev\":\"") || !ScanPlainString(s, &i, &out->prev_hex)) return false;
  if (!(out->prev_hex.empty() || (out->prev_hex.size() == 2 * kHashSize && internal::IsLowerHex(out->prev_hex))))
    return false;
  if (!ScanLiteral(s, &i, ",\"at_ms\":") || !ScanInt(s, &i, &out->at_ms)) return false;
  if (!ScanLiteral(s, &i, ",\"principal\":\"") || !ScanPlainString(s, &i, &out->principal)) return false;
  if (!ScanLiteral(s, &i, ",\"tenant\":\"") || !ScanPlainString(s, &i, &out->tenant)) return false;
  if (!ScanLiteral(s, &i, ",\"action\":\"") || !ScanPlainString(s, &i, &out->action)) return false;
  if (!ScanLiteral(s, &i, ",\"resource\":\"") || !ScanPlainString(s, &i, &out->resource)) return false;
  if (!ScanLiteral(s, &i, ",\"outcome\":\"") || !ScanPlainString(s, &i, &out->outcome)) return false;
  for (std::string_view key : {",\"client\":\"", ",\"request_id\":\"", ",\"grant_id\":\"", ",\"reason\":\"",
                               ",\"lookup\":\""}) {
    if (!ScanLiteral(s, &i, key) || !ScanPlainString(s, &i, &ignored)) return false;
  }
  return i + 1 == s.size() && s[i] == '}';
}

std::string ValidUtf8(std::string&& text) {
  if (AsciiPrefix(text) == text.size()) return std::move(text);
  return ValidUtf8(std::string_view(text));
}

std::string ValidUtf8(std::string_view text) {
  std::size_t i = AsciiPrefix(text);
  if (i == text.size()) return std::string(text);
  std::string out(text.substr(0, i));
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t len = Utf8Sequence(text, i, &cp);
    if (len == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

void LeafHashInto(std::string_view entry, std::string* scratch, std::uint8_t* out) {
  scratch->assign(1, '\0');
  scratch->append(entry);
  const Bytes hash = crypto::Sha256(AsBytes(*scratch));
  std::memcpy(out, hash.data(), kHashSize);
}

}  // namespace internal
}  // namespace kura::audit
