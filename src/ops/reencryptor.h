// Reencryptor: the background half of a tenant's DEK rotation. It has the
// vault re-encrypt, batch after batch, the record versions still under an
// older data key (Vault::ReencryptStep), and finish the rotation (destroy the
// old keys) when none is left. docs/operations/key-rotation.md.
//
// Runs on the node holding the background lease only (cli/serve.cc starts
// and stops it with the checkpointer). The progress lives in the database
// (each batch commits its cursor with its rows), so a job stopped by a crash,
// a restart or a lost lease resumes where it stopped, on whichever node holds
// the lease next.
//
// Throttling: when clients were served since the previous batch
// (Vault::RequestsServed moved), the job pauses, after a batch that took t,
// max(t × (100 − load_percent) / load_percent, min_pause): at the default
// load_percent 50 it spends at most half of the time on re-encryption and
// leaves the database's writer and the CPU to foreground requests the rest.
// On an idle server it pauses only min_pause: nobody is waiting, and the old
// key should be gone as soon as it can be.
//
// Start after Stop starts it again; Stop without a running thread does
// nothing; Stop waits for the batch in flight (one store transaction).
//
// Thread safety: Start and Stop from one thread at a time; owns one thread.
#ifndef KURA_OPS_REENCRYPTOR_H_
#define KURA_OPS_REENCRYPTOR_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "vault/vault.h"

namespace kura::ops {

struct ReencryptorOptions {
  int batch_size = 2000;                       // record versions per batch (one transaction)
  int load_percent = 50;                       // 1-100: the share of time spent re-encrypting
  std::chrono::milliseconds min_pause{0};      // at least this long between two batches
  std::chrono::milliseconds idle_interval{1000};  // look for a new rotation this often
  std::chrono::milliseconds error_backoff{5000};  // after a failed step (store down, damaged record)
};

class Reencryptor {
 public:
  // `vault` must outlive the job.
  Reencryptor(vault::Vault* vault, ReencryptorOptions options) : vault_(vault), options_(options) {}
  ~Reencryptor() { Stop(); }
  Reencryptor(const Reencryptor&) = delete;
  Reencryptor& operator=(const Reencryptor&) = delete;

  void Start();
  void Stop();

  // The pause after a batch that took `batch_time`, with or without clients
  // served since the previous batch.
  std::chrono::milliseconds PauseAfter(std::chrono::nanoseconds batch_time, bool foreground = true) const;
  // Record versions re-encrypted by every job of this process since it started.
  static std::int64_t RewrittenInProcess();

 private:
  void Run();
  // Waits `d` unless stopping; false when stopping.
  bool Wait(std::chrono::nanoseconds d);

  vault::Vault* vault_;
  ReencryptorOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kura::ops

#endif  // KURA_OPS_REENCRYPTOR_H_
