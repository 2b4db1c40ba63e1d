#include "ops/reencryptor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "ops/fake_vault_for_test.h"

namespace kura::ops {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeVault;

TEST(ReencryptorTest, PausesInProportionToTheBatchAndAtLeastTheMinimum) {
  FakeVault vault;
  Reencryptor half(&vault, ReencryptorOptions{.batch_size = 500, .load_percent = 50});
  EXPECT_EQ(half.PauseAfter(milliseconds(8)), milliseconds(8));
  Reencryptor quarter(&vault, ReencryptorOptions{.batch_size = 500, .load_percent = 25});
  EXPECT_EQ(quarter.PauseAfter(milliseconds(8)), milliseconds(24));
  Reencryptor full(&vault, ReencryptorOptions{.batch_size = 500, .load_percent = 100});
  EXPECT_EQ(full.PauseAfter(milliseconds(8)), milliseconds(0));
  Reencryptor floor(&vault, ReencryptorOptions{.batch_size = 500, .load_percent = 100, .min_pause = milliseconds(150)});
  EXPECT_EQ(floor.PauseAfter(milliseconds(8)), milliseconds(150));
  // No client served since the last batch: only the minimum.
  EXPECT_EQ(half.PauseAfter(milliseconds(8), /*foreground=*/false), milliseconds(0));
  EXPECT_EQ(floor.PauseAfter(milliseconds(8), /*foreground=*/false), milliseconds(150));
}

// A vault whose rotation needs three batches, then is done.
class ThreeBatchVault : public FakeVault {
 public:
  Result<vault::ReencryptProgress> ReencryptStep(int batch_size) override {
    last_batch = batch_size;
    vault::ReencryptProgress p;
    const int n = ++steps;
    if (n > 4) return p;  // idle
    p.idle = false;
    p.tenant = "acme";
    p.rewritten = n <= 3 ? batch_size : 0;
    p.scanned = p.rewritten;
    p.finished = n == 4;
    return p;
  }
  std::atomic<int> steps{0};
  std::atomic<int> last_batch{0};
};

TEST(ReencryptorTest, RunsBatchesUntilIdleAndStopsPromptly) {
  ThreeBatchVault vault;
  const std::int64_t before = Reencryptor::RewrittenInProcess();
  // An idle interval far longer than Stop may take: Stop must wake the job.
  Reencryptor job(&vault, ReencryptorOptions{.batch_size = 7, .idle_interval = seconds(10)});
  job.Start();
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (vault.steps < 5 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_GE(vault.steps.load(), 5);  // three batches, the end, then the first idle poll
  // Time for the job to start its idle wait, so Stop has to interrupt it
  // (a Stop arriving before the wait passes either way).
  std::this_thread::sleep_for(milliseconds(100));
  const auto stop_start = std::chrono::steady_clock::now();
  job.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start, seconds(2));
  EXPECT_EQ(vault.last_batch.load(), 7);
  EXPECT_EQ(Reencryptor::RewrittenInProcess() - before, 21);
  job.Stop();  // twice is fine
}

}  // namespace
}  // namespace kura::ops
