#include "core/config.h"

#include <toml++/toml.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "core/bytes.h"
#include "core/clock.h"

namespace kura {
namespace {

constexpr std::string_view kRegions[] = {"jp", "us", "eu", "in"};
constexpr std::string_view kTlsProfiles[] = {"modern", "compatibility"};
constexpr std::string_view kEngines[] = {"sqlite", "postgres"};
constexpr std::string_view kSealTypes[] = {"keyfile", "shamir", "passphrase", "pkcs11"};
// Bounds of the PostgreSQL timeouts: longer waits would only hide an outage
// (requests must fail fast with 503), and keep the millisecond values of
// store::PostgresOptions within an int.
constexpr std::chrono::seconds kMaxConnectTimeout{300};
constexpr std::chrono::seconds kMaxStatementTimeout{3600};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

// [[audit.sink]] (SIEM export). The bounds keep a misconfigured sink from
// rotating on every entry or filling a disk with thousands of rotated files.
constexpr std::string_view kSinkTypes[] = {"file", "syslog"};
constexpr std::uint64_t kMinSinkBytes = 4096;
constexpr std::uint64_t kMaxSinkBytes = std::uint64_t{1} << 40;
constexpr int kMaxKeepFiles = 1000;
// RFC 5424 §6.2.1 facility codes, by the names syslog daemons use.
constexpr std::pair<std::string_view, int> kFacilities[] = {
    {"kern", 0},    {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},    {"syslog", 5},
    {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},    {"authpriv", 10}, {"ftp", 11},
    {"ntp", 12},    {"audit", 13},  {"alert", 14},  {"clock", 15},  {"local0", 16}, {"local1", 17},
    {"local2", 18}, {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23},
};

template <std::size_t N>
bool OneOf(std::string_view value, const std::string_view (&options)[N]) {
  for (auto o : options) {
    if (o == value) return true;
  }
  return false;
}

template <std::size_t N>
std::string Choices(const std::string_view (&options)[N]) {
  std::string out;
  for (auto o : options) {
    if (!out.empty()) out += " | ";
    out += o;
  }
  return out;
}

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// Parses "host:port" / "[v6]:port"; false when malformed.
bool SplitHostPort(std::string_view text, std::string* host, int* port) {
  std::string_view h, p;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
  }
  if (h.empty() || p.empty() || p.size() > 5) return false;
  int value = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc() || end != p.data() + p.size() || value < 0 || value > 65535) return false;
  *host = std::string(h);
  *port = value;
  return true;
}

// A sink name becomes a file name (<state_dir>/<name>.pos): no separators,
// no leading dot, nothing a shell or a log line would mangle.
bool ValidSinkName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

// RFC 5424 §6.2.5: APP-NAME is 1-48 printable US-ASCII characters, no space.
bool ValidAppName(std::string_view name) {
  if (name.empty() || name.size() > 48) return false;
  for (char ch : name) {
    if (ch < 33 || ch > 126) return false;
  }
  return true;
}

// Why a syslog address is unusable, or nullopt when it is fine.
std::optional<std::string> SyslogAddressProblem(std::string_view address) {
  constexpr std::string_view kForms = "is not udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH";
  std::string quoted = "\"" + std::string(address) + "\" ";
  if (address.starts_with("udp://") || address.starts_with("tcp://")) {
    std::string host;
    int port = 0;
    if (!SplitHostPort(address.substr(6), &host, &port) || port == 0) return quoted + std::string(kForms);
    return std::nullopt;
  }
  if (address.starts_with("unix://")) {
    std::string_view path = address.substr(7);
    if (path.empty() || path.front() != '/') return quoted + "needs an absolute socket path (unix:///dev/log)";
    // sun_path holds 108 bytes including the terminating NUL.
    if (path.size() > 107) return quoted + "has a socket path longer than 107 bytes";
    return std::nullopt;
  }
  return quoted + std::string(kForms);
}

// An environment variable name as POSIX shells accept it.
bool ValidEnvName(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    if (!ok) return false;
  }
  return true;
}

// Cross-field rules of [seal] for the passphrase and PKCS#11 seals: which
// keys belong to which type, what is required, at most one secret source.
// Returns the offending key (without "seal.") and the reason, or nullopt.
std::optional<std::pair<std::string, std::string>> SealProblem(const Config::Seal& s) {
  using Problem = std::pair<std::string, std::string>;
  const bool passphrase = s.type == "passphrase", pkcs11 = s.type == "pkcs11";
  // Keys of another seal type are refused rather than ignored: a PIN file
  // next to type = "passphrase" is almost certainly a half-edited config.
  for (const auto& [key, value, ok] : {std::tuple{"passphrase_file", &s.passphrase_file, passphrase},
                                       std::tuple{"passphrase_env", &s.passphrase_env, passphrase},
                                       std::tuple{"module", &s.module, pkcs11},
                                       std::tuple{"token_label", &s.token_label, pkcs11},
                                       std::tuple{"key_label", &s.key_label, pkcs11},
                                       std::tuple{"pin_file", &s.pin_file, pkcs11},
                                       std::tuple{"pin_env", &s.pin_env, pkcs11}}) {
    if (!value->empty() && !ok) {
      const bool for_passphrase = std::string_view(key).starts_with("passphrase");
      return Problem{key, std::string("only for type = \"") + (for_passphrase ? "passphrase" : "pkcs11") + "\""};
    }
  }
  if (passphrase) {
    if (!s.passphrase_file.empty() && !s.passphrase_env.empty()) {
      return Problem{"passphrase_env", "set only one of passphrase_file and passphrase_env"};
    }
    if (!s.passphrase_env.empty() && !ValidEnvName(s.passphrase_env)) {
      return Problem{"passphrase_env", "\"" + s.passphrase_env + "\" is not an environment variable name"};
    }
  }
  if (pkcs11) {
    if (s.module.empty()) return Problem{"module", "required for type = \"pkcs11\" (path of the PKCS#11 module)"};
    // A bare name would be searched along the library path: say exactly which
    // code gets the PIN and the KEK.
    if (s.module.front() != '/') return Problem{"module", "\"" + s.module + "\" is not an absolute path"};
    if (s.token_label.empty()) return Problem{"token_label", "required for type = \"pkcs11\""};
    if (s.token_label.size() > 32) return Problem{"token_label", "longer than 32 bytes (the PKCS#11 limit)"};
    if (s.key_label.empty()) return Problem{"key_label", "required for type = \"pkcs11\""};
    if (s.pin_file.empty() && s.pin_env.empty()) {
      return Problem{"pin_file", "required for type = \"pkcs11\": set pin_file or pin_env"};
    }
    if (!s.pin_file.empty() && !s.pin_env.empty()) return Problem{"pin_env", "set only one of pin_file and pin_env"};
    if (!s.pin_env.empty() && !ValidEnvName(s.pin_env)) {
      return Problem{"pin_env", "\"" + s.pin_env + "\" is not an environment variable name"};
    }
  }
  return std::nullopt;
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

// Walks one parsed file and writes the keys it sets into a Config. The first
// problem wins: its message names file, line, the dotted key and the reason.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  // "FILE:LINE" of a node, as stored in Config's *origin fields.
  std::string Where(const toml::source_region& where) const { return file_ + ":" + std::to_string(where.begin.line); }

  Status Error(const toml::source_region& where, std::string_view key, std::string_view reason) const {
    std::string m = Where(where) + ": ";
    if (!key.empty()) {
      m += key;
      m += ": ";
    }
    m += reason;
    return InvalidArgumentError(std::move(m));
  }

  using Handler = std::function<Status(const toml::node&, const std::string& key)>;

  // Applies `handlers` to the entries of `table`; any other key is refused.
  Status Table(const toml::node& node, const std::string& prefix, const std::map<std::string, Handler>& handlers) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) return Error(node.source(), prefix, std::string("expected a table, got ") + std::string(TypeName(node)));
    for (auto&& [k, v] : *table) {
      std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      auto it = handlers.find(std::string(k.str()));
      if (it == handlers.end()) return Error(k.source(), key, "unknown key");
      KURA_RETURN_IF_ERROR(it->second(v, key));
    }
    return Status::Ok();
  }

  Handler String(std::string* out) const {
    return [this, out](const toml::node& v, const std::string& key) -> Status {
      const auto* s = v.as_string();
      if (s == nullptr) return Error(v.source(), key, std::string("expected a string, got ") + std::string(TypeName(v)));
      *out = s->get();
      return Status::Ok();
    };
  }

  Handler NonEmptyString(std::string* out) const {
    return [this, out](const toml::node& v, const std::string& key) -> Status {
      KURA_RETURN_IF_ERROR(String(out)(v, key));
      if (out->empty()) return Error(v.source(), key, "must not be empty");
      return Status::Ok();
    };
  }

  template <std::size_t N>
  Handler Enum(std::string* out, const std::string_view (&options)[N]) const {
    return [this, out, &options](const toml::node& v, const std::string& key) -> Status {
      std::string value;
      KURA_RETURN_IF_ERROR(String(&value)(v, key));
      if (!OneOf(value, options)) {
        return Error(v.source(), key, "\"" + value + "\" is not one of " + Choices(options));
      }
      *out = value;
      return Status::Ok();
    };
  }

  Handler Bool(bool* out) const {
    return [this, out](const toml::node& v, const std::string& key) -> Status {
      const auto* b = v.as_boolean();
      if (b == nullptr) return Error(v.source(), key, std::string("expected a boolean, got ") + std::string(TypeName(v)));
      *out = b->get();
      return Status::Ok();
    };
  }

  template <typename T>
  Handler Int(T* out, std::int64_t min, std::int64_t max) const {
    return [this, out, min, max](const toml::node& v, const std::string& key) -> Status {
      const auto* i = v.as_integer();
      if (i == nullptr) return Error(v.source(), key, std::string("expected an integer, got ") + std::string(TypeName(v)));
      std::int64_t value = i->get();
      if (value < min || value > max) {
        return Error(v.source(), key,
                     std::to_string(value) + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
      }
      *out = static_cast<T>(value);
      return Status::Ok();
    };
  }

  // `max`: largest accepted value; zero = no bound beyond ParseDuration's.
  Handler Duration(std::chrono::seconds* out, bool allow_zero, std::chrono::seconds max = {}) const {
    return [this, out, allow_zero, max](const toml::node& v, const std::string& key) -> Status {
      const auto* s = v.as_string();
      if (s == nullptr) {
        return Error(v.source(), key,
                     std::string("expected a duration string such as \"60s\", \"5m\" or \"1h\", got ") +
                         std::string(TypeName(v)));
      }
      auto d = ParseDuration(s->get());
      if (!d) return Error(v.source(), key, "\"" + s->get() + "\" is not a duration such as \"60s\", \"5m\" or \"1h\"");
      if (!allow_zero && d->count() == 0) return Error(v.source(), key, "must be greater than zero");
      if (max.count() > 0 && *d > max) {
        return Error(v.source(), key,
                     "\"" + s->get() + "\" is longer than the maximum of " + std::to_string(max.count()) + "s");
      }
      *out = *d;
      return Status::Ok();
    };
  }

 private:
  std::string file_;
};

Status ReadConfig(const Reader& r, const toml::table& root, Config* c) {
  auto& l = c->listener;
  constexpr std::int64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
  constexpr std::int64_t kI32Max = std::numeric_limits<std::int32_t>::max();

  // A region value: one of kRegions; its "FILE:LINE" goes to *origin.
  auto region_of = [&r](std::string* out, std::string* origin) -> Reader::Handler {
    return [&r, out, origin](const toml::node& v, const std::string& key) -> Status {
      std::string value;
      KURA_RETURN_IF_ERROR(r.String(&value)(v, key));
      if (!OneOf(value, kRegions)) {
        return r.Error(v.source(), key, "\"" + value + "\" is not a known region (" + Choices(kRegions) + ")");
      }
      *out = value;
      *origin = r.Where(v.source());
      return Status::Ok();
    };
  };
  Reader::Handler region = region_of(&c->region, &c->region_origin);
  // [storage.primary] / [storage.replica]: both keys required, so a site
  // without a region can never slip past the region rule.
  auto site_of = [&r, region_of](std::optional<Config::Site>* out) -> Reader::Handler {
    return [&r, region_of, out](const toml::node& v, const std::string& key) -> Status {
      Config::Site site;
      std::map<std::string, Reader::Handler> keys = {
          {"site", r.NonEmptyString(&site.site)},
          {"region", region_of(&site.region, &site.origin)},
      };
      KURA_RETURN_IF_ERROR(r.Table(v, key, keys));
      if (site.site.empty()) return r.Error(v.source(), key + ".site", "required (the site's name, e.g. \"osaka-1\")");
      if (site.region.empty()) {
        return r.Error(v.source(), key + ".region", "required (the site's region: " + Choices(kRegions) + ")");
      }
      *out = std::move(site);
      return Status::Ok();
    };
  };
  Reader::Handler address = [&r, &l](const toml::node& v, const std::string& key) -> Status {
    std::string value, host;
    int port = 0;
    KURA_RETURN_IF_ERROR(r.String(&value)(v, key));
    if (!SplitHostPort(value, &host, &port)) {
      return r.Error(v.source(), key, "\"" + value + "\" is not HOST:PORT (port 0-65535, IPv6 in brackets)");
    }
    l.address = value;
    return Status::Ok();
  };
  // storage.gss_keytab: its line is kept for the cross-field rules of
  // ValidateConfig and the file checks of `kura serve`.
  Reader::Handler gss_keytab = [&r, c](const toml::node& v, const std::string& key) -> Status {
    KURA_RETURN_IF_ERROR(r.NonEmptyString(&c->storage.gss_keytab)(v, key));
    c->storage.gss_keytab_origin = r.Where(v.source());
    return Status::Ok();
  };
  Reader::Handler seal_type = [&r, c](const toml::node& v, const std::string& key) -> Status {
    std::string value;
    KURA_RETURN_IF_ERROR(r.String(&value)(v, key));
    if (!OneOf(value, kSealTypes)) {
      return r.Error(v.source(), key, "\"" + value + "\" is not one of " + Choices(kSealTypes));
    }
    c->seal.type = value;
    return Status::Ok();
  };

  std::map<std::string, Reader::Handler> listener = {
      {"address", address},
      {"tls_cert", r.String(&l.tls_cert)},
      {"tls_key", r.String(&l.tls_key)},
      {"tls_profile", r.Enum(&l.tls_profile, kTlsProfiles)},
      {"plain_http", r.Bool(&l.plain_http)},
      {"max_body_bytes", r.Int(&l.max_body_bytes, 1, std::int64_t{1} << 40)},
      {"max_header_bytes", r.Int(&l.max_header_bytes, 1024, kU32Max)},
      {"read_timeout", r.Duration(&l.read_timeout, false)},
      {"write_timeout", r.Duration(&l.write_timeout, false)},
      {"idle_timeout", r.Duration(&l.idle_timeout, false)},
      {"drain_timeout", r.Duration(&l.drain_timeout, true)},
      {"threads", r.Int(&l.threads, 0, 1024)},
      {"max_connections", r.Int(&l.max_connections, 1, kI32Max)},
      {"hsts_max_age", r.Int(&l.hsts_max_age, 0, kU32Max)},
  };
  std::map<std::string, Reader::Handler> storage = {
      {"engine", r.Enum(&c->storage.engine, kEngines)},
      {"path", r.NonEmptyString(&c->storage.path)},
      {"dsn", r.String(&c->storage.dsn)},
      {"password_file", r.String(&c->storage.password_file)},
      {"gss_keytab", gss_keytab},
      {"key_store_path", r.String(&c->storage.key_store_path)},
      {"pool_size", r.Int(&c->storage.pool_size, 1, 1000)},
      {"record_cache_mib", r.Int(&c->storage.record_cache_mib, 0, 65536)},
      {"connect_timeout", r.Duration(&c->storage.connect_timeout, false, kMaxConnectTimeout)},
      {"statement_timeout", r.Duration(&c->storage.statement_timeout, false, kMaxStatementTimeout)},
      {"primary", site_of(&c->storage.primary)},
      {"replica", site_of(&c->storage.replica)},
  };
  // [seal]: each key's line is kept so a cross-field problem points at it.
  std::map<std::string, toml::source_region> seal_seen;
  auto seal_mark = [&seal_seen](std::string name, Reader::Handler h) -> Reader::Handler {
    return [&seal_seen, name = std::move(name), h = std::move(h)](const toml::node& n, const std::string& k) {
      seal_seen[name] = n.source();
      return h(n, k);
    };
  };
  std::map<std::string, Reader::Handler> seal_keys = {
      {"type", seal_mark("type", seal_type)},
      {"key_file", seal_mark("key_file", r.String(&c->seal.key_file))},
      {"passphrase_file", seal_mark("passphrase_file", r.NonEmptyString(&c->seal.passphrase_file))},
      {"passphrase_env", seal_mark("passphrase_env", r.NonEmptyString(&c->seal.passphrase_env))},
      {"module", seal_mark("module", r.NonEmptyString(&c->seal.module))},
      {"token_label", seal_mark("token_label", r.NonEmptyString(&c->seal.token_label))},
      {"key_label", seal_mark("key_label", r.NonEmptyString(&c->seal.key_label))},
      {"pin_file", seal_mark("pin_file", r.NonEmptyString(&c->seal.pin_file))},
      {"pin_env", seal_mark("pin_env", r.NonEmptyString(&c->seal.pin_env))},
  };
  Reader::Handler seal = [&r, c, &seal_seen, seal_keys](const toml::node& v, const std::string& key) -> Status {
    KURA_RETURN_IF_ERROR(r.Table(v, key, seal_keys));
    c->seal.origin = r.Where(v.source());
    if (auto problem = SealProblem(c->seal)) {
      // Point at the key when this file set it, else at the [seal] table.
      auto it = seal_seen.find(problem->first);
      return r.Error(it != seal_seen.end() ? it->second : v.source(), key + "." + problem->first, problem->second);
    }
    return Status::Ok();
  };
  std::map<std::string, Reader::Handler> records = {
      {"keep_versions", r.Int(&c->records.keep_versions, 1, 1000)},
      {"max_page_size", r.Int(&c->records.max_page_size, 1, 10000)},
      {"retention_interval", r.Duration(&c->records.retention_interval, false)},
  };
  std::map<std::string, Reader::Handler> keys = {
      {"reencrypt_batch", r.Int(&c->keys.reencrypt_batch, 1, 10000)},
      {"reencrypt_load_percent", r.Int(&c->keys.reencrypt_load_percent, 1, 100)},
      {"reencrypt_pause_ms", r.Int(&c->keys.reencrypt_pause_ms, 0, 600000)},
  };
  // [[audit.sink]]: an array of tables, each checked completely here so the
  // message can point at the table and the key; ValidateConfig repeats the
  // rules for configurations not read from a file.
  Reader::Handler sinks = [&r, c](const toml::node& v, const std::string& key) -> Status {
    const toml::array* array = v.as_array();
    if (array == nullptr) {
      return r.Error(v.source(), key,
                     std::string("expected an array of tables ([[audit.sink]]), got ") + std::string(TypeName(v)));
    }
    std::vector<Config::Audit::SinkSettings> out;
    std::vector<std::string> name_origins;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      const std::string item_key = key + "[" + std::to_string(i) + "]";
      Config::Audit::SinkSettings sink;
      std::map<std::string, toml::source_region> seen;  // key -> where it was set
      auto mark = [&seen](std::string name, Reader::Handler h) -> Reader::Handler {
        return [&seen, name = std::move(name), h = std::move(h)](const toml::node& n, const std::string& k) {
          seen[name] = n.source();
          return h(n, k);
        };
      };
      Reader::Handler sink_address = [&r, &sink](const toml::node& n, const std::string& k) -> Status {
        std::string value;
        KURA_RETURN_IF_ERROR(r.String(&value)(n, k));
        if (auto problem = SyslogAddressProblem(value)) return r.Error(n.source(), k, *problem);
        sink.address = value;
        return Status::Ok();
      };
      Reader::Handler app_name = [&r, &sink](const toml::node& n, const std::string& k) -> Status {
        std::string value;
        KURA_RETURN_IF_ERROR(r.String(&value)(n, k));
        if (!ValidAppName(value)) {
          return r.Error(n.source(), k, "\"" + value + "\" is not 1-48 printable ASCII characters without spaces");
        }
        sink.app_name = value;
        return Status::Ok();
      };
      // A facility by number (0-23) or by name ("audit", "local0", …).
      Reader::Handler facility = [&r, &sink](const toml::node& n, const std::string& k) -> Status {
        if (n.is_integer()) return r.Int(&sink.facility, 0, 23)(n, k);
        std::string value;
        if (!n.is_string()) {
          return r.Error(n.source(), k,
                         std::string("expected a facility name or number, got ") + std::string(TypeName(n)));
        }
        KURA_RETURN_IF_ERROR(r.String(&value)(n, k));
        for (const auto& [name, code] : kFacilities) {
          if (name == value) {
            sink.facility = code;
            return Status::Ok();
          }
        }
        return r.Error(n.source(), k, "\"" + value + "\" is not a syslog facility (0-23, or kern … local7)");
      };
      Reader::Handler name = [&r, &sink](const toml::node& n, const std::string& k) -> Status {
        std::string value;
        KURA_RETURN_IF_ERROR(r.String(&value)(n, k));
        if (!ValidSinkName(value)) {
          return r.Error(n.source(), k,
                         "\"" + value + "\" is not a sink name (1-64 of A-Z a-z 0-9 . _ -, not starting with '.')");
        }
        sink.name = value;
        return Status::Ok();
      };
      std::map<std::string, Reader::Handler> keys = {
          {"name", mark("name", name)},
          {"type", mark("type", r.Enum(&sink.type, kSinkTypes))},
          {"path", mark("path", r.NonEmptyString(&sink.path))},
          {"max_bytes", mark("max_bytes", r.Int(&sink.max_bytes, kMinSinkBytes, kMaxSinkBytes))},
          {"keep_files", mark("keep_files", r.Int(&sink.keep_files, 1, kMaxKeepFiles))},
          {"address", mark("address", sink_address)},
          {"app_name", mark("app_name", app_name)},
          {"facility", mark("facility", facility)},
      };
      KURA_RETURN_IF_ERROR(r.Table(item, item_key, keys));
      if (sink.name.empty()) return r.Error(item.source(), item_key + ".name", "required (a unique name for this sink)");
      for (std::size_t j = 0; j < out.size(); ++j) {
        if (out[j].name == sink.name) {
          return r.Error(seen["name"], item_key + ".name",
                         "\"" + sink.name + "\" is already the name of the sink at " + name_origins[j]);
        }
      }
      if (sink.type.empty()) {
        return r.Error(item.source(), item_key + ".type", "required (" + Choices(kSinkTypes) + ")");
      }
      // Keys of the other type are refused rather than ignored: a file sink
      // with an `address` is almost certainly a mistake that would otherwise
      // send the audit trail somewhere the operator did not intend.
      const bool is_file = sink.type == "file";
      const char* const file_keys[] = {"path", "max_bytes", "keep_files"};
      const char* const syslog_keys[] = {"address", "app_name", "facility"};
      for (const char* k : is_file ? syslog_keys : file_keys) {
        if (auto it = seen.find(k); it != seen.end()) {
          return r.Error(it->second, item_key + "." + k,
                         std::string("only for type = \"") + (is_file ? "syslog" : "file") + "\"");
        }
      }
      if (is_file && sink.path.empty()) {
        return r.Error(item.source(), item_key + ".path", "required for type = \"file\" (the JSON lines file)");
      }
      if (!is_file && sink.address.empty()) {
        return r.Error(item.source(), item_key + ".address",
                       "required for type = \"syslog\" (udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH)");
      }
      sink.origin = r.Where(item.source());
      name_origins.push_back(r.Where(seen["name"]));
      out.push_back(std::move(sink));
    }
    c->audit.sinks = std::move(out);
    return Status::Ok();
  };
  std::map<std::string, Reader::Handler> audit = {
      {"checkpoint_interval", r.Duration(&c->audit.checkpoint_interval, false)},
      {"sink", sinks},
  };
  std::map<std::string, Reader::Handler> auth = {
      {"password_hash_memory_kib", r.Int(&c->auth.password_hash_memory_kib, 8, 4 * 1024 * 1024)},
      {"password_hash_iterations", r.Int(&c->auth.password_hash_iterations, 1, 100)},
      {"session_idle_timeout", r.Duration(&c->auth.session_idle_timeout, false)},
      {"session_lifetime", r.Duration(&c->auth.session_lifetime, false)},
      {"step_up_window", r.Duration(&c->auth.step_up_window, false)},
      {"totp_issuer", r.NonEmptyString(&c->auth.totp_issuer)},
  };
  Reader::Handler realms = [&r, c](const toml::node& v, const std::string& key) -> Status {
    const toml::array* array = v.as_array();
    if (array == nullptr) return r.Error(v.source(), key, "expected an array of realm names");
    std::vector<std::string> out;
    for (const toml::node& item : *array) {
      const auto* s = item.as_string();
      if (s == nullptr || s->get().empty()) return r.Error(item.source(), key, "expected a realm name (a string)");
      out.push_back(s->get());
    }
    c->kerberos.map_realms = std::move(out);
    return Status::Ok();
  };
  std::map<std::string, Reader::Handler> kerberos = {
      {"enabled", r.Bool(&c->kerberos.enabled)},
      {"keytab", r.NonEmptyString(&c->kerberos.keytab)},
      {"service_principal", r.NonEmptyString(&c->kerberos.service_principal)},
      {"map_realms", realms},
  };
  std::map<std::string, Reader::Handler> log = {
      {"level", r.Enum(&c->log.level, kLogLevels)},
      {"access_log", r.NonEmptyString(&c->log.access_log)},
  };

  auto section = [&r](std::map<std::string, Reader::Handler> handlers) -> Reader::Handler {
    return [&r, h = std::move(handlers)](const toml::node& v, const std::string& key) {
      return r.Table(v, key, h);
    };
  };
  std::map<std::string, Reader::Handler> top = {
      {"region", region},
      {"site", r.NonEmptyString(&c->site)},
      {"listener", section(std::move(listener))},
      {"storage", section(std::move(storage))},
      {"seal", seal},
      {"records", section(std::move(records))},
      {"keys", section(std::move(keys))},
      {"audit", section(std::move(audit))},
      {"auth", section(std::move(auth))},
      {"kerberos", section(std::move(kerberos))},
      {"log", section(std::move(log))},
  };
  return r.Table(root, "", top);
}

}  // namespace

Status LoadConfigFile(const std::string& path, Config* config) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFoundError(path + ": no such config file");
  }
  std::ifstream probe(path);
  if (!probe) return InvalidArgumentError(path + ": cannot read config file");
  probe.close();

  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return InvalidArgumentError(path + ":" + std::to_string(e.source().begin.line) + ": " +
                                std::string(e.description()));
  }
  // Work on a copy so a file with an error leaves `config` untouched.
  Config updated = *config;
  KURA_RETURN_IF_ERROR(ReadConfig(Reader(path), root, &updated));
  *config = std::move(updated);
  return Status::Ok();
}

Status ValidateConfig(const Config& c) {
  auto bad = [](std::string key, std::string reason) { return InvalidArgumentError(key + ": " + reason); };
  if (!OneOf(c.region, kRegions)) return bad("region", "\"" + c.region + "\" is not one of " + Choices(kRegions));
  if (c.site.empty()) return bad("site", "must not be empty");

  const auto& l = c.listener;
  std::string host;
  int port = 0;
  if (!SplitHostPort(l.address, &host, &port)) {
    return bad("listener.address", "\"" + l.address + "\" is not HOST:PORT");
  }
  if (l.plain_http) {
    // Plain HTTP would put tokens and personal data on the wire in clear; it
    // exists only so a developer can poke a local server with simple tools.
    if (!IsLoopbackHost(host)) {
      return bad("listener.plain_http", "only allowed on a loopback address, not \"" + host + "\"");
    }
  } else {
    if (l.tls_cert.empty()) return bad("listener.tls_cert", "required (HTTPS is the only transport outside dev mode)");
    if (l.tls_key.empty()) return bad("listener.tls_key", "required (HTTPS is the only transport outside dev mode)");
  }
  if (!OneOf(l.tls_profile, kTlsProfiles)) {
    return bad("listener.tls_profile", "\"" + l.tls_profile + "\" is not one of " + Choices(kTlsProfiles));
  }
  if (l.max_body_bytes == 0) return bad("listener.max_body_bytes", "must be greater than zero");
  if (l.max_header_bytes < 1024) return bad("listener.max_header_bytes", "must be at least 1024");
  if (l.read_timeout.count() <= 0) return bad("listener.read_timeout", "must be greater than zero");
  if (l.write_timeout.count() <= 0) return bad("listener.write_timeout", "must be greater than zero");
  if (l.idle_timeout.count() <= 0) return bad("listener.idle_timeout", "must be greater than zero");
  if (l.drain_timeout.count() < 0) return bad("listener.drain_timeout", "must not be negative");
  if (l.threads < 0) return bad("listener.threads", "must not be negative");
  if (l.max_connections < 1) return bad("listener.max_connections", "must be at least 1");

  if (!OneOf(c.storage.engine, kEngines)) {
    return bad("storage.engine", "\"" + c.storage.engine + "\" is not one of " + Choices(kEngines));
  }
  // The data directory holds kura.db (sqlite) and, with either engine, the
  // default key file and the dev files.
  if (c.storage.path.empty()) return bad("storage.path", "must not be empty");
  const auto& st = c.storage;
  // Mirrors outside the deployment's region are refused (SPEC §5): a tenant
  // of region jp must never have a copy of its data in another region's
  // data centre, even a standby one.
  for (const auto& [key, site] :
       {std::pair{"storage.primary", &st.primary}, std::pair{"storage.replica", &st.replica}}) {
    if (!site->has_value()) continue;
    const Config::Site& s = **site;
    auto at = [&s](std::string k, std::string reason) {
      return InvalidArgumentError((s.origin.empty() ? "" : s.origin + ": ") + k + ": " + reason);
    };
    if (s.site.empty()) return at(std::string(key) + ".site", "must not be empty");
    if (!OneOf(s.region, kRegions)) {
      return at(std::string(key) + ".region", "\"" + s.region + "\" is not one of " + Choices(kRegions));
    }
    if (s.region != c.region) {
      return at(std::string(key) + ".region",
                "site \"" + s.site + "\" is in region \"" + s.region + "\", outside this deployment's region \"" +
                    c.region + "\" (" + (c.region_origin.empty() ? "the default" : "set at " + c.region_origin) +
                    "); the database and its mirror must stay in the deployment's region");
    }
    if (st.engine != "postgres") {
      return at(key, "only with storage.engine = \"postgres\" (SQLite has no replica)");
    }
  }
  if (!st.gss_keytab.empty() && st.engine != "postgres") {
    return InvalidArgumentError((st.gss_keytab_origin.empty() ? "" : st.gss_keytab_origin + ": ") +
                                "storage.gss_keytab: only with storage.engine = \"postgres\"");
  }
  if (st.engine == "postgres") {
    if (st.dsn.empty()) {
      return bad("storage.dsn", "required when storage.engine is \"postgres\" (a libpq connection string)");
    }
    if (!st.gss_keytab.empty()) {
      // One way to authenticate: with a keytab, a password anywhere would
      // either be ignored (pg_hba.conf says gss) or be a second way in.
      if (!st.password_file.empty()) {
        return InvalidArgumentError((st.gss_keytab_origin.empty() ? "" : st.gss_keytab_origin + ": ") +
                                    "storage.gss_keytab: set only one of storage.password_file and "
                                    "storage.gss_keytab (kura authenticates to PostgreSQL one way)");
      }
      if (DsnHasPassword(st.dsn)) {
        return bad("storage.dsn", "holds a password although storage.gss_keytab is set; remove it from the DSN");
      }
      // libpq prefers GSSAPI encryption over TLS whenever it holds Kerberos
      // credentials, and a GSSAPI-encrypted channel skips sslmode=verify-full
      // altogether. kura keeps TLS for the channel (the server's certificate
      // and name are checked) and uses Kerberos only to authenticate.
      if (auto mode = DsnParameter(st.dsn, "gssencmode"); mode && *mode != "disable") {
        return bad("storage.dsn",
                   "sets gssencmode, which would replace TLS (sslmode=verify-full) with GSSAPI encryption; with "
                   "storage.gss_keytab Kerberos only authenticates: remove gssencmode or set gssencmode=disable");
      }
    }
    // Never quote the DSN: it may hold the very password this rule is about.
    if (!st.password_file.empty() && DsnHasPassword(st.dsn)) {
      return bad("storage.dsn", "holds a password although storage.password_file is set; remove it from the DSN");
    }
    if (st.pool_size < 1) return bad("storage.pool_size", "must be at least 1");
    if (st.connect_timeout.count() <= 0 || st.connect_timeout > kMaxConnectTimeout) {
      return bad("storage.connect_timeout",
                 "must be between 1s and " + std::to_string(kMaxConnectTimeout.count()) + "s");
    }
    if (st.statement_timeout.count() <= 0 || st.statement_timeout > kMaxStatementTimeout) {
      return bad("storage.statement_timeout",
                 "must be between 1s and " + std::to_string(kMaxStatementTimeout.count()) + "s");
    }
  }

  if (!OneOf(c.seal.type, kSealTypes)) {
    return bad("seal.type", "\"" + c.seal.type + "\" is not one of " + Choices(kSealTypes));
  }
  if (auto problem = SealProblem(c.seal)) {
    return InvalidArgumentError((c.seal.origin.empty() ? "" : c.seal.origin + ": ") + "seal." + problem->first + ": " +
                                problem->second);
  }

  if (c.records.keep_versions < 1) return bad("records.keep_versions", "must be at least 1");
  if (c.records.max_page_size < 1) return bad("records.max_page_size", "must be at least 1");
  if (c.keys.reencrypt_batch < 1 || c.keys.reencrypt_batch > 10000) {
    return bad("keys.reencrypt_batch", "must be 1 … 10000");
  }
  if (c.keys.reencrypt_load_percent < 1 || c.keys.reencrypt_load_percent > 100) {
    return bad("keys.reencrypt_load_percent", "must be 1 … 100");
  }
  if (c.keys.reencrypt_pause_ms < 0) return bad("keys.reencrypt_pause_ms", "must not be negative");
  if (c.records.retention_interval.count() <= 0) return bad("records.retention_interval", "must be greater than zero");
  if (c.audit.checkpoint_interval.count() <= 0) return bad("audit.checkpoint_interval", "must be greater than zero");
  if (c.auth.session_idle_timeout > c.auth.session_lifetime) {
    return bad("auth.session_idle_timeout", "must not be longer than auth.session_lifetime");
  }
  for (std::size_t i = 0; i < c.audit.sinks.size(); ++i) {
    const Config::Audit::SinkSettings& sink = c.audit.sinks[i];
    const std::string key = "audit.sink[" + std::to_string(i) + "]";
    auto at = [&sink, &key](std::string field, std::string reason) {
      return InvalidArgumentError((sink.origin.empty() ? "" : sink.origin + ": ") + key + "." + field + ": " + reason);
    };
    if (!ValidSinkName(sink.name)) {
      return at("name", "\"" + sink.name + "\" is not a sink name (1-64 of A-Z a-z 0-9 . _ -, not starting with '.')");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (c.audit.sinks[j].name == sink.name) {
        return at("name", "\"" + sink.name + "\" is also the name of audit.sink[" + std::to_string(j) + "]");
      }
    }
    if (sink.type == "file") {
      if (sink.path.empty()) return at("path", "required for type = \"file\"");
      if (sink.max_bytes < kMinSinkBytes || sink.max_bytes > kMaxSinkBytes) {
        return at("max_bytes", "must be between " + std::to_string(kMinSinkBytes) + " and " +
                                   std::to_string(kMaxSinkBytes));
      }
      if (sink.keep_files < 1 || sink.keep_files > kMaxKeepFiles) {
        return at("keep_files", "must be between 1 and " + std::to_string(kMaxKeepFiles));
      }
    } else if (sink.type == "syslog") {
      if (sink.address.empty()) return at("address", "required for type = \"syslog\"");
      if (auto problem = SyslogAddressProblem(sink.address)) return at("address", *problem);
      if (!ValidAppName(sink.app_name)) return at("app_name", "must be 1-48 printable ASCII characters without spaces");
      if (sink.facility < 0 || sink.facility > 23) return at("facility", "must be between 0 and 23");
    } else {
      return at("type", "\"" + sink.type + "\" is not one of " + Choices(kSinkTypes));
    }
  }
  if (!OneOf(c.log.level, kLogLevels)) return bad("log.level", "\"" + c.log.level + "\" is not one of " + Choices(kLogLevels));
  if (c.log.access_log.empty()) return bad("log.access_log", "must be \"stderr\", \"off\" or a file path");
  return Status::Ok();
}

namespace {

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = HexDigitValue(text[i + 1]), lo = HexDigitValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

bool IsSpace(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

std::string_view TrimLeft(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  return text;
}

// What follows "postgresql://" or "postgres://", or nullopt for the
// key=value form.
std::optional<std::string_view> UriRest(std::string_view dsn) {
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (dsn.starts_with(scheme)) return dsn.substr(scheme.size());
  }
  return std::nullopt;
}

// Calls fn(key, value) for every parameter of a connection string, in order:
// the query of a URI (percent-decoded) or the key = value pairs (values
// unquoted with backslash escapes, or 'single quoted'). A malformed pair ends
// the walk; libpq refuses such a string anyway.
template <typename Fn>
void ForEachDsnParameter(std::string_view dsn, Fn fn) {
  dsn = TrimLeft(dsn);
  if (auto rest = UriRest(dsn)) {
    auto q = rest->find('?');
    if (q == std::string_view::npos) return;
    std::string_view query = rest->substr(q + 1);
    while (!query.empty()) {
      std::size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      std::size_t eq = pair.find('=');
      fn(PercentDecode(pair.substr(0, eq)),
         eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
    return;
  }
  std::size_t i = 0;
  while (i < dsn.size()) {
    while (i < dsn.size() && IsSpace(dsn[i])) ++i;
    if (i >= dsn.size()) break;
    std::size_t key_start = i;
    while (i < dsn.size() && !IsSpace(dsn[i]) && dsn[i] != '=') ++i;
    std::string key(dsn.substr(key_start, i - key_start));
    while (i < dsn.size() && IsSpace(dsn[i])) ++i;
    if (i >= dsn.size() || dsn[i] != '=') return;
    ++i;
    while (i < dsn.size() && IsSpace(dsn[i])) ++i;
    std::string value;
    if (i < dsn.size() && dsn[i] == '\'') {
      for (++i; i < dsn.size() && dsn[i] != '\''; ++i) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value += dsn[i];
      }
      ++i;  // closing quote
    } else {
      for (; i < dsn.size() && !IsSpace(dsn[i]); ++i) {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        value += dsn[i];
      }
    }
    fn(std::move(key), std::move(value));
  }
}

}  // namespace

bool DsnHasPassword(std::string_view dsn) {
  dsn = TrimLeft(dsn);
  if (auto rest = UriRest(dsn)) {
    // URI: postgresql://[user[:password]@][hosts][/db][?k=v&…]
    std::string_view authority = rest->substr(0, rest->find_first_of("/?"));
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
      if (authority.substr(0, at).find(':') != std::string_view::npos) return true;
    }
  }
  return DsnParameter(dsn, "password").has_value();
}

std::optional<std::string> DsnParameter(std::string_view dsn, std::string_view key) {
  std::optional<std::string> found;
  ForEachDsnParameter(dsn, [&](std::string k, std::string v) {
    if (k == key) found = std::move(v);
  });
  return found;
}

}  // namespace kura
