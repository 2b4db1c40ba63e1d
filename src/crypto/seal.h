// Seal: where the KEK comes from. kura starts sealed (holding no key); a Seal
// turns operator input (a key file, Shamir shares; later a passphrase or an
// HSM) into the KEK. The vault verifies the candidate KEK against a stored
// check value, so a Seal never needs to know whether its output is right.
//
// Thread safety: not thread-safe; the vault serialises calls.
#ifndef KURA_CRYPTO_SEAL_H_
#define KURA_CRYPTO_SEAL_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret.h"
#include "core/status.h"

namespace kura::crypto {

struct SealInitOptions {
  int shares = 1;      // shamir only
  int threshold = 1;   // shamir only
};

struct SealInitResult {
  SecretBytes kek;                  // the new KEK, 32 bytes
  std::vector<std::string> shares;  // shamir: printed once, never stored
};

struct UnsealProgress {
  int progress = 0;   // inputs received so far
  int threshold = 0;  // inputs needed
  std::optional<SecretBytes> kek;  // set once enough input was given
};

class Seal {
 public:
  virtual ~Seal() = default;
  // "keyfile" | "shamir" (config [seal] type).
  virtual std::string_view Type() const = 0;
  // Creates new KEK material. AlreadyExists if the seal already holds one
  // (a key file that exists).
  virtual Result<SealInitResult> Initialize(const SealInitOptions& options) = 0;
  // Obtains the KEK without operator input (key file, later HSM). nullopt when
  // this seal needs operator input (shamir).
  virtual Result<std::optional<SecretBytes>> AutoUnseal() = 0;
  // Takes one piece of operator input (a share). InvalidArgument when malformed.
  virtual Result<UnsealProgress> Submit(std::string_view input) = 0;
  // Forgets partial input (after a failed attempt or on seal).
  virtual void Reset() = 0;
};

// Key file: 32 random bytes, created mode 0600. The --dev default.
std::unique_ptr<Seal> MakeKeyfileSeal(std::string path);
// Shamir shares of a random KEK.
std::unique_ptr<Seal> MakeShamirSeal();

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_SEAL_H_
