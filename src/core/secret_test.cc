#include "core/secret.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kura {
namespace {

TEST(SecretBytesTest, WipeEmptiesAndMoveLeavesNothingBehind) {
  SecretBytes a = SecretBytes::FromBytes(AsBytes("0123456789abcdef"));
  ASSERT_EQ(a.size(), 16u);
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_TRUE(b.Equals(AsBytes("0123456789abcdef")));
  b.Wipe();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data(), nullptr);
  SecretBytes t = SecretBytes::Transient(8);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_TRUE(t.Equals(Bytes(8, 0)));
}

// In a child, so this test process keeps its own settings.
TEST(DisableCoreDumpsTest, SetsCoreLimitZeroAndNotDumpable) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) ::_exit(2);  // the control: dumpable before
    if (!DisableCoreDumps()) ::_exit(3);
    struct rlimit core;
    if (::getrlimit(RLIMIT_CORE, &core) != 0 || core.rlim_cur != 0 || core.rlim_max != 0) ::_exit(4);
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) ::_exit(5);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: not dumpable before; 3: failed; 4: core limit; 5: still dumpable";
}

}  // namespace
}  // namespace kura
