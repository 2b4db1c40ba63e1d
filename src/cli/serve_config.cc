#include "cli/serve_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace kura::cli {
namespace {

// A file holding a database credential (the password file, the Kerberos
// client keytab) must be a regular file readable by the server's user only,
// the rule libpq applies to ~/.pgpass: checked here so a missing or too-open
// file stops the start with a usage error before anything connects. `origin`
// ("FILE:LINE" of the key, may be empty) prefixes the message.
Status CheckSecretFile(const std::string& key, const std::string& path, const std::string& origin) {
  const std::string at = (origin.empty() ? "" : origin + ": ") + key + ": ";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return InvalidArgumentError(at + "cannot read " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(at + path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    return InvalidArgumentError(at + path + " is readable or writable by group or others; chmod 600 it");
  }
  // stat() needs no read permission: open it as the server's user will.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return InvalidArgumentError(at + "cannot read " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Config DevDefaults() {
  Config c;
  c.storage.engine = "sqlite";
  c.storage.path = "./kura-data";
  c.listener.address = "127.0.0.1:8443";
  c.seal.type = "keyfile";
  return c;
}

Result<ServePlan> BuildServePlan(const ServeFlags& flags) {
  if (!flags.dev && flags.config_file.empty()) {
    return InvalidArgumentError("needs --config FILE (production) or --dev (local development)");
  }
  ServePlan plan;
  plan.dev = flags.dev;
  plan.config = flags.dev ? DevDefaults() : Config();
  if (!flags.config_file.empty()) KURA_RETURN_IF_ERROR(LoadConfigFile(flags.config_file, &plan.config));
  Config& c = plan.config;
  if (!flags.data_dir.empty()) c.storage.path = flags.data_dir;
  if (!flags.listen.empty()) c.listener.address = flags.listen;
  if (c.storage.path.empty()) return InvalidArgumentError("storage.path: must not be empty");

  std::error_code ec;
  auto data = std::filesystem::absolute(c.storage.path, ec);
  if (ec) return InvalidArgumentError("storage.path: cannot resolve \"" + c.storage.path + "\": " + ec.message());
  data = data.lexically_normal();
  std::string data_str = data.string();
  while (data_str.size() > 1 && data_str.back() == '/') data_str.pop_back();
  c.storage.path = data_str;
  plan.data_dir = data_str;
  plan.db_path = (std::filesystem::path(data_str) / "kura.db").string();
  plan.keys_path = c.storage.key_store_path.empty() ? (std::filesystem::path(data_str) / "keys.db").string()
                                                    : c.storage.key_store_path;
  c.storage.key_store_path = plan.keys_path;
  plan.tls_dir = (std::filesystem::path(data_str) / "tls").string();
  plan.dev_env = (std::filesystem::path(data_str) / "dev.env").string();
  plan.key_file = c.seal.key_file.empty() ? (std::filesystem::path(data_str) / "kek.key").string() : c.seal.key_file;
  c.seal.key_file = plan.key_file;

  if (plan.dev && !c.listener.plain_http && c.listener.tls_cert.empty() && c.listener.tls_key.empty()) {
    // The dev CA and server certificate are created (or reused) at start;
    // these are the names crypto::EnsureDevTls uses.
    plan.dev_tls = true;
    c.listener.tls_cert = (std::filesystem::path(plan.tls_dir) / "server-chain.pem").string();
    c.listener.tls_key = (std::filesystem::path(plan.tls_dir) / "server.key").string();
  }
  if (c.listener.plain_http && !plan.dev) {
    return InvalidArgumentError("listener.plain_http: only allowed with --dev (and a loopback address)");
  }
  KURA_RETURN_IF_ERROR(ValidateConfig(c));
  if (c.storage.engine == "postgres" && !c.storage.password_file.empty()) {
    c.storage.password_file = std::filesystem::absolute(c.storage.password_file, ec).lexically_normal().string();
    KURA_RETURN_IF_ERROR(CheckSecretFile("storage.password_file", c.storage.password_file, ""));
  }
  if (c.storage.engine == "postgres" && !c.storage.gss_keytab.empty()) {
    // Absolute: libpq reads the keytab whenever it needs a fresh ticket,
    // long after start.
    c.storage.gss_keytab = std::filesystem::absolute(c.storage.gss_keytab, ec).lexically_normal().string();
    KURA_RETURN_IF_ERROR(CheckSecretFile("storage.gss_keytab", c.storage.gss_keytab, c.storage.gss_keytab_origin));
  }
  return plan;
}

}  // namespace kura::cli
