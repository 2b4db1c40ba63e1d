// Development TLS material: a CA, an intermediate and a server certificate
// (ECDSA P-256, SHA-256), as `kura serve --dev` and `kura operator tls` create.
#ifndef KURA_CRYPTO_DEV_TLS_H_
#define KURA_CRYPTO_DEV_TLS_H_

#include <string>
#include <vector>

#include "core/status.h"

namespace kura::crypto {

struct DevTlsPaths {
  std::string ca_cert;       // root CA certificate (what clients trust)
  std::string server_chain;  // leaf + intermediate, PEM
  std::string server_key;    // leaf private key, PEM, mode 0600
};

// Creates the files in `dir` unless all three already exist (then reuses them).
// The leaf names DNS:localhost and IP:127.0.0.1 plus `extra_names` (DNS names
// or IP addresses). Leaf valid 397 days, CA 10 years.
Result<DevTlsPaths> EnsureDevTls(const std::string& dir, const std::vector<std::string>& extra_names = {});

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_DEV_TLS_H_
