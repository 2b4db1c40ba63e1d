// Local input of client commands: JSON arguments and files, and secrets typed
// at the terminal (unseal shares, passwords) without echo.
#ifndef KURA_CLI_INPUT_H_
#define KURA_CLI_INPUT_H_

#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kura::cli {

// `--data` values: inline JSON ('{"email":"a@b"}'), "@FILE" for a file, and
// "-" or "@-" for standard input. InvalidArgument when unreadable or not JSON;
// the message gives the position only, never the content (it may be personal data).
Result<nlohmann::json> ReadJsonArgument(std::string_view arg, std::istream& in);

// `--schema FILE|-` and `--file FILE|-`: a JSON file, or standard input for "-".
Result<nlohmann::json> ReadJsonFile(std::string_view path, std::istream& in);

// Parses JSON text; `source` names it in errors ("--data", a file name…).
Result<nlohmann::json> ParseJsonText(std::string_view text, std::string_view source);

// Reads one secret line. On a terminal (fd 0 is a tty) the prompt goes to
// `prompt_out` and echo is switched off while typing; otherwise one line is
// read from `in` (pipes, scripts). Trailing "\r\n" and surrounding blanks are
// dropped. InvalidArgument when nothing was entered.
Result<std::string> ReadSecretLine(std::string_view prompt, std::istream& in, std::ostream& prompt_out);

// Like ReadSecretLine, for passwords: only the line end ("\n", "\r\n") is
// dropped, so blanks that are part of the password are kept. InvalidArgument
// when the line is empty or there was no line at all.
Result<std::string> ReadPassword(std::string_view prompt, std::istream& in, std::ostream& prompt_out);

// A new password, typed twice (a typo would lock its owner out):
// InvalidArgument when the two differ. Neither copy is left in memory
// except the one returned.
Result<std::string> ReadNewPassword(std::string_view prompt, std::istream& in, std::ostream& prompt_out);

// Overwrites a secret held in a string (a password once sent).
void WipeSecret(std::string* secret);

// Reads one line that is not secret (a user name, a one-time code) with echo
// on; the prompt goes to `prompt_out` only when fd 0 is a terminal. Blanks
// around it are dropped. InvalidArgument when nothing was entered.
Result<std::string> ReadLine(std::string_view prompt, std::istream& in, std::ostream& prompt_out);

}  // namespace kura::cli

#endif  // KURA_CLI_INPUT_H_
