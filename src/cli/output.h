// Output of client commands: the server's JSON as is (--format json, for
// scripts) or short human text (--format text, the default).
//
// Thread safety: free functions writing to the stream they are given.
#ifndef KURA_CLI_OUTPUT_H_
#define KURA_CLI_OUTPUT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kura::cli {

enum class Format { kText, kJson };

// "json" → kJson, anything else → kText (CLI11 restricts the choices).
Format ParseFormat(std::string_view name);

// A JSON value as one line of text: strings bare, null as "-", others compact JSON.
std::string ScalarText(const nlohmann::json& value);

// A field of an object in a server's answer, or `fallback` when the answer is
// not an object, lacks the key or holds another type there (nlohmann's value()
// would throw): an answer of an unexpected shape — another version, a proxy's
// page, a server that lies to `kura audit verify` — is reported or fails
// verification; it never aborts the client.
std::string StringField(const nlohmann::json& object, const char* key, std::string_view fallback = "");
std::int64_t IntegerField(const nlohmann::json& object, const char* key, std::int64_t fallback);

// "key: value" lines for the given keys of an object, in order; keys absent
// from the object are skipped. Nested values are compact JSON.
void PrintFields(std::ostream& out, const nlohmann::json& object, const std::vector<std::string>& keys);

// Every key of an object as "key: value" lines, in the object's order.
void PrintAllFields(std::ostream& out, const nlohmann::json& object);

struct Column {
  std::string header;  // printed upper-case
  std::string key;     // key in each item
};

// A left-aligned table of `items` (an array of objects), two spaces between
// columns. An empty array prints the header only.
void PrintTable(std::ostream& out, const nlohmann::json& items, const std::vector<Column>& columns);

// body["items"] when the body is a list answer, else an empty array.
nlohmann::json ItemsOf(const nlohmann::json& body);

// The server's body for --format json, newline-terminated; nothing for an empty body.
void PrintRawBody(std::ostream& out, std::string_view body);

// Writes `content` to `path` with mode 0600, atomically: a temporary file in
// the same directory is written, fsync'ed and renamed over `path` (then the
// directory is fsync'ed), so a reader sees the old file or the whole new one,
// and the content is never readable by others, not even briefly. For session
// tokens and TOTP QR codes. InvalidArgument naming the path (never the
// content) when it cannot be written.
Status WritePrivateFile(const std::string& path, std::string_view content);

}  // namespace kura::cli

#endif  // KURA_CLI_OUTPUT_H_
