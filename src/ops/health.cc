#include "ops/health.h"

#include <atomic>

#include <nlohmann/json.hpp>

#include "ops/checkpointer.h"
#include "ops/lease_keeper.h"
#include "vault/vault.h"

namespace kura::ops {
namespace {

std::atomic<const StorageMonitor*> g_storage{nullptr};
std::atomic<const LeaseKeeper*> g_lease{nullptr};

nlohmann::json StorageJson(const StorageSnapshot& s, const std::optional<NodeHealth>& node) {
  nlohmann::json out = {{"engine", s.engine}, {"reachable", s.reachable}, {"checked_at_ms", s.checked_at_ms}};
  if (!s.reachable && !s.error.empty()) out["error"] = s.error;
  if (s.last_ok_at_ms != 0) out["last_ok_at_ms"] = s.last_ok_at_ms;
  if (s.status) {
    const store::StorageStatus& st = *s.status;
    out["primary"] = st.primary;
    if (st.engine == "postgres") {
      nlohmann::json standbys = nlohmann::json::array();
      for (const auto& sb : st.standbys) {
        standbys.push_back({{"application_name", sb.application_name},
                            {"state", sb.state},
                            {"sync_state", sb.sync_state},
                            {"replay_lag_ms", sb.replay_lag_ms ? nlohmann::json(*sb.replay_lag_ms) : nullptr}});
      }
      out["replication"] = {{"synchronous_standby_names", st.synchronous_standby_names},
                            {"visible", st.replication_visible},
                            {"standbys", std::move(standbys)}};
    }
    nlohmann::json leases = nlohmann::json::array();
    for (const auto& l : st.leases) {
      leases.push_back({{"name", l.name}, {"holder", l.holder}, {"expires_in_ms", l.expires_in_ms}});
    }
    out["leases"] = std::move(leases);
  }
  if (node) {
    out["node"] = {{"id", node->id},
                   {"lease", node->lease},
                   {"holds_lease", node->holds_lease},
                   {"checkpoint_runs", node->checkpoint_runs}};
  }
  return out;
}

}  // namespace

void SetHealthSources(const StorageMonitor* storage, const LeaseKeeper* lease) {
  g_storage.store(storage);
  g_lease.store(lease);
}

nlohmann::json Health::ToJson() const {
  nlohmann::json out{{"live", live}, {"ready", ready}, {"sealed", sealed}, {"initialized", initialized}};
  if (storage) out["storage"] = StorageJson(*storage, node);
  return out;
}

Health CheckHealth(const vault::Vault& vault, bool draining) {
  const vault::SealStatus seal = vault.GetSealStatus();
  Health health;
  health.live = true;
  health.sealed = seal.sealed;
  health.initialized = seal.initialized;
  health.ready = seal.initialized && !seal.sealed && !draining;
  if (const StorageMonitor* monitor = g_storage.load(); monitor != nullptr) health.storage = monitor->Snapshot();
  if (const LeaseKeeper* keeper = g_lease.load(); keeper != nullptr) {
    health.node = NodeHealth{keeper->node_id(), keeper->name(), keeper->holding(), Checkpointer::RunsInProcess()};
  }
  return health;
}

}  // namespace kura::ops
