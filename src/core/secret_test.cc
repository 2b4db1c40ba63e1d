#include "core/secret.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

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

TEST(WipeTest, WipedStringKeepsItsBufferWithZerosInIt) {
  WipedString s(64, 'k');  // beyond the small-string buffer: on the heap
  const char* buffer = s.data();
  const std::size_t capacity = s.capacity();
  Wipe(s);
  EXPECT_TRUE(s.empty());
  // clear() keeps the buffer; the bytes in it are gone.
  ASSERT_EQ(s.data(), buffer);
  ASSERT_EQ(s.capacity(), capacity);
  for (std::size_t i = 0; i < 64; ++i) ASSERT_EQ(buffer[i], 0) << i;
}

// Containers on the allocator behave as on std::allocator (what it wipes on
// release is shown end to end by tests/memory_test.cc).
TEST(WipeTest, WipingAllocatorServesGrowingContainers) {
  WipedString s;
  for (int i = 0; i < 1000; ++i) s.push_back(static_cast<char>('a' + i % 26));
  ASSERT_EQ(s.size(), 1000u);
  EXPECT_EQ(s[0], 'a');
  EXPECT_EQ(s[999], static_cast<char>('a' + 999 % 26));
  std::vector<int, WipingAllocator<int>> v(100, 7);
  v.resize(10000, 9);
  EXPECT_EQ(v[99], 7);
  EXPECT_EQ(v[9999], 9);
}

}  // namespace
}  // namespace kura
