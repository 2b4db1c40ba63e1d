// A one-shot completion flag that one thread sets and another waits on,
// shared by the stores' group-commit threads (the SQLite writer, the
// PostgreSQL appender) and their callers.
//
// A bare futex rather than a mutex + condition variable or
// std::binary_semaphore: the committing thread wakes a whole batch at once,
// and with a mutex every woken caller would first collide with it (two
// context switches per write instead of one), while libstdc++'s semaphore
// spins with sched_yield before sleeping. Each caller has its own flag, so a
// commit wakes exactly its own batch.
#ifndef KURA_STORE_WAKE_FLAG_INTERNAL_H_
#define KURA_STORE_WAKE_FLAG_INTERNAL_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace kura::store {

class WakeFlag {
 public:
  // Marks the flag set and wakes the waiter, if it sleeps. The waiter may
  // return and destroy the flag as soon as it sees it set: the wake only uses
  // the address (a stale wake is a spurious wake-up, which futex waiters
  // handle).
  void Set() {
    if (state_.exchange(kSet, std::memory_order_acq_rel) == kSleeping) {
      syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
  }
  // Returns once Set() was called (at once if it already was).
  void Wait() {
    std::uint32_t expected = kUnset;
    if (!state_.compare_exchange_strong(expected, kSleeping, std::memory_order_acq_rel)) return;  // set
    while (state_.load(std::memory_order_acquire) != kSet) {
      syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state_), FUTEX_WAIT_PRIVATE, kSleeping, nullptr, nullptr,
              0);
    }
  }

 private:
  static constexpr std::uint32_t kUnset = 0;
  static constexpr std::uint32_t kSleeping = 1;
  static constexpr std::uint32_t kSet = 2;
  std::atomic<std::uint32_t> state_{kUnset};
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
};

}  // namespace kura::store

#endif  // KURA_STORE_WAKE_FLAG_INTERNAL_H_
