// RetentionJob: crypto-shredding by age. At a fixed interval it has the vault
// destroy the records past their collection's retention
// (Vault::ExpireRecords), in batches with a pause between them so foreground
// requests keep the database to themselves most of the time. Runs on the node
// holding the background lease only (cli/serve.cc starts and stops it with
// the checkpointer). While the vault is sealed a pass does nothing and the
// next one tries again. docs/operations/retention.md.
//
// Start after Stop starts it again (a node that regained its lease); Stop
// without a running thread does nothing. Stop interrupts a pass between two
// batches.
//
// Thread safety: Start and Stop from one thread at a time; owns one thread.
#ifndef KURA_OPS_RETENTION_H_
#define KURA_OPS_RETENTION_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

#include "vault/vault.h"

namespace kura::ops {

struct RetentionOptions {
  std::chrono::milliseconds interval{std::chrono::hours(1)};  // from one pass to the next
  int batch_size = 100;                                       // records (or sessions) per vault call
  std::chrono::milliseconds pause{50};                        // between two batches of a pass
};

class RetentionJob {
 public:
  // `vault` must outlive the job.
  RetentionJob(vault::Vault* vault, RetentionOptions options) : vault_(vault), options_(options) {}
  ~RetentionJob() { Stop(); }
  RetentionJob(const RetentionJob&) = delete;
  RetentionJob& operator=(const RetentionJob&) = delete;

  // The first pass runs one interval after Start.
  void Start();
  void Stop();

  // One pass now, on the calling thread: batches until none is due (or Stop).
  // Returns how many records were destroyed. Used by the thread, and by tests.
  std::int64_t RunPass();
  // Deletes ended sessions (Vault::PurgeEndedSessions) in batches until none
  // is due (or Stop); returns how many. The thread runs it after each pass.
  std::int64_t PurgeSessions();
  // Records destroyed by every job of this process since it started.
  static std::int64_t DestroyedInProcess();

 private:
  // Waits `d` unless stopping; false when stopping.
  bool Wait(std::chrono::milliseconds d);
  // Calls `call(batch_size)` until it does fewer than a batch, fails (quietly
  // when sealed) or the job stops, pausing between calls; the sum of what it
  // did, logged as `what`.
  std::int64_t InBatches(const std::function<Result<std::int64_t>(int)>& call, std::string_view what);

  vault::Vault* vault_;
  RetentionOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kura::ops

#endif  // KURA_OPS_RETENTION_H_
