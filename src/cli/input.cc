#include "cli/input.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "core/json.h"

namespace kura::cli {
namespace {

Result<std::string> ReadAll(std::string_view path, std::istream& in) {
  if (path == "-") {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text;
  }
  std::ifstream file{std::string(path), std::ios::binary};
  if (!file) return InvalidArgumentError("cannot read " + std::string(path));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return InvalidArgumentError("cannot read " + std::string(path));
  return text.str();
}

std::string Trim(std::string s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.back())) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && blank(s[start])) ++start;
  return s.substr(start);
}

// One line from `in` without its "\n". On a terminal the prompt is shown and,
// unless `echo`, echo is off while typing: a secret on screen ends up in
// scrollback and screen recordings. Pipes and scripts get no prompt.
std::string ReadLineFrom(std::string_view prompt, std::istream& in, std::ostream& prompt_out, bool echo) {
  std::string line;
  if (&in == &std::cin && ::isatty(STDIN_FILENO)) {
    termios saved{};
    bool restore = !echo && ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (restore) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      quiet.c_lflag |= ECHONL;
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    prompt_out << prompt << std::flush;
    std::getline(in, line);
    if (restore) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  } else {
    std::getline(in, line);
  }
  return line;
}

}  // namespace

Result<nlohmann::json> ParseJsonText(std::string_view text, std::string_view source) {
  auto parsed = ParseUntrustedJson(text);
  if (!parsed.ok()) return InvalidArgumentError(std::string(source) + ": " + parsed.status().message());
  return parsed;
}

Result<nlohmann::json> ReadJsonArgument(std::string_view arg, std::istream& in) {
  if (arg == "-" || arg == "@-") {
    KURA_ASSIGN_OR_RETURN(std::string text, ReadAll("-", in));
    return ParseJsonText(text, "standard input");
  }
  if (!arg.empty() && arg.front() == '@') {
    std::string_view path = arg.substr(1);
    KURA_ASSIGN_OR_RETURN(std::string text, ReadAll(path, in));
    return ParseJsonText(text, path);
  }
  return ParseJsonText(arg, "--data");
}

Result<nlohmann::json> ReadJsonFile(std::string_view path, std::istream& in) {
  KURA_ASSIGN_OR_RETURN(std::string text, ReadAll(path, in));
  return ParseJsonText(text, path == "-" ? std::string_view("standard input") : path);
}

Result<std::string> ReadSecretLine(std::string_view prompt, std::istream& in, std::ostream& prompt_out) {
  std::string line = Trim(ReadLineFrom(prompt, in, prompt_out, /*echo=*/false));
  if (line.empty()) return InvalidArgumentError("no input given");
  return line;
}

Result<std::string> ReadPassword(std::string_view prompt, std::istream& in, std::ostream& prompt_out) {
  std::string line = ReadLineFrom(prompt, in, prompt_out, /*echo=*/false);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return InvalidArgumentError("no password given");
  return line;
}

void WipeSecret(std::string* secret) { std::fill(secret->begin(), secret->end(), '\0'); }

Result<std::string> ReadNewPassword(std::string_view prompt, std::istream& in, std::ostream& prompt_out) {
  KURA_ASSIGN_OR_RETURN(std::string first, ReadPassword(prompt, in, prompt_out));
  auto second = ReadPassword("Again: ", in, prompt_out);
  if (!second.ok()) {
    WipeSecret(&first);
    return second.status();
  }
  bool same = first == *second;
  WipeSecret(&*second);
  if (!same) {
    WipeSecret(&first);
    return InvalidArgumentError("the two passwords differ; nothing was sent");
  }
  return first;
}

Result<std::string> ReadLine(std::string_view prompt, std::istream& in, std::ostream& prompt_out) {
  std::string line = Trim(ReadLineFrom(prompt, in, prompt_out, /*echo=*/true));
  if (line.empty()) return InvalidArgumentError("no input given");
  return line;
}

}  // namespace kura::cli
