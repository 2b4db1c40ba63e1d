#include "crypto/seal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/test_dir_for_test.h"
#include "crypto/shamir.h"

namespace kura::crypto {
namespace {

Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const Bytes& data, mode_t mode) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST(KeyfileSealTest, InitializeCreates0600FileAndAutoUnsealReadsIt) {
  TestDir dir;
  const std::string path = dir.Sub("kek.key");
  std::unique_ptr<Seal> seal = MakeKeyfileSeal(path);
  EXPECT_EQ(seal->Type(), "keyfile");

  // Even with a permissive umask the file must come out 0600.
  const mode_t old_umask = ::umask(0);
  Result<SealInitResult> init = seal->Initialize({});
  ::umask(old_umask);
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  EXPECT_EQ(init->kek.size(), 32u);
  EXPECT_TRUE(init->shares.empty());
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_TRUE(init->kek.Equals(ReadBytes(path)));

  // A fresh seal object (a restart) reads the same KEK back, twice.
  for (int i = 0; i < 2; ++i) {
    Result<std::optional<SecretBytes>> kek = MakeKeyfileSeal(path)->AutoUnseal();
    ASSERT_TRUE(kek.ok()) << kek.status().ToString();
    ASSERT_TRUE(kek->has_value());
    EXPECT_TRUE((*kek)->Equals(init->kek.view()));
  }
}

TEST(KeyfileSealTest, RefusesToOverwrite) {
  TestDir dir;
  const std::string path = dir.Sub("kek.key");
  ASSERT_TRUE(MakeKeyfileSeal(path)->Initialize({}).ok());
  const Bytes before = ReadBytes(path);
  Result<SealInitResult> again = MakeKeyfileSeal(path)->Initialize({});
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadBytes(path), before);
}

TEST(KeyfileSealTest, RefusesGroupOrWorldAccessibleFile) {
  TestDir dir;
  const std::string path = dir.Sub("kek.key");
  ASSERT_TRUE(MakeKeyfileSeal(path)->Initialize({}).ok());
  for (mode_t mode : {0644, 0604, 0640, 0660, 0606}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    Result<std::optional<SecretBytes>> r = MakeKeyfileSeal(path)->AutoUnseal();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << std::oct << mode;
    EXPECT_NE(r.status().message().find("chmod 600"), std::string::npos) << r.status().message();
  }
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);  // owner read-only is fine
  EXPECT_TRUE(MakeKeyfileSeal(path)->AutoUnseal().ok());
}

TEST(KeyfileSealTest, MissingOrWrongSizeFile) {
  TestDir dir;
  Result<std::optional<SecretBytes>> missing = MakeKeyfileSeal(dir.Sub("none.key"))->AutoUnseal();
  EXPECT_EQ(missing.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);

  const std::string short_path = dir.Sub("short.key");
  WriteFile(short_path, Bytes(31, 7), 0600);
  EXPECT_EQ(MakeKeyfileSeal(short_path)->AutoUnseal().status().code(), StatusCode::kInvalidArgument);

  const std::string long_path = dir.Sub("long.key");
  WriteFile(long_path, Bytes(33, 7), 0600);
  Result<std::optional<SecretBytes>> too_long = MakeKeyfileSeal(long_path)->AutoUnseal();
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("expected 32"), std::string::npos);

  EXPECT_EQ(MakeKeyfileSeal(dir.Sub(""))->AutoUnseal().status().code(), StatusCode::kInvalidArgument);  // a dir
}

TEST(KeyfileSealTest, DoesNotFollowSymlinks) {
  TestDir dir;
  const std::string real = dir.Sub("real.key");
  const std::string link = dir.Sub("link.key");
  ASSERT_TRUE(MakeKeyfileSeal(real)->Initialize({}).ok());
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  EXPECT_FALSE(MakeKeyfileSeal(link)->AutoUnseal().ok());
  EXPECT_EQ(MakeKeyfileSeal(link)->Initialize({}).status().code(), StatusCode::kAlreadyExists);
}

TEST(KeyfileSealTest, SubmitIsRefused) {
  TestDir dir;
  Result<UnsealProgress> r = MakeKeyfileSeal(dir.Sub("kek.key"))->Submit("anything");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "key file seal takes no unseal input");
}

TEST(ShamirSealTest, InitializeValidatesAndProducesShares) {
  std::unique_ptr<Seal> seal = MakeShamirSeal();
  EXPECT_EQ(seal->Type(), "shamir");
  EXPECT_EQ(seal->Initialize({.shares = 3, .threshold = 4}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(seal->Initialize({.shares = 3, .threshold = 1}).status().code(), StatusCode::kInvalidArgument);
  Result<SealInitResult> init = seal->Initialize({.shares = 5, .threshold = 3});
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  EXPECT_EQ(init->kek.size(), 32u);
  EXPECT_EQ(init->shares.size(), 5u);

  Result<std::optional<SecretBytes>> automatic = seal->AutoUnseal();
  ASSERT_TRUE(automatic.ok());
  EXPECT_FALSE(automatic->has_value());
}

TEST(ShamirSealTest, SubmitReportsProgressAndRecombines) {
  std::unique_ptr<Seal> seal = MakeShamirSeal();
  Result<SealInitResult> init = seal->Initialize({.shares = 5, .threshold = 3});
  ASSERT_TRUE(init.ok());
  const std::vector<std::string>& shares = init->shares;

  Result<UnsealProgress> p = seal->Submit(shares[4]);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->progress, 1);
  EXPECT_EQ(p->threshold, 3);
  EXPECT_FALSE(p->kek.has_value());

  // The same share again: refused, progress kept.
  EXPECT_EQ(seal->Submit(shares[4]).status().code(), StatusCode::kInvalidArgument);
  // A malformed share: refused, progress kept.
  EXPECT_EQ(seal->Submit("garbage!").status().code(), StatusCode::kInvalidArgument);

  p = seal->Submit(shares[1]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->progress, 2);
  EXPECT_FALSE(p->kek.has_value());

  p = seal->Submit(shares[2]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->progress, 3);
  EXPECT_EQ(p->threshold, 3);
  ASSERT_TRUE(p->kek.has_value());
  EXPECT_TRUE(p->kek->Equals(init->kek.view()));

  // Reaching the threshold resets: the next share starts a new round.
  p = seal->Submit(shares[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->progress, 1);
}

TEST(ShamirSealTest, ResetForgetsPartialInput) {
  std::unique_ptr<Seal> seal = MakeShamirSeal();
  Result<SealInitResult> init = seal->Initialize({.shares = 3, .threshold = 2});
  ASSERT_TRUE(init.ok());
  ASSERT_TRUE(seal->Submit(init->shares[0]).ok());
  seal->Reset();
  Result<UnsealProgress> p = seal->Submit(init->shares[0]);  // not a duplicate any more
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->progress, 1);
}

TEST(ShamirSealTest, SharesOfDifferentThresholdsAreRefusedAndReset) {
  std::unique_ptr<Seal> seal = MakeShamirSeal();
  Result<SealInitResult> three = MakeShamirSeal()->Initialize({.shares = 5, .threshold = 3});
  Result<SealInitResult> two = MakeShamirSeal()->Initialize({.shares = 2, .threshold = 2});
  ASSERT_TRUE(three.ok() && two.ok());

  ASSERT_TRUE(seal->Submit(three->shares[0]).ok());
  ASSERT_TRUE(seal->Submit(three->shares[1]).ok());
  Result<UnsealProgress> mixed = seal->Submit(two->shares[0]);
  EXPECT_EQ(mixed.status().code(), StatusCode::kInvalidArgument);
  // Progress was reset: share 0 of the first set is accepted again as the first.
  Result<UnsealProgress> p = seal->Submit(three->shares[0]);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->progress, 1);
}

TEST(ShamirSealTest, SharesOfAnotherSplitGiveAWrongCandidate) {
  // Same threshold, different split: the seal cannot tell; it returns a
  // candidate the vault's KEK check rejects.
  std::unique_ptr<Seal> seal = MakeShamirSeal();
  Result<SealInitResult> a = MakeShamirSeal()->Initialize({.shares = 3, .threshold = 2});
  Result<SealInitResult> b = MakeShamirSeal()->Initialize({.shares = 3, .threshold = 2});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(seal->Submit(a->shares[0]).ok());
  Result<UnsealProgress> p = seal->Submit(b->shares[1]);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->kek.has_value());
  EXPECT_FALSE(p->kek->Equals(a->kek.view()));
  EXPECT_FALSE(p->kek->Equals(b->kek.view()));
}

}  // namespace
}  // namespace kura::crypto
