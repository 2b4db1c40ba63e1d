// Passphrase seal: KEK = Argon2id(passphrase, salt). See seal.h and
// docs/formats/passphrase-seal.md.
#include <sodium.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "crypto/random.h"
#include "crypto/seal.h"
#include "crypto/seal_internal.h"

namespace kura::crypto {
namespace {

constexpr int kParamsFormat = 1;
constexpr char kKdfName[] = "argon2id13";
constexpr char kParamsFileWhat[] = "passphrase seal file";
// Upper bounds accepted from the parameters file: a tampered file must not be
// able to make every start allocate gigabytes or spin for minutes.
constexpr unsigned long long kMaxOpslimit = 64;
constexpr std::size_t kMaxMemlimit = std::size_t{4} << 30;

struct KdfParams {
  Bytes salt;
  unsigned long long opslimit = 0;
  std::size_t memlimit = 0;
};

Status CheckCost(unsigned long long opslimit, std::size_t memlimit) {
  if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > kMaxOpslimit) {
    return InvalidArgumentError("passphrase seal: opslimit " + std::to_string(opslimit) + " is out of range [" +
                                std::to_string(crypto_pwhash_OPSLIMIT_MIN) + ", " + std::to_string(kMaxOpslimit) + "]");
  }
  if (memlimit < crypto_pwhash_MEMLIMIT_MIN || memlimit > kMaxMemlimit) {
    return InvalidArgumentError("passphrase seal: memlimit " + std::to_string(memlimit) + " is out of range [" +
                                std::to_string(crypto_pwhash_MEMLIMIT_MIN) + ", " + std::to_string(kMaxMemlimit) + "]");
  }
  return Status::Ok();
}

class PassphraseSeal final : public Seal {
 public:
  explicit PassphraseSeal(PassphraseSealOptions options) : options_(std::move(options)) {}

  std::string_view Type() const override { return "passphrase"; }

  Result<SealInitResult> Initialize(const SealInitOptions& /*options*/) override {
    KURA_RETURN_IF_ERROR(CheckCost(options_.opslimit, options_.memlimit));
    KURA_ASSIGN_OR_RETURN(std::optional<SecretBytes> passphrase, ConfiguredPassphrase());
    if (!passphrase) {
      return FailedPreconditionError(
          "the passphrase seal is initialised with the passphrase from [seal] passphrase_file or passphrase_env; "
          "neither is configured");
    }
    KdfParams params;
    params.salt = RandomBytes(crypto_pwhash_SALTBYTES);
    params.opslimit = options_.opslimit;
    params.memlimit = options_.memlimit;
    // Derive before writing the file: a KDF failure (out of memory) leaves
    // nothing behind to trip the next attempt.
    KURA_ASSIGN_OR_RETURN(SecretBytes kek, Derive(*passphrase, params));
    passphrase->Wipe();
    nlohmann::json doc = {{"format", kParamsFormat},
                          {"kdf", kKdfName},
                          {"salt", Base64UrlEncode(params.salt)},
                          {"opslimit", params.opslimit},
                          {"memlimit", params.memlimit}};
    KURA_RETURN_IF_ERROR(internal::WriteNewFile(options_.params_path, doc.dump() + "\n", kParamsFileWhat));
    SealInitResult result;
    result.kek = std::move(kek);
    return result;
  }

  Result<std::optional<SecretBytes>> AutoUnseal() override {
    KURA_ASSIGN_OR_RETURN(std::optional<SecretBytes> passphrase, ConfiguredPassphrase());
    if (!passphrase) return std::optional<SecretBytes>();  // operator input needed
    KURA_ASSIGN_OR_RETURN(KdfParams params, LoadParams());
    KURA_ASSIGN_OR_RETURN(SecretBytes kek, Derive(*passphrase, params));
    return std::optional<SecretBytes>(std::move(kek));
  }

  Result<UnsealProgress> Submit(std::string_view input) override {
    KURA_ASSIGN_OR_RETURN(KdfParams params, LoadParams());
    // Every input, however wrong (even empty), goes through the full KDF and
    // on to the vault's KEK check: no early exit, so neither the time nor the
    // message tells a guesser anything about the input.
    SecretBytes passphrase = SecretBytes::FromBytes(AsBytes(input));
    KURA_ASSIGN_OR_RETURN(SecretBytes kek, Derive(passphrase, params));
    UnsealProgress progress;
    progress.progress = 1;
    progress.threshold = 1;
    progress.kek = std::move(kek);
    return progress;
  }

  void Reset() override {}  // keeps no partial input

 private:
  // The passphrase from the configured file or variable; nullopt when neither
  // is configured.
  Result<std::optional<SecretBytes>> ConfiguredPassphrase() const {
    if (!options_.passphrase_file.empty()) {
      KURA_ASSIGN_OR_RETURN(SecretBytes p, internal::ReadSecretFile(options_.passphrase_file, "passphrase file"));
      return std::optional<SecretBytes>(std::move(p));
    }
    if (!options_.passphrase_env.empty()) {
      KURA_ASSIGN_OR_RETURN(SecretBytes p, internal::ReadSecretEnv(options_.passphrase_env, "passphrase seal"));
      return std::optional<SecretBytes>(std::move(p));
    }
    return std::optional<SecretBytes>();
  }

  Result<KdfParams> LoadParams() const {
    auto text = internal::ReadSmallFile(options_.params_path, 4096, kParamsFileWhat);
    if (!text.ok()) {
      if (text.status().code() == StatusCode::kNotFound) {
        return FailedPreconditionError(text.status().message() + " (the vault was not initialised with this seal)");
      }
      return text.status();
    }
    const std::string where = std::string(kParamsFileWhat) + " " + options_.params_path;
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("format") || !doc["format"].is_number_integer()) {
      return DataLossError(where + " is malformed");
    }
    if (doc["format"].get<int>() != kParamsFormat) {
      return DataLossError(where + " has format " + doc["format"].dump() + "; this kura reads format 1");
    }
    if (doc.value("kdf", "") != kKdfName || !doc.contains("salt") || !doc["salt"].is_string() ||
        !doc.contains("opslimit") || !doc["opslimit"].is_number_unsigned() || !doc.contains("memlimit") ||
        !doc["memlimit"].is_number_unsigned()) {
      return DataLossError(where + " is malformed");
    }
    KdfParams params;
    auto salt = Base64UrlDecode(doc["salt"].get<std::string>());
    if (!salt || salt->size() != crypto_pwhash_SALTBYTES) return DataLossError(where + ": salt is not 16 bytes");
    params.salt = std::move(*salt);
    params.opslimit = doc["opslimit"].get<unsigned long long>();
    params.memlimit = doc["memlimit"].get<std::size_t>();
    if (Status s = CheckCost(params.opslimit, params.memlimit); !s.ok()) return DataLossError(where + ": " + s.message());
    return params;
  }

  static Result<SecretBytes> Derive(const SecretBytes& passphrase, const KdfParams& params) {
    if (sodium_init() < 0) return InternalError("libsodium cannot be initialised");
    SecretBytes kek(internal::kKekSize);
    // crypto_pwhash reads the passphrase as bytes; an empty one is valid
    // input (and is refused by the KEK check like any other wrong one).
    static const char kEmpty[1] = {0};
    const char* pw = passphrase.empty() ? kEmpty : reinterpret_cast<const char*>(passphrase.data());
    if (crypto_pwhash(kek.data(), kek.size(), pw, passphrase.size(), params.salt.data(), params.opslimit,
                      params.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
      return UnavailableError("passphrase seal: Argon2id failed (out of memory for memlimit " +
                              std::to_string(params.memlimit) + "?)");
    }
    return kek;
  }

  PassphraseSealOptions options_;
};

}  // namespace

std::unique_ptr<Seal> MakePassphraseSeal(PassphraseSealOptions options) {
  return std::make_unique<PassphraseSeal>(std::move(options));
}

}  // namespace kura::crypto
