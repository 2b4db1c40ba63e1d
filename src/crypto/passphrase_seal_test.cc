// Passphrase seal (MakePassphraseSeal in seal.h) against real libsodium
// Argon2id and real files.
#include "crypto/seal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace kura::crypto {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class PassphraseSealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kura-pass-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    ::unsetenv("KURA_TEST_PASSPHRASE");
  }
  std::string File(const std::string& name) const { return (fs::path(dir_) / name).string(); }
  void WriteSecret(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path, std::ios::binary) << text;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }
  // Cheap Argon2id costs so the suite stays fast; production defaults are
  // libsodium's MODERATE.
  PassphraseSealOptions Options() const {
    PassphraseSealOptions o;
    o.params_path = File("passphrase-seal.json");
    o.opslimit = 1;
    o.memlimit = 64 * 1024;
    return o;
  }
  std::string dir_;
};

TEST_F(PassphraseSealTest, RightPassphraseGivesTheSameKekWrongOneAnother) {
  WriteSecret(File("pass"), "correct horse battery staple\n", 0600);
  PassphraseSealOptions o = Options();
  o.passphrase_file = File("pass");
  auto seal = MakePassphraseSeal(o);
  EXPECT_EQ(seal->Type(), "passphrase");
  Result<SealInitResult> init = seal->Initialize({});
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  ASSERT_EQ(init->kek.size(), 32u);
  EXPECT_TRUE(init->shares.empty());

  // AutoUnseal from the file (trailing newline dropped) derives the same KEK.
  auto again = MakePassphraseSeal(o)->AutoUnseal();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE(again->has_value());
  EXPECT_TRUE((*again)->Equals(init->kek.view()));

  // Operator input through Submit: right passphrase → same KEK at once.
  PassphraseSealOptions prompt = Options();  // no file, no variable
  auto typed = MakePassphraseSeal(prompt);
  auto none = typed->AutoUnseal();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value()) << "without a file or variable the operator must type it";
  auto right = typed->Submit("correct horse battery staple");
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_EQ(right->progress, 1);
  EXPECT_EQ(right->threshold, 1);
  ASSERT_TRUE(right->kek.has_value());
  EXPECT_TRUE(right->kek->Equals(init->kek.view()));

  // Wrong input (even empty) still goes through the KDF and yields some
  // 32-byte key, which the vault's KEK check refuses.
  for (std::string_view wrong : {"correct horse battery stapler", "", "Correct horse battery staple"}) {
    auto w = typed->Submit(wrong);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(w->kek.has_value());
    EXPECT_EQ(w->kek->size(), 32u);
    EXPECT_FALSE(w->kek->Equals(init->kek.view())) << wrong;
  }
}

TEST_F(PassphraseSealTest, ParamsFileHoldsSaltAndCostOnly) {
  ::setenv("KURA_TEST_PASSPHRASE", "pass phrase from env", 1);
  PassphraseSealOptions o = Options();
  o.passphrase_env = "KURA_TEST_PASSPHRASE";
  o.opslimit = 2;
  o.memlimit = 128 * 1024;
  auto init = MakePassphraseSeal(o)->Initialize({});
  ASSERT_TRUE(init.ok()) << init.status().ToString();

  struct stat st;
  ASSERT_EQ(::stat(o.params_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(o.params_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc["format"], 1);
  EXPECT_EQ(doc["kdf"], "argon2id13");
  EXPECT_EQ(doc["opslimit"], 2);
  EXPECT_EQ(doc["memlimit"], 128 * 1024);
  auto salt = Base64UrlDecode(doc["salt"].get<std::string>());
  ASSERT_TRUE(salt.has_value());
  EXPECT_EQ(salt->size(), 16u);
  EXPECT_EQ(doc.size(), 5u) << text;
  EXPECT_THAT(text, Not(HasSubstr("pass phrase")));

  // Later reads use the stored cost, not the options' defaults.
  PassphraseSealOptions later = Options();
  later.passphrase_env = "KURA_TEST_PASSPHRASE";
  later.opslimit = 3;
  auto kek = MakePassphraseSeal(later)->AutoUnseal();
  ASSERT_TRUE(kek.ok()) << kek.status().ToString();
  EXPECT_TRUE((*kek)->Equals(init->kek.view()));

  // Never overwritten: a second Initialize would orphan the vault.
  auto twice = MakePassphraseSeal(o)->Initialize({});
  EXPECT_EQ(twice.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(PassphraseSealTest, SameSecretNewSaltNewKek) {
  ::setenv("KURA_TEST_PASSPHRASE", "same", 1);
  PassphraseSealOptions a = Options(), b = Options();
  a.passphrase_env = b.passphrase_env = "KURA_TEST_PASSPHRASE";
  b.params_path = File("other.json");
  auto ka = MakePassphraseSeal(a)->Initialize({});
  auto kb = MakePassphraseSeal(b)->Initialize({});
  ASSERT_TRUE(ka.ok() && kb.ok());
  EXPECT_FALSE(ka->kek.Equals(kb->kek.view()));
}

TEST_F(PassphraseSealTest, RefusesAFileOthersCanRead) {
  WriteSecret(File("pass"), "secret passphrase", 0644);
  PassphraseSealOptions o = Options();
  o.passphrase_file = File("pass");
  auto init = MakePassphraseSeal(o)->Initialize({});
  EXPECT_EQ(init.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(init.status().message(), HasSubstr("accessible by group or others (mode 0644)"));
  EXPECT_THAT(init.status().message(), Not(HasSubstr("secret passphrase")));
  EXPECT_FALSE(fs::exists(o.params_path));

  ASSERT_EQ(::chmod(File("pass").c_str(), 0400), 0);  // stricter is fine
  ASSERT_TRUE(MakePassphraseSeal(o)->Initialize({}).ok());
  ASSERT_EQ(::chmod(File("pass").c_str(), 0640), 0);
  auto kek = MakePassphraseSeal(o)->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PassphraseSealTest, ClearErrorsWithoutASource) {
  PassphraseSealOptions o = Options();
  auto init = MakePassphraseSeal(o)->Initialize({});
  EXPECT_EQ(init.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(init.status().message(), HasSubstr("passphrase_file or passphrase_env"));

  o.passphrase_env = "KURA_TEST_PASSPHRASE";  // configured but not set
  auto missing = MakePassphraseSeal(o)->Initialize({});
  EXPECT_EQ(missing.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(missing.status().message(), HasSubstr("KURA_TEST_PASSPHRASE is not set"));

  // Submit before initialisation: no salt to derive with.
  auto submit = MakePassphraseSeal(Options())->Submit("anything");
  EXPECT_EQ(submit.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PassphraseSealTest, RefusesTamperedCost) {
  ::setenv("KURA_TEST_PASSPHRASE", "p", 1);
  PassphraseSealOptions o = Options();
  o.passphrase_env = "KURA_TEST_PASSPHRASE";
  ASSERT_TRUE(MakePassphraseSeal(o)->Initialize({}).ok());
  nlohmann::json doc;
  std::ifstream(o.params_path) >> doc;
  doc["memlimit"] = std::uint64_t{1} << 40;  // would allocate a terabyte
  fs::remove(o.params_path);
  std::ofstream(o.params_path) << doc.dump();
  auto kek = MakePassphraseSeal(o)->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(kek.status().message(), HasSubstr("memlimit"));
}

}  // namespace
}  // namespace kura::crypto
