// Health of the server as load balancers, probes and tests see it
// (`GET /v1/sys/health`): live (the process answers), ready (initialised,
// unsealed and not draining), sealed, initialized — and, when the running
// server registered its sources (SetHealthSources, storage_monitor.h), a
// `storage` object: the engine, whether the database is reachable and the
// primary, the synchronous standbys the primary sees with their replay lag,
// the leases, and this node's id and whether it runs the background jobs.
//
// `storage` is information only: it never changes `ready` or the status
// code. A lost database shows up in the requests themselves (503), and a
// probe that failed on it would take every node out of a load balancer at
// once, including the ones that could answer reads from a cache later.
//
// Thread safety: plain values and const reads; safe from any thread.
#ifndef KURA_OPS_HEALTH_H_
#define KURA_OPS_HEALTH_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "ops/storage_monitor.h"

namespace kura::vault {
class Vault;
}

namespace kura::ops {

// This node's part in cluster-wide background work.
struct NodeHealth {
  std::string id;                     // LeaseKeeper::DefaultNodeId()
  std::string lease;                  // the lease that gates the jobs
  bool holds_lease = false;           // the jobs run here now
  std::int64_t checkpoint_runs = 0;   // checkpoint ticks this process ran
};

struct Health {
  bool live = true;
  bool ready = false;
  bool sealed = true;
  bool initialized = false;
  std::optional<StorageSnapshot> storage;  // when a monitor is registered
  std::optional<NodeHealth> node;          // when a lease keeper is registered

  // {"live":true,"ready":…,"sealed":…,"initialized":…[,"storage":{…}]}
  nlohmann::json ToJson() const;
  // 200 when ready, else 503 (with the same body), so a probe needs only the status.
  int HttpStatus() const { return ready ? 200 : 503; }
};

// Reads the seal state of `vault` and the registered sources. `draining`
// marks a server that stopped accepting work (SIGTERM): it is still live but
// no longer ready, so load balancers move traffic away while in-flight
// requests finish.
Health CheckHealth(const vault::Vault& vault, bool draining = false);

}  // namespace kura::ops

#endif  // KURA_OPS_HEALTH_H_
