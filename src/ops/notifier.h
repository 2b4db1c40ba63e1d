// Notifier: delivers the lockbox's webhook notifications. The vault queues
// them (store::OutboxRow) in the transaction that creates an access request;
// every `interval` the notifier takes the due ones and POSTs each payload to
// its URL, with retry and exponential backoff, until the receiver answers 2xx
// or the attempts run out.
//
// Delivery is at least once: a receiver de-duplicates by the
// `webhook-id: <id>` header (also sent as `X-Kura-Delivery`; a node that
// loses its lease mid-delivery, or cannot record a success, may send a
// notification again).
//
// Each delivery is signed as Standard Webhooks (standardwebhooks.com)
// describes, so receivers can use its libraries: `webhook-timestamp` (unix
// seconds of the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of
// "<id>.<timestamp>.<body>">` under the tenant's webhook secret. The
// signature comes from NotifierOptions::signer (the vault holds the secrets).
//
// Like the Checkpointer it runs only on the node holding the background
// lease: the LeaseKeeper's on_change starts and stops it. Start after Stop
// starts it again; Stop without a running thread does nothing.
//
// Thread safety: Start and Stop from one thread at a time; owns one thread.
// RunOnce may be called from any thread (calls are serialised).
#ifndef KURA_OPS_NOTIFIER_H_
#define KURA_OPS_NOTIFIER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "store/store.h"

namespace kura::ops {

// The part of the store the notifier uses: the outbox.
//
// Thread safety: implementations are called from the notifier's thread (or
// RunOnce's caller), one call at a time.
class NotificationQueue {
 public:
  virtual ~NotificationQueue() = default;
  // Undelivered notifications with next_attempt_at <= now, oldest first, at
  // most `limit`.
  virtual Result<std::vector<store::OutboxRow>> Due(std::int64_t now, int limit) = 0;
  // Records an attempt (delivered_at, or attempts / next_attempt_at /
  // last_error).
  virtual Status Update(const store::OutboxRow& row) = 0;
};

// The queue kept by a store::Store (DueNotifications / UpdateNotification).
class StoreNotificationQueue : public NotificationQueue {
 public:
  // `store` must outlive the queue.
  explicit StoreNotificationQueue(store::Store* store) : store_(store) {}
  Result<std::vector<store::OutboxRow>> Due(std::int64_t now, int limit) override {
    return store_->DueNotifications(now, limit);
  }
  Status Update(const store::OutboxRow& row) override { return store_->UpdateNotification(row); }

 private:
  store::Store* store_;
};

struct NotifierOptions {
  std::chrono::milliseconds interval{1000};
  // PEM file of the CAs that may sign a receiver's certificate; empty: the
  // system's CAs.
  std::string ca_file;
  // Whole-request limit for one delivery.
  std::chrono::milliseconds timeout{5000};
  // At most this many notifications per pass.
  int batch = 50;
  // After this many failed attempts a notification is given up.
  int max_attempts = 10;
  // "now" for due times and backoff; must outlive the notifier.
  const Clock* clock = &Clock::Real();
  // The `webhook-signature` value for a row sent at `timestamp`: "" to send
  // it unsigned (its tenant has no secret); an error (sealed) ends the pass
  // and leaves its rows due, unchanged, for a later one. Empty function:
  // unsigned.
  std::function<Result<std::string>(const store::OutboxRow& row, std::int64_t timestamp)> signer;
};

class Notifier {
 public:
  // next_attempt_at of a notification given up: never due again (9999-12-31).
  static constexpr std::int64_t kNeverAgain = 253402300799;

  // `queue` must outlive the notifier.
  Notifier(NotificationQueue* queue, NotifierOptions options);
  // Convenience: the queue of `store`, which must outlive the notifier.
  Notifier(store::Store* store, NotifierOptions options);
  ~Notifier() { Stop(); }
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void Start();
  // Stops the thread; a delivery in flight is abandoned (its notification
  // stays due, unchanged, for the next lease holder).
  void Stop();

  // One pass: every due notification (up to the batch size) is attempted
  // once and its outcome recorded. Returns how many were delivered; the
  // queue's error if the due ones cannot be read.
  Result<int> RunOnce();

  // The seconds to wait after the `attempts`-th failed attempt: 2^attempts,
  // at most 10 minutes.
  static std::int64_t BackoffSeconds(int attempts);
  // Whether the notifier sends to `url`: https://, or http:// to a loopback
  // address (127.0.0.0/8, [::1], or "localhost", pinned to 127.0.0.1) —
  // plain HTTP never leaves the host.
  static bool IsAllowedUrl(std::string_view url);

 private:
  // Outcome of one POST.
  struct Attempt {
    bool delivered = false;
    bool aborted = false;  // the notifier is stopping
    std::string error;     // otherwise: "HTTP 500" or curl's error text
  };
  // Attempts `row` once and records the outcome; true when delivered.
  bool Deliver(store::OutboxRow row);
  // Marks the row (its attempts already counted) never due again.
  void GiveUp(store::OutboxRow* row, const std::string& why);
  // `curl_url` is a CURLU* (libcurl stays out of this header).
  // `signature`: the webhook-signature value, or "" for none.
  Attempt Post(void* curl_url, const store::OutboxRow& row, std::int64_t timestamp, const std::string& signature);

  std::unique_ptr<NotificationQueue> owned_queue_;
  NotificationQueue* queue_;
  NotifierOptions options_;
  std::mutex run_mu_;  // serialises RunOnce
  bool cannot_sign_ = false;  // this pass's signer failed (under run_mu_)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  // Read by a delivery in flight, so Stop need not wait out its timeout.
  std::atomic<bool> abort_{false};
  std::thread thread_;
};

}  // namespace kura::ops

#endif  // KURA_OPS_NOTIFIER_H_
