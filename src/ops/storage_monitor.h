// StorageMonitor: keeps a recent copy of Store::GetStorageStatus() (engine,
// primary or standby, synchronous standbys and their lag, leases) for
// `GET /v1/sys/health` and `kura status`. A thread polls the store every
// `interval`; health only reads the cached copy, so a probe never waits on
// the database (and a dead database shows as `reachable: false` with the
// time of the last good answer instead of a hanging probe).
//
// The running server registers its monitor (and its lease keeper) with
// SetHealthSources(); CheckHealth() adds them to the health body.
//
// Thread safety: Start/Stop from one thread; Snapshot() from any thread.
#ifndef KURA_OPS_STORAGE_MONITOR_H_
#define KURA_OPS_STORAGE_MONITOR_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "store/store.h"

namespace kura::ops {

class LeaseKeeper;

struct StorageSnapshot {
  std::string engine;                   // from configuration, known before the first poll
  bool reachable = false;               // the last poll succeeded
  std::string error;                    // why the last poll failed ("" if it did not)
  std::int64_t checked_at_ms = 0;       // unix ms of the last poll (0: none yet)
  std::int64_t last_ok_at_ms = 0;       // unix ms of the last successful poll
  std::optional<store::StorageStatus> status;  // of the last successful poll
};

class StorageMonitor {
 public:
  // `store` must outlive the monitor.
  StorageMonitor(store::Store* store, std::string engine, std::chrono::milliseconds interval)
      : store_(store), interval_(interval) {
    snapshot_.engine = std::move(engine);
  }
  ~StorageMonitor() { Stop(); }
  StorageMonitor(const StorageMonitor&) = delete;
  StorageMonitor& operator=(const StorageMonitor&) = delete;

  // Polls once (so health has data from the start), then every interval.
  void Start();
  void Stop();
  // Polls now, on the calling thread (tests, and Start).
  void PollOnce();
  StorageSnapshot Snapshot() const;

 private:
  store::Store* store_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  StorageSnapshot snapshot_;
  bool stopping_ = false;
  std::thread thread_;
};

// What CheckHealth reports beyond the seal state. Pointers may be null;
// the objects must outlive the registration (clear it before destroying them).
void SetHealthSources(const StorageMonitor* storage, const LeaseKeeper* lease);

}  // namespace kura::ops

#endif  // KURA_OPS_STORAGE_MONITOR_H_
