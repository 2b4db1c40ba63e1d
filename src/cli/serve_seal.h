// The seal `kura serve` uses, built from the [seal] configuration: key file,
// Shamir shares, passphrase (Argon2id) or PKCS#11 token. Kept apart from
// serve.cc so the choice is in one place.
#ifndef KURA_CLI_SERVE_SEAL_H_
#define KURA_CLI_SERVE_SEAL_H_

#include <memory>
#include <string>

#include "cli/serve_config.h"
#include "crypto/seal.h"

namespace kura::cli {

// Files the passphrase and PKCS#11 seals keep in the data directory (neither
// holds a secret: salt and cost; the KEK encrypted by the token).
inline constexpr char kPassphraseSealFile[] = "passphrase-seal.json";
inline constexpr char kPkcs11SealFile[] = "pkcs11-kek.json";

// The seal of plan.config.seal.type (validated by ValidateConfig).
std::unique_ptr<crypto::Seal> MakeConfiguredSeal(const ServePlan& plan);

// Whether the configured seal obtains the KEK without operator input, so the
// server unseals itself at start: keyfile, pkcs11, and passphrase with a
// passphrase_file or passphrase_env.
bool SealUnsealsWithoutInput(const Config& config);

// Where the KEK comes from, for messages: "the key file /d/kek.key",
// "the PKCS#11 token 'kura' (key 'kura-kek')", "the passphrase from /p".
std::string SealSourceText(const ServePlan& plan);

}  // namespace kura::cli

#endif  // KURA_CLI_SERVE_SEAL_H_
