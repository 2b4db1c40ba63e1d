// PKCS#11 seal (MakePkcs11Seal in seal.h) against a real SoftHSM2 token that
// the suite creates in a temporary directory (SOFTHSM2_CONF points there; the
// system's token directory is never touched). pkcs11-tool (OpenSC) inspects
// the key the seal created.
#include "crypto/seal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
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

constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kToken[] = "kura-unit";
constexpr char kPin[] = "4711";
constexpr char kSoPin[] = "271828";

// Runs a shell command; returns exit status and stdout+stderr.
std::pair<int, std::string> RunShell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class Pkcs11SealTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "kura-hsm-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    hsm_dir_ = new std::string(tmpl);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*hsm_dir_, ec);
    delete hsm_dir_;
    hsm_dir_ = nullptr;
  }

  // A fresh token per test: its own token directory and config.
  void SetUp() override {
    if (!fs::exists(kModule)) GTEST_SKIP() << "SoftHSM2 is not installed (scripts/install-deps)";
    dir_ = *hsm_dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_ + "/tokens");
    std::ofstream(dir_ + "/softhsm2.conf") << "directories.tokendir = " << dir_ << "/tokens\n"
                                           << "objectstore.backend = file\nlog.level = ERROR\n"
                                           << "slots.removable = false\n";
    ASSERT_EQ(::setenv("SOFTHSM2_CONF", (dir_ + "/softhsm2.conf").c_str(), 1), 0);
    auto [rc, out] = RunShell(std::string("softhsm2-util --init-token --free --label ") + kToken + " --pin " + kPin +
                         " --so-pin " + kSoPin);
    ASSERT_EQ(rc, 0) << out;
    std::ofstream(dir_ + "/pin") << kPin << "\n";
    ASSERT_EQ(::chmod((dir_ + "/pin").c_str(), 0600), 0);
  }
  void TearDown() override { ::unsetenv("KURA_TEST_HSM_PIN"); }

  Pkcs11SealOptions Options() const {
    Pkcs11SealOptions o;
    o.module = kModule;
    o.token_label = kToken;
    o.key_label = "kura-kek";
    o.pin_file = dir_ + "/pin";
    o.wrapped_kek_path = dir_ + "/kek.p11.json";
    return o;
  }

  std::string P11Tool(const std::string& args) const {
    return RunShell(std::string("pkcs11-tool --module ") + kModule + " --token-label " + kToken + " --login --pin " + kPin +
               " " + args)
        .second;
  }

  static std::string* hsm_dir_;
  std::string dir_;
};

std::string* Pkcs11SealTest::hsm_dir_ = nullptr;

TEST_F(Pkcs11SealTest, InitializeCreatesNonExtractableKeyAndAutoUnsealGetsTheKekBack) {
  auto seal = MakePkcs11Seal(Options());
  EXPECT_EQ(seal->Type(), "pkcs11");
  Result<SealInitResult> init = seal->Initialize({});
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  ASSERT_EQ(init->kek.size(), 32u);

  // Only the token-encrypted KEK is stored: mode 0600, no plaintext KEK.
  const std::string path = Options().wrapped_kek_path;
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  nlohmann::json doc = nlohmann::json::parse(ReadText(path));
  EXPECT_EQ(doc["format"], 1);
  EXPECT_EQ(doc["mechanism"], "CKM_AES_GCM");
  EXPECT_EQ(doc["aad"], "kura-kek-v1");
  EXPECT_EQ(doc["key_label"], "kura-kek");
  auto ct = Base64UrlDecode(doc["ciphertext"].get<std::string>());
  ASSERT_TRUE(ct.has_value());
  EXPECT_EQ(ct->size(), 48u);
  const std::string file = ReadText(path);
  EXPECT_THAT(file, Not(HasSubstr(Base64UrlEncode(init->kek.view()))));
  EXPECT_THAT(file, Not(HasSubstr(kPin)));

  // A new process (a new seal) unwraps it at start.
  auto kek = MakePkcs11Seal(Options())->AutoUnseal();
  ASSERT_TRUE(kek.ok()) << kek.status().ToString();
  ASSERT_TRUE(kek->has_value());
  EXPECT_TRUE((*kek)->Equals(init->kek.view()));
  // And again with the same seal (after `kura operator seal`).
  auto again = seal->AutoUnseal();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->Equals(init->kek.view()));

  // The token says the key can never leave it.
  const std::string objects = P11Tool("--list-objects --type secrkey");
  EXPECT_THAT(objects, HasSubstr("kura-kek"));
  EXPECT_THAT(objects, HasSubstr("never extractable"));
  EXPECT_THAT(objects, HasSubstr("sensitive"));
  // pkcs11-tool tries to read the value and the token refuses.
  EXPECT_THAT(objects, Not(HasSubstr("VALUE:")));

  // Never replaced.
  auto twice = MakePkcs11Seal(Options())->Initialize({});
  EXPECT_EQ(twice.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(Pkcs11SealTest, UsesAKeyThatAlreadyExistsOnTheToken) {
  // An HSM administrator may create the key beforehand (as the recipe does).
  const std::string made = P11Tool("--keygen --key-type AES:32 --label kura-kek --id 01 --sensitive --private");
  ASSERT_THAT(made, HasSubstr("Key generated")) << made;
  ::setenv("KURA_TEST_HSM_PIN", kPin, 1);
  Pkcs11SealOptions o = Options();
  o.pin_file.clear();
  o.pin_env = "KURA_TEST_HSM_PIN";
  auto init = MakePkcs11Seal(o)->Initialize({});
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  auto kek = MakePkcs11Seal(o)->AutoUnseal();
  ASSERT_TRUE(kek.ok()) << kek.status().ToString();
  EXPECT_TRUE((*kek)->Equals(init->kek.view()));
  // Still exactly one key with that label.
  const std::string objects = P11Tool("--list-objects --type secrkey");
  std::size_t count = 0;
  for (std::size_t at = objects.find("label:"); at != std::string::npos; at = objects.find("label:", at + 1)) ++count;
  EXPECT_EQ(count, 1u) << objects;
}

TEST_F(Pkcs11SealTest, WrongPinIsAClearErrorWithoutThePin) {
  ASSERT_TRUE(MakePkcs11Seal(Options())->Initialize({}).ok());
  Pkcs11SealOptions o = Options();
  o.pin_file = dir_ + "/wrong-pin";
  std::ofstream(o.pin_file) << "987654\n";
  ASSERT_EQ(::chmod(o.pin_file.c_str(), 0600), 0);
  auto kek = MakePkcs11Seal(o)->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(kek.status().message(), HasSubstr("wrong PIN for token 'kura-unit' (CKR_PIN_INCORRECT)"));
  EXPECT_THAT(kek.status().message(), Not(HasSubstr("987654")));
  EXPECT_THAT(kek.status().message(), Not(HasSubstr(kPin)));
}

TEST_F(Pkcs11SealTest, MissingKeyTokenAndModuleAreClearErrors) {
  ASSERT_TRUE(MakePkcs11Seal(Options())->Initialize({}).ok());

  Pkcs11SealOptions no_key = Options();
  no_key.key_label = "no-such-key";
  auto kek = MakePkcs11Seal(no_key)->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(kek.status().message(), HasSubstr("key label 'no-such-key' not found on token 'kura-unit'"));

  // The key deleted from the token (as after a token reset).
  P11Tool("--delete-object --type secrkey --label kura-kek");
  kek = MakePkcs11Seal(Options())->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(kek.status().message(), HasSubstr("key label 'kura-kek' not found"));

  Pkcs11SealOptions no_token = Options();
  no_token.token_label = "no-such-token";
  kek = MakePkcs11Seal(no_token)->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(kek.status().message(), HasSubstr("token label 'no-such-token' not found"));

  Pkcs11SealOptions no_module = Options();
  no_module.module = dir_ + "/missing.so";
  kek = MakePkcs11Seal(no_module)->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(kek.status().message(), HasSubstr("PKCS#11 module " + no_module.module + " cannot be loaded"));
}

TEST_F(Pkcs11SealTest, AnotherKeyWithTheLabelOrATamperedFileFailsToDecrypt) {
  auto init = MakePkcs11Seal(Options())->Initialize({});
  ASSERT_TRUE(init.ok()) << init.status().ToString();
  const std::string path = Options().wrapped_kek_path;
  nlohmann::json doc = nlohmann::json::parse(ReadText(path));
  Bytes ct = *Base64UrlDecode(doc["ciphertext"].get<std::string>());
  ct[0] ^= 1;
  doc["ciphertext"] = Base64UrlEncode(ct);
  fs::remove(path);
  std::ofstream(path) << doc.dump();
  auto kek = MakePkcs11Seal(Options())->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(kek.status().message(), HasSubstr("decrypt failed"));

  // Key replaced by a new one with the same label: GCM refuses too.
  ct[0] ^= 1;
  doc["ciphertext"] = Base64UrlEncode(ct);
  fs::remove(path);
  std::ofstream(path) << doc.dump();
  ASSERT_TRUE(MakePkcs11Seal(Options())->AutoUnseal().ok());
  P11Tool("--delete-object --type secrkey --label kura-kek");
  P11Tool("--keygen --key-type AES:32 --label kura-kek --sensitive --private");
  kek = MakePkcs11Seal(Options())->AutoUnseal();
  EXPECT_EQ(kek.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(kek.status().message(), HasSubstr("decrypt failed"));
}

TEST_F(Pkcs11SealTest, PinSourcesAreChecked) {
  Pkcs11SealOptions o = Options();
  ASSERT_EQ(::chmod(o.pin_file.c_str(), 0644), 0);
  auto init = MakePkcs11Seal(o)->Initialize({});
  EXPECT_EQ(init.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(init.status().message(), HasSubstr("PKCS#11 PIN file"));
  EXPECT_THAT(init.status().message(), HasSubstr("mode 0644"));
  EXPECT_FALSE(fs::exists(o.wrapped_kek_path));

  o.pin_file.clear();
  o.pin_env = "KURA_TEST_HSM_PIN";  // not set
  init = MakePkcs11Seal(o)->Initialize({});
  EXPECT_EQ(init.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(init.status().message(), HasSubstr("KURA_TEST_HSM_PIN is not set"));
}

}  // namespace
}  // namespace kura::crypto
