#include "ops/health.h"

#include <nlohmann/json.hpp>

#include "vault/vault.h"

namespace kura::ops {

nlohmann::json Health::ToJson() const {
  return nlohmann::json{{"live", live}, {"ready", ready}, {"sealed", sealed}, {"initialized", initialized}};
}

Health CheckHealth(const vault::Vault& vault, bool draining) {
  const vault::SealStatus seal = vault.GetSealStatus();
  Health health;
  health.live = true;
  health.sealed = seal.sealed;
  health.initialized = seal.initialized;
  health.ready = seal.initialized && !seal.sealed && !draining;
  return health;
}

}  // namespace kura::ops
