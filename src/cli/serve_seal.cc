#include "cli/serve_seal.h"

#include <filesystem>

namespace kura::cli {

namespace {
std::string InDataDir(const ServePlan& plan, const char* name) {
  return (std::filesystem::path(plan.data_dir) / name).string();
}
}  // namespace

std::unique_ptr<crypto::Seal> MakeConfiguredSeal(const ServePlan& plan) {
  const Config::Seal& s = plan.config.seal;
  if (s.type == "shamir") return crypto::MakeShamirSeal();
  if (s.type == "passphrase") {
    crypto::PassphraseSealOptions options;
    options.params_path = InDataDir(plan, kPassphraseSealFile);
    options.passphrase_file = s.passphrase_file;
    options.passphrase_env = s.passphrase_env;
    return crypto::MakePassphraseSeal(std::move(options));
  }
  if (s.type == "pkcs11") {
    crypto::Pkcs11SealOptions options;
    options.module = s.module;
    options.token_label = s.token_label;
    options.key_label = s.key_label;
    options.pin_file = s.pin_file;
    options.pin_env = s.pin_env;
    options.wrapped_kek_path = InDataDir(plan, kPkcs11SealFile);
    return crypto::MakePkcs11Seal(std::move(options));
  }
  return crypto::MakeKeyfileSeal(plan.key_file);
}

bool SealUnsealsWithoutInput(const Config& config) {
  const Config::Seal& s = config.seal;
  if (s.type == "keyfile" || s.type == "pkcs11") return true;
  if (s.type == "passphrase") return !s.passphrase_file.empty() || !s.passphrase_env.empty();
  return false;
}

std::string SealSourceText(const ServePlan& plan) {
  const Config::Seal& s = plan.config.seal;
  if (s.type == "pkcs11") return "the PKCS#11 token '" + s.token_label + "' (key '" + s.key_label + "')";
  if (s.type == "passphrase") {
    return s.passphrase_file.empty() ? "the passphrase from $" + s.passphrase_env
                                     : "the passphrase from " + s.passphrase_file;
  }
  if (s.type == "shamir") return "Shamir shares";
  return "the key file " + plan.key_file;
}

}  // namespace kura::cli
