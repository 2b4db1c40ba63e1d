// Seal: where the KEK comes from. kura starts sealed (holding no key); a Seal
// turns operator input (a key file, Shamir shares, a passphrase, a PKCS#11
// token) into the KEK. The vault verifies the candidate KEK against a stored
// check value, so a Seal never needs to know whether its output is right.
//
// Thread safety: not thread-safe; the vault serialises calls.
#ifndef KURA_CRYPTO_SEAL_H_
#define KURA_CRYPTO_SEAL_H_

#include <cstddef>
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
  // "keyfile" | "shamir" | "passphrase" | "pkcs11" (config [seal] type).
  virtual std::string_view Type() const = 0;
  // Creates new KEK material. AlreadyExists if the seal already holds one
  // (a key file that exists).
  virtual Result<SealInitResult> Initialize(const SealInitOptions& options) = 0;
  // Obtains the KEK without operator input (key file, PKCS#11 token, a
  // passphrase from a file or environment variable). nullopt when this seal
  // needs operator input (shamir; passphrase without a file or variable).
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

// Passphrase seal: KEK = Argon2id(passphrase, salt) (libsodium crypto_pwhash,
// ALG_ARGON2ID13). The salt and cost parameters (not secret) live in
// `params_path` ([format](../../docs/formats/passphrase-seal.md)); Initialize
// creates it (AlreadyExists if it exists). The passphrase comes from
// `passphrase_file` (mode 0600 or stricter, else InvalidArgument; one trailing
// newline is dropped) or the environment variable `passphrase_env` — then
// AutoUnseal derives the KEK — or, for `kura operator unseal`, from Submit().
// Submit always runs the full KDF, whatever the input: a wrong passphrase
// costs the same time as a right one and is refused by the vault's KEK check.
struct PassphraseSealOptions {
  std::string params_path;      // e.g. <data>/passphrase-seal.json
  std::string passphrase_file;  // empty = none
  std::string passphrase_env;   // empty = none
  // Argon2id cost for Initialize (later reads use the stored values).
  // Defaults: libsodium's MODERATE (3 passes, 256 MiB).
  unsigned long long opslimit = 3;
  std::size_t memlimit = std::size_t{256} << 20;
};
std::unique_ptr<Seal> MakePassphraseSeal(PassphraseSealOptions options);

// PKCS#11 seal: the KEK is a random 32-byte key stored only encrypted by an
// AES-256 key that never leaves the token (CKA_EXTRACTABLE=false,
// CKA_SENSITIVE=true, CKA_TOKEN=true), with CKM_AES_GCM and associated data
// "kura-kek-v1", in `wrapped_kek_path`
// ([format](../../docs/formats/pkcs11-seal.md)). The module is dlopen()ed.
// Initialize creates the token key with C_GenerateKey when no key with
// `key_label` exists (AlreadyExists when the wrapped-KEK file exists);
// AutoUnseal decrypts the file with C_Decrypt. Errors name what failed
// (module, token label, PIN, key label, decryption) and never contain the
// PIN: Unavailable (module cannot be loaded, token not present, PIN source
// unreadable, token error), InvalidArgument (wrong PIN, key label not found,
// decryption failed, malformed file).
struct Pkcs11SealOptions {
  std::string module;            // path of the PKCS#11 module (.so)
  std::string token_label;
  std::string key_label;
  std::string pin_file;          // mode 0600 or stricter; empty = none
  std::string pin_env;           // environment variable; empty = none
  std::string wrapped_kek_path;  // e.g. <data>/kek.p11.json
};
std::unique_ptr<Seal> MakePkcs11Seal(Pkcs11SealOptions options);

}  // namespace kura::crypto

#endif  // KURA_CRYPTO_SEAL_H_
