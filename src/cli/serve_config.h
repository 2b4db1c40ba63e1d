// How `kura serve` assembles its configuration: the --dev defaults first, then
// the --config file (only the keys it sets), then --data and --listen, then
// ValidateConfig. Kept apart from serve.cc so it is testable without the
// server libraries.
#ifndef KURA_CLI_SERVE_CONFIG_H_
#define KURA_CLI_SERVE_CONFIG_H_

#include <string>

#include "core/config.h"
#include "core/status.h"

namespace kura::cli {

struct ServeFlags {
  bool dev = false;
  std::string config_file;  // --config; empty = none
  std::string data_dir;     // --data; empty = from config / default
  std::string listen;       // --listen HOST:PORT; empty = from config / default
};

struct ServePlan {
  Config config;         // validated; storage.path absolute
  bool dev = false;
  bool dev_tls = false;  // dev mode and the file named no TLS files: create them in <data>/tls
  std::string data_dir;  // == config.storage.path
  std::string db_path;   // <data>/kura.db (sqlite; unused with postgres)
  std::string keys_path; // storage.key_store_path, or <data>/keys.db (sqlite; unused with postgres)
  std::string key_file;  // seal.key_file, or <data>/kek.key
  std::string tls_dir;   // <data>/tls
  std::string dev_env;   // <data>/dev.env
};

// The defaults `--dev` starts from: ./kura-data, 127.0.0.1:8443, key-file seal.
Config DevDefaults();

// InvalidArgument (with the file's "FILE:LINE: key: reason") for bad files or
// flags; NotFound for a missing --config file; InvalidArgument when neither
// --dev nor --config is given, or plain HTTP is asked for without --dev, or
// (postgres) storage.password_file or storage.gss_keytab is missing,
// unreadable or readable by group or others (the keytab's message starts with
// its "FILE:LINE: "). With postgres, both paths are made absolute.
Result<ServePlan> BuildServePlan(const ServeFlags& flags);

}  // namespace kura::cli

#endif  // KURA_CLI_SERVE_CONFIG_H_
