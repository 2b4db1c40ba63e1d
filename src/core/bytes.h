// Byte strings and their text encodings (base64url, hex).
#ifndef KURA_CORE_BYTES_H_
#define KURA_CORE_BYTES_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kura {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// RFC 4648 §5 base64url without padding (URL- and header-safe ids and tokens).
std::string Base64UrlEncode(ByteView data);
// Accepts input with or without '=' padding; nullopt on any invalid character.
std::optional<Bytes> Base64UrlDecode(std::string_view text);
// Whether `text` is the unpadded base64url encoding of exactly `bytes` bytes,
// spelled the one canonical way (spare bits of the last character zero),
// without decoding it: what Base64UrlDecode accepts and Base64UrlEncode
// gives back, for that length.
bool IsCanonicalBase64Url(std::string_view text, std::size_t bytes);
// RFC 4648 §4 standard base64 with padding (what webhook signatures use).
std::string Base64Encode(ByteView data);

std::string HexEncode(ByteView data);
std::optional<Bytes> HexDecode(std::string_view text);
// The value of one hex digit (either case), or -1.
int HexDigitValue(char c);

}  // namespace kura

#endif  // KURA_CORE_BYTES_H_
