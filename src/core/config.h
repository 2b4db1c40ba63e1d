// Config: the server's configuration, read from one TOML file (SPEC Appendix B).
// Every option has a default; unknown keys and invalid values are refused with
// the file, line and reason ("kura.toml:12: listener.address: …").
//
// Thread safety: a plain value, built once at start.
#ifndef KURA_CORE_CONFIG_H_
#define KURA_CORE_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kura {

struct Config {
  std::string region = "jp";            // jp | us | eu | in
  std::string site = "local";
  // "FILE:LINE" of the `region` key when a file set it, else empty (the
  // default); lets cross-field messages point at both ends of a conflict.
  std::string region_origin;

  struct Listener {
    std::string address = "127.0.0.1:8443";  // host:port; port 0 picks a free one
    std::string tls_cert;                    // leaf + intermediate, PEM
    std::string tls_key;
    std::string tls_profile = "modern";      // modern | compatibility
    bool plain_http = false;                 // only with --dev and a loopback address
    std::uint64_t max_body_bytes = 1 << 20;  // 1 MiB JSON bodies
    std::uint32_t max_header_bytes = 16 * 1024;
    std::chrono::seconds read_timeout{30};
    std::chrono::seconds write_timeout{30};
    std::chrono::seconds idle_timeout{60};   // keep-alive
    std::chrono::seconds drain_timeout{20};  // SIGTERM grace period
    int threads = 0;                         // I/O threads; 0 = one per core
    int max_connections = 10000;
    std::uint32_t hsts_max_age = 63072000;
  } listener;

  // A database site of a PostgreSQL deployment: where the primary or the
  // streaming replica runs. PostgreSQL does the mirroring; kura only refuses
  // to start when a mirror would hold the data outside this deployment's
  // region (SPEC §5, Geo-mirroring).
  struct Site {
    std::string site;    // data-centre name, e.g. "osaka-1"
    std::string region;  // jp | us | eu | in
    std::string origin;  // "FILE:LINE" of its `region` key; empty when not from a file
  };

  struct Storage {
    std::string engine = "sqlite";           // sqlite | postgres
    std::string path = "./kura-data";        // data directory (sqlite: kura.db; both: key file, dev files)
    std::string dsn;                         // postgres: libpq connection string (required)
    std::string password_file;               // postgres: file holding only the password (mode 0600)
    // postgres: client keytab holding kura's Kerberos principal (mode 0600).
    // When set, libpq authenticates with GSSAPI and no password is used; the
    // serve wiring points MIT krb5 at it (KRB5_CLIENT_KTNAME) before the
    // store opens. Excludes password_file and a password in the DSN.
    std::string gss_keytab;
    std::string gss_keytab_origin;           // "FILE:LINE" of gss_keytab; empty when not from a file
    std::string key_store_path;              // sqlite: the key store; default <storage.path>/keys.db
    int pool_size = 8;                       // postgres: connections per node
    int record_cache_mib = 64;               // sqlite: sealed current records kept in memory; 0: none
    std::chrono::seconds connect_timeout{5};    // postgres: per host, unless the DSN sets one
    std::chrono::seconds statement_timeout{5};  // postgres: server-side bound per statement
    std::optional<Site> primary;                // postgres: [storage.primary]
    std::optional<Site> replica;                // postgres: [storage.replica]
  } storage;

  struct Seal {
    std::string type = "keyfile";            // keyfile | shamir | passphrase | pkcs11
    std::string key_file;                    // keyfile: default <storage.path>/kek.key
    // passphrase: at most one source; with neither, `kura operator unseal`
    // takes the passphrase. The file must be mode 0600 or stricter.
    std::string passphrase_file;
    std::string passphrase_env;              // name of an environment variable
    // pkcs11: all of module, token_label, key_label and one of pin_file /
    // pin_env are required.
    std::string module;                      // absolute path of the PKCS#11 module (.so)
    std::string token_label;
    std::string key_label;                   // the AES-256 key wrapping the KEK
    std::string pin_file;                    // mode 0600 or stricter
    std::string pin_env;                     // name of an environment variable
    std::string origin;                      // "FILE:LINE" of the [seal] table; empty when not from a file
  } seal;

  struct Records {
    int keep_versions = 10;
    int max_page_size = 100;
    // How often the lease holder destroys records past their collection's
    // retention_days (docs/operations/retention.md).
    std::chrono::seconds retention_interval{3600};
  } records;

  // The background re-encryption of a DEK rotation
  // (docs/operations/key-rotation.md).
  struct Keys {
    int reencrypt_batch = 2000;        // record versions per batch (one transaction)
    int reencrypt_load_percent = 50;   // share of time the job may work; it pauses the rest
    int reencrypt_pause_ms = 0;        // at least this pause between two batches
  } keys;

  struct Audit {
    std::chrono::seconds checkpoint_interval{60};

    // One [[audit.sink]] table: where the SIEM export copies every entry.
    // Mirrors audit::SinkConfig (core cannot depend on audit); the serve
    // wiring converts with audit::SinkConfigFrom().
    struct SinkSettings {
      std::string name;                  // unique; [A-Za-z0-9._-], 1-64 chars, names the state file
      std::string type;                  // file | syslog
      // file:
      std::string path;                  // JSON lines, rotated to path.1, path.2, …
      std::uint64_t max_bytes = 64u << 20;
      int keep_files = 5;                // rotated files kept besides `path`
      // syslog:
      std::string address;               // udp://host:port | tcp://host:port | unix:///path
      std::string app_name = "kura";     // RFC 5424 APP-NAME
      int facility = 13;                 // 0-23; 13 = log audit
      std::string origin;                // "FILE:LINE" of the table; empty when not from a file
    };
    std::vector<SinkSettings> sinks;
  } audit;

  // Sign-in (docs/identity.md). Password policy itself is per tenant and for
  // staff, set through the API (/v1/t/{t}/auth-policy, /v1/sys/auth-policy).
  struct Auth {
    std::uint64_t password_hash_memory_kib = 64 * 1024;  // Argon2id memory per hash
    std::uint64_t password_hash_iterations = 3;          // Argon2id passes
    std::chrono::seconds session_idle_timeout{15 * 60};
    std::chrono::seconds session_lifetime{8 * 3600};
    std::chrono::seconds step_up_window{5 * 60};
    std::string totp_issuer = "kura";
  } auth;
  // Kerberos sign-in for staff (HTTP Negotiate). Off unless enabled.
  struct Kerberos {
    bool enabled = false;
    std::string keytab;              // "" = KRB5_KTNAME
    std::string service_principal;   // "" = any key in the keytab
    std::vector<std::string> map_realms;  // name@REALM → staff "name"
  } kerberos;
  struct Log {
    std::string level = "info";              // trace | debug | info | warn | error
    std::string access_log = "stderr";       // stderr | off | a file path
  } log;
};

// Parses a TOML file into `config`, overriding only the keys the file sets
// (so --dev defaults stay where the file is silent). InvalidArgument with
// "file:line: key: reason" on unknown keys, wrong types or invalid values.
Status LoadConfigFile(const std::string& path, Config* config);

// Checks cross-field rules (e.g. TLS files set unless plain_http; a DSN for
// postgres; no database site outside `region`). Called after every override
// is applied. InvalidArgument "key: reason", prefixed with "FILE:LINE: " when
// the offending value came from a file.
Status ValidateConfig(const Config& config);

// Whether a libpq connection string (key=value or URI form) carries a
// password. Only a yes/no: the DSN itself must never reach a message.
bool DsnHasPassword(std::string_view dsn);

// The value of connection parameter `key` in a libpq connection string
// (key=value form, or the query of a URI; the last occurrence wins, as in
// libpq), or nullopt when the string does not set it. Never put the result in
// a message unless the parameter is known to hold no secret.
std::optional<std::string> DsnParameter(std::string_view dsn, std::string_view key);

}  // namespace kura

#endif  // KURA_CORE_CONFIG_H_
