#include "crypto/openssl_internal.h"

#include <openssl/err.h>

#include <cstdlib>
#include <string>

#include "core/log.h"

namespace kura::crypto::internal {
namespace {

std::string DrainErrors() {
  std::string reasons;
  unsigned long err;  // NOLINT(runtime/int): OpenSSL's type
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!reasons.empty()) reasons += "; ";
    reasons += buf;
  }
  return reasons.empty() ? "unknown OpenSSL error" : reasons;
}

}  // namespace

Status OpenSslError(std::string_view what) { return InternalError(std::string(what) + ": " + DrainErrors()); }

void ClearOpenSslErrors() { ERR_clear_error(); }

void FatalOpenSslError(std::string_view what) {
  log::Error(std::string("fatal crypto failure: ") + std::string(what) + ": " + DrainErrors());
  std::abort();
}

}  // namespace kura::crypto::internal
