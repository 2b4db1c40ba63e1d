// LeaseKeeper: runs a node's share of cluster-wide background work. It holds
// one named lease in the store (Store::HoldLease), renewing it every ttl/3,
// and tells its owner through `on_change(true)` when this node got the lease
// (start the jobs) and `on_change(false)` when it lost it (stop them).
//
// Safety: the keeper counts a lease as held only until the moment its last
// successful renewal was *sent* plus ttl, minus a margin, measured on this
// node's monotonic clock. The database judges expiry by its own clock from
// when it *received* the renewal, which is later, so the keeper always lets
// go before another node can take over — also when the database is
// unreachable and renewals fail. (A paused process — e.g. stopped by a
// debugger — could still overlap; the jobs it runs tolerate that: a
// checkpoint of a tree size that exists is simply not written twice.)
//
// Thread safety: Start/Stop from one thread; holding() and the accessors from
// any thread. on_change runs on the keeper's thread (and on the Stop caller's
// for the final `false`), never concurrently with itself.
#ifndef KURA_OPS_LEASE_KEEPER_H_
#define KURA_OPS_LEASE_KEEPER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "store/store.h"

namespace kura::ops {

class LeaseKeeper {
 public:
  // `store` must outlive the keeper. `ttl` at least 300 ms.
  LeaseKeeper(store::Store* store, std::string name, std::string node_id, std::chrono::milliseconds ttl,
              std::function<void(bool holding)> on_change);
  ~LeaseKeeper() { Stop(); }
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  void Start();
  // Stops renewing; if the lease was held, calls on_change(false) and then
  // releases it in the store, so another node may take over at once.
  void Stop();

  bool holding() const { return holding_.load(); }
  const std::string& name() const { return name_; }
  const std::string& node_id() const { return node_id_; }
  std::chrono::milliseconds ttl() const { return ttl_; }

  // A node id: "<site>/<hostname>/<8 hex digits of the data directory's
  // path>". Stable across restarts, so a node restarted after a crash takes
  // its own lease back at once instead of waiting out the ttl (on SQLite, the
  // only node); distinct for nodes with their own data directories (each
  // node has one: it holds its key file and TLS files). Two live processes
  // on one host sharing a data directory would share an id: not supported.
  static std::string DefaultNodeId(const std::string& site, const std::string& data_dir);
  // The lease ttl for a checkpoint interval: three intervals, between 3 s
  // and 30 s — long enough to ride out a slow database round trip, short
  // enough that background work resumes soon after its node dies.
  static std::chrono::milliseconds TtlFor(std::chrono::milliseconds checkpoint_interval);

 private:
  void Run();
  void Set(bool holding);

  store::Store* store_;
  const std::string name_;
  const std::string node_id_;
  const std::chrono::milliseconds ttl_;
  std::function<void(bool)> on_change_;
  std::atomic<bool> holding_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
};

}  // namespace kura::ops

#endif  // KURA_OPS_LEASE_KEEPER_H_
