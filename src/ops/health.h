// Health of the server as load balancers, probes and tests see it
// (`GET /v1/sys/health`): live (the process answers), ready (initialised,
// unsealed and not draining), sealed, initialized.
//
// Thread safety: plain values and a const read of the vault; safe from any thread.
#ifndef KURA_OPS_HEALTH_H_
#define KURA_OPS_HEALTH_H_

#include <nlohmann/json_fwd.hpp>

namespace kura::vault {
class Vault;
}

namespace kura::ops {

struct Health {
  bool live = true;
  bool ready = false;
  bool sealed = true;
  bool initialized = false;

  // {"live":true,"ready":…,"sealed":…,"initialized":…}
  nlohmann::json ToJson() const;
  // 200 when ready, else 503 (with the same body), so a probe needs only the status.
  int HttpStatus() const { return ready ? 200 : 503; }
};

// Reads the seal state of `vault`. `draining` marks a server that stopped
// accepting work (SIGTERM): it is still live but no longer ready, so load
// balancers move traffic away while in-flight requests finish.
Health CheckHealth(const vault::Vault& vault, bool draining = false);

}  // namespace kura::ops

#endif  // KURA_OPS_HEALTH_H_
