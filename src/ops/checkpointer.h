// Checkpointer: signs an audit checkpoint at a fixed interval (and once more
// on Stop), through Vault::WriteCheckpoint. While the vault is sealed there is
// no signing key: the tick is skipped and the next one tries again.
//
// Start after Stop starts it again (a node that regained its background
// lease); Stop without a running thread does nothing.
//
// Thread safety: Start and Stop from one thread at a time; owns one thread.
#ifndef KURA_OPS_CHECKPOINTER_H_
#define KURA_OPS_CHECKPOINTER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "vault/vault.h"

namespace kura::ops {

class Checkpointer {
 public:
  // `vault` must outlive the checkpointer.
  Checkpointer(vault::Vault* vault, std::chrono::milliseconds interval) : vault_(vault), interval_(interval) {}
  ~Checkpointer() { Stop(); }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  void Start();
  // Stops the thread, then signs a last checkpoint covering every entry
  // (only if it was running).
  void Stop();
  // Ticks run by every checkpointer of this process (health shows it, so a
  // test can see which node of a cluster runs the job).
  static std::int64_t RunsInProcess();

 private:
  void Tick();
  vault::Vault* vault_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kura::ops

#endif  // KURA_OPS_CHECKPOINTER_H_
