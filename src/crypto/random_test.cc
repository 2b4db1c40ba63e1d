#include "crypto/random.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <set>

namespace kura::crypto {
namespace {

TEST(RandomTest, SizesAreExact) {
  EXPECT_TRUE(RandomBytes(0).empty());
  EXPECT_EQ(RandomBytes(1).size(), 1u);
  EXPECT_EQ(RandomBytes(1000).size(), 1000u);
  EXPECT_EQ(RandomSecret(32).size(), 32u);
  EXPECT_TRUE(RandomSecret(0).empty());
}

TEST(RandomTest, OutputsDiffer) {
  std::set<Bytes> seen;
  for (int i = 0; i < 100; ++i) seen.insert(RandomBytes(16));
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_FALSE(RandomSecret(32).Equals(RandomSecret(32).view()));
}

TEST(RandomTest, TokenIsBase64UrlOfNBytes) {
  std::string token = RandomToken(32);
  EXPECT_EQ(token.size(), 43u);  // 32 bytes, unpadded base64url
  std::optional<Bytes> raw = Base64UrlDecode(token);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_EQ(RandomToken(16).size(), 22u);
  EXPECT_NE(RandomToken(32), RandomToken(32));
}

TEST(RandomTest, PublicBytesAreNeverHandedOutTwice) {
  // 12-byte draws across many pool refills (4 KiB each), and a few sizes
  // that straddle a refill or bypass the pool: all distinct, none all-zero.
  std::set<Bytes> seen;
  const Bytes zero(12, 0);
  for (int i = 0; i < 3000; ++i) {
    Bytes b(12);
    PublicRandomBytes(b.data(), b.size());
    EXPECT_NE(b, zero);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 3000u);
  for (std::size_t n : {1u, 1000u, 1023u, 1024u, 5000u}) {
    Bytes a(n);
    Bytes b(n);
    PublicRandomBytes(a.data(), n);
    PublicRandomBytes(b.data(), n);
    EXPECT_NE(a, b) << n;
  }
}

TEST(RandomTest, AForkChildDrawsOtherBytesThanItsParent) {
  Bytes warm(16);
  PublicRandomBytes(warm.data(), warm.size());  // the pool now holds unused bytes
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Bytes child(32);
    PublicRandomBytes(child.data(), child.size());
    ssize_t w = ::write(fds[1], child.data(), child.size());
    ::_exit(w == 32 ? 0 : 1);
  }
  ::close(fds[1]);
  Bytes parent(32);
  PublicRandomBytes(parent.data(), parent.size());
  Bytes child(32);
  std::size_t got = 0;
  while (got < child.size()) {
    ssize_t r = ::read(fds[0], child.data() + got, child.size() - got);
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, 32u);
  EXPECT_NE(parent, child) << "parent and child handed out the same pooled bytes";
}

}  // namespace
}  // namespace kura::crypto
