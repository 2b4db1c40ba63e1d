#include "auth/password.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "auth/common_passwords.h"

namespace kura::auth {
namespace {

// Argon2id at its minimum cost: the tests check behaviour, not strength, and
// must stay fast under the sanitizers.
Argon2Params Cheap() {
  Argon2Params p;
  p.iterations = 1;
  p.memory_bytes = 8 * 1024;
  return p;
}

std::string MustHash(std::string_view password, const Argon2Params& params = Cheap()) {
  auto hash = HashPassword(password, params);
  EXPECT_TRUE(hash.ok()) << hash.status().ToString();
  return hash.ok() ? *hash : std::string();
}

// A password no rule objects to.
constexpr std::string_view kStrong = "zq8#Lm2vR!pW9tKd";

TEST(PasswordHashTest, HashIsEncodedArgon2idWithItsParameters) {
  std::string hash = MustHash("correct battery horse staple");
  EXPECT_TRUE(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$")) << hash;
  Argon2Params other;
  other.iterations = 2;
  other.memory_bytes = 64 * 1024;
  EXPECT_TRUE(MustHash("x", other).starts_with("$argon2id$v=19$m=64,t=2,p=1$"));
}

TEST(PasswordHashTest, VerifiesTheRightPasswordOnly) {
  std::string hash = MustHash("correct battery horse staple");
  EXPECT_TRUE(VerifyPassword(hash, "correct battery horse staple"));
  EXPECT_FALSE(VerifyPassword(hash, "correct battery horse stapl"));
  EXPECT_FALSE(VerifyPassword(hash, "Correct battery horse staple"));
  EXPECT_FALSE(VerifyPassword(hash, ""));
  EXPECT_FALSE(VerifyPassword(hash, "correct battery horse staple "));
}

TEST(PasswordHashTest, SaltIsFreshForEveryHash) {
  std::string a = MustHash("same password");
  std::string b = MustHash("same password");
  EXPECT_NE(a, b);
  EXPECT_TRUE(VerifyPassword(a, "same password"));
  EXPECT_TRUE(VerifyPassword(b, "same password"));
}

TEST(PasswordHashTest, BinaryAndEmptyPasswordsHashByLength) {
  std::string with_nul("ab\0cd", 5);
  std::string hash = MustHash(with_nul);
  EXPECT_TRUE(VerifyPassword(hash, with_nul));
  EXPECT_FALSE(VerifyPassword(hash, "ab"));
  std::string empty = MustHash("");
  EXPECT_TRUE(VerifyPassword(empty, ""));
  EXPECT_FALSE(VerifyPassword(empty, "a"));
}

TEST(PasswordHashTest, MalformedHashesNeverVerify) {
  std::string hash = MustHash("pw");
  std::string argon2i = "$argon2i$" + hash.substr(std::string_view("$argon2id$").size());
  std::string truncated = hash.substr(0, hash.size() - 5);
  std::string with_nul = hash + std::string(1, '\0') + "x";
  for (const std::string& bad : {std::string(), std::string("garbage"), std::string("$argon2id$"), argon2i, truncated,
                                 with_nul, std::string(300, 'a')}) {
    EXPECT_FALSE(VerifyPassword(bad, "pw")) << bad;
  }
}

TEST(PasswordHashTest, RefusesParametersOutOfRange) {
  Argon2Params p = Cheap();
  p.iterations = 0;
  EXPECT_EQ(HashPassword("pw", p).status().code(), StatusCode::kInvalidArgument);
  p = Cheap();
  p.memory_bytes = 4 * 1024;
  EXPECT_EQ(HashPassword("pw", p).status().code(), StatusCode::kInvalidArgument);
}

TEST(PasswordHashTest, NeedsRehashWhenParametersDiffer) {
  std::string hash = MustHash("pw");
  EXPECT_FALSE(NeedsRehash(hash, Cheap()));
  Argon2Params more_passes = Cheap();
  more_passes.iterations = 2;
  EXPECT_TRUE(NeedsRehash(hash, more_passes));
  Argon2Params more_memory = Cheap();
  more_memory.memory_bytes = 1024 * 1024;
  EXPECT_TRUE(NeedsRehash(hash, more_memory));
  // Lower parameters than recorded also count: the hash follows the policy.
  std::string strong = MustHash("pw", more_memory);
  EXPECT_FALSE(NeedsRehash(strong, more_memory));
  EXPECT_TRUE(NeedsRehash(strong, Cheap()));
}

TEST(PasswordHashTest, NeedsRehashForGarbage) {
  std::string hash = MustHash("pw");
  EXPECT_TRUE(NeedsRehash("", Cheap()));
  EXPECT_TRUE(NeedsRehash("garbage", Cheap()));
  EXPECT_TRUE(NeedsRehash("$argon2i$" + hash.substr(10), Cheap()));
  EXPECT_TRUE(NeedsRehash("$argon2id$v=19$m=8,t=1", Cheap()));
}

TEST(PasswordHashTest, UpgradeAtSignIn) {
  // The flow the vault follows: verify with the stored parameters, notice
  // they are old, rehash with the new ones.
  Argon2Params now = Cheap();
  now.memory_bytes = 64 * 1024;
  std::string stored = MustHash("my long passphrase");
  ASSERT_TRUE(VerifyPassword(stored, "my long passphrase"));
  ASSERT_TRUE(NeedsRehash(stored, now));
  std::string upgraded = MustHash("my long passphrase", now);
  EXPECT_TRUE(VerifyPassword(upgraded, "my long passphrase"));
  EXPECT_FALSE(NeedsRehash(upgraded, now));
}

// --- strength -----------------------------------------------------------

struct StrengthCase {
  std::string password;
  std::string username;
  std::string expected_message;  // prefix; "" = accepted
};

TEST(PasswordStrengthTest, Matrix) {
  const PasswordPolicy policy;  // min 12
  const std::vector<StrengthCase> cases = {
      {"Sh0rt!pw", "alice", "password is too short: at least 12 characters"},
      {"", "alice", "password is too short: at least 12 characters"},
      {"11charsLONG", "alice", "password is too short"},
      {"password1234", "alice", "password is too common"},
      {"PassWord1234", "alice", "password is too common"},
      {"QWERTYUIOP123", "alice", "password is too common"},
      {"123456789012", "alice", "password is too common"},
      {"iloveyou1234", "alice", "password is too common"},
      {"1q2w3e4r5t6y", "alice", "password is too common"},
      {"correcthorsebatterystaple", "alice", "password is too common"},
      {"xX-Alice-Wonderland-24", "alice", "password contains the username"},
      {"zq8#ALICE2vR!pW9tKd", "Alice", "password contains the username"},
      {"aaaaaaaaaaaaaaaa", "alice", "password is too weak: "},
      {"abcdefghijklmnop", "alice", "password is too weak: "},
      {"Conversations1", "alice", "password is too weak: "},
      {std::string(kStrong), "alice", ""},
      // Usernames under three characters are not searched for.
      {"al-zq8#Lm2vR!pW9", "al", ""},
      {std::string(kStrong), "", ""},
  };
  for (const auto& c : cases) {
    Status s = CheckPasswordStrength(c.password, c.username, policy);
    if (c.expected_message.empty()) {
      EXPECT_TRUE(s.ok()) << c.password << ": " << s.ToString();
      continue;
    }
    ASSERT_FALSE(s.ok()) << c.password;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.password;
    EXPECT_TRUE(s.message().starts_with(c.expected_message)) << c.password << ": " << s.message();
    if (!c.password.empty()) {
      EXPECT_EQ(s.message().find(c.password), std::string::npos) << "password echoed: " << s.message();
    }
  }
}

TEST(PasswordStrengthTest, CracklibReasonIsNamed) {
  Status dictionary = CheckPasswordStrength("Conversations1", "alice", PasswordPolicy{});
  EXPECT_EQ(dictionary.message(), "password is too weak: it is based on a dictionary word");
  Status repeated = CheckPasswordStrength("aaaaaaaaaaaaaaaa", "alice", PasswordPolicy{});
  EXPECT_EQ(repeated.message(), "password is too weak: it does not contain enough DIFFERENT characters");
}

TEST(PasswordStrengthTest, RulesApplyInOrder) {
  // Short and common: length is reported first; common and containing the
  // username: the list comes first.
  EXPECT_TRUE(
      CheckPasswordStrength("password", "alice", PasswordPolicy{}).message().starts_with("password is too short"));
  EXPECT_EQ(CheckPasswordStrength("administrator1", "admin", PasswordPolicy{}).message(), "password is too common");
}

TEST(PasswordStrengthTest, LengthCountsCodePointsNotBytes) {
  const PasswordPolicy policy;
  // 13 kanji: 39 bytes, 13 characters; the first 11 are 33 bytes but too short.
  std::string thirteen_kanji = "蔵書庫鍵盤暗号認証署名監査";
  ASSERT_EQ(thirteen_kanji.size(), 13u * 3);
  std::string short_one = thirteen_kanji.substr(0, 11 * 3);
  Status s = CheckPasswordStrength(short_one, "alice", policy);
  EXPECT_TRUE(s.message().starts_with("password is too short")) << s.ToString();
  // 13 kanji pass the length rule (whatever cracklib then thinks).
  Status long_enough = CheckPasswordStrength(thirteen_kanji, "alice", policy);
  EXPECT_FALSE(long_enough.message().starts_with("password is too short")) << long_enough.ToString();
  // 12 characters mixing ASCII and accented letters: 12 code points, 16 bytes.
  std::string mixed = "Ünïcödé-Zq8#";
  ASSERT_EQ(mixed.size(), 16u);
  Status m = CheckPasswordStrength(mixed, "alice", policy);
  EXPECT_FALSE(m.message().starts_with("password is too short")) << m.ToString();
  PasswordPolicy thirteen;
  thirteen.min_length = 13;
  EXPECT_TRUE(CheckPasswordStrength(mixed, "alice", thirteen).message().starts_with("password is too short"));
}

TEST(PasswordStrengthTest, InvalidUtf8IsRefused) {
  const PasswordPolicy policy;
  for (const std::string& bad : {
           std::string("\xff") + "zq8#Lm2vR!pW9tKd",              // never valid
           std::string("zq8#Lm2vR!pW9tKd") + "\xc3",              // truncated sequence
           std::string("zq8#Lm2vR!pW9tKd") + "\xc0\xaf",          // overlong '/'
           std::string("zq8#Lm2vR!pW9tKd") + "\xed\xa0\x80",      // UTF-16 surrogate
           std::string("zq8#Lm2vR!pW9tKd") + "\xf4\x90\x80\x80",  // above U+10FFFF
           std::string("zq8#Lm2vR!pW9tKd") + "\x80",              // stray continuation
       }) {
    Status s = CheckPasswordStrength(bad, "alice", policy);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), "password is not valid UTF-8");
  }
  Status nul = CheckPasswordStrength(std::string("zq8#Lm2v\0R!pW9tKd", 17), "alice", policy);
  EXPECT_EQ(nul.message(), "password contains a NUL character");
}

TEST(PasswordStrengthTest, AbsurdlyLongPasswordsAreRefused) {
  std::string huge;
  while (huge.size() < 2000) huge += kStrong;
  Status s = CheckPasswordStrength(huge, "alice", PasswordPolicy{});
  EXPECT_TRUE(s.message().starts_with("password is too long")) << s.ToString();
}

TEST(PasswordStrengthTest, MinimumLengthFollowsThePolicy) {
  PasswordPolicy policy;
  policy.min_length = 20;
  EXPECT_EQ(CheckPasswordStrength(kStrong, "alice", policy).message(), "password is too short: at least 20 characters");
  policy.min_length = 16;
  EXPECT_TRUE(CheckPasswordStrength(kStrong, "alice", policy).ok());
}

TEST(PasswordStrengthTest, CommonListIsSubstantialAndCaseInsensitive) {
  EXPECT_GE(CommonPasswordCountForTest(), 300u);
  for (const char* pw : {"123456", "password", "qwerty", "iloveyou", "letmein", "welcome", "admin", "passw0rd",
                         "password123", "qwertyuiop", "1q2w3e4r5t", "password1234", "qwertyuiop123", "123456789012",
                         "iloveyou1234", "PASSWORD", "LetMeIn"}) {
    EXPECT_TRUE(IsCommonPassword(pw)) << pw;
  }
  for (const char* pw : {"", "zq8#Lm2vR!pW9tKd", "password12345678901234567890", "passwor", "qwerty "}) {
    EXPECT_FALSE(IsCommonPassword(pw)) << pw;
  }
}

TEST(PasswordStrengthTest, ConcurrentChecksAgree) {
  // libcrack2 is serialised internally; many threads at once must all get
  // the same, correct answers.
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&wrong] {
      for (int i = 0; i < 25; ++i) {
        if (!CheckPasswordStrength(kStrong, "alice", PasswordPolicy{}).ok()) ++wrong;
        if (CheckPasswordStrength("Conversations1", "alice", PasswordPolicy{}).ok()) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// --- expiry -------------------------------------------------------------

TEST(PasswordExpiryTest, ExpiresAfterMaxAge) {
  PasswordPolicy policy;  // 90 days
  const std::int64_t changed = 1'700'000'000;
  const std::int64_t day = 86400;
  EXPECT_FALSE(PasswordExpired(changed, changed, policy));
  EXPECT_FALSE(PasswordExpired(changed, changed + 89 * day, policy));
  EXPECT_FALSE(PasswordExpired(changed, changed + 90 * day - 1, policy));
  EXPECT_TRUE(PasswordExpired(changed, changed + 90 * day, policy));
  EXPECT_TRUE(PasswordExpired(changed, changed + 400 * day, policy));
}

TEST(PasswordExpiryTest, MaxAgeZeroNeverExpires) {
  PasswordPolicy policy;
  policy.max_age_days = 0;
  EXPECT_FALSE(PasswordExpired(0, 10LL * 365 * 86400, policy));
}

// --- history ------------------------------------------------------------

class PasswordHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_.history = 3;  // current + 2 previous refused
    current_ = MustHash("current-pass-0");
    previous_ = {MustHash("previous-pass-1"), MustHash("previous-pass-2"), MustHash("previous-pass-3")};
  }
  PasswordPolicy policy_;
  std::string current_;
  std::vector<std::string> previous_;  // newest first
};

TEST_F(PasswordHistoryTest, CurrentAndRecentPasswordsAreRefused) {
  EXPECT_TRUE(PasswordReused("current-pass-0", current_, previous_, policy_));
  EXPECT_TRUE(PasswordReused("previous-pass-1", current_, previous_, policy_));
  EXPECT_TRUE(PasswordReused("previous-pass-2", current_, previous_, policy_));
}

TEST_F(PasswordHistoryTest, PasswordsOlderThanTheHistoryAreAccepted) {
  EXPECT_FALSE(PasswordReused("previous-pass-3", current_, previous_, policy_));
  EXPECT_FALSE(PasswordReused("brand-new-pass", current_, previous_, policy_));
}

TEST_F(PasswordHistoryTest, HistoryZeroRefusesNothing) {
  policy_.history = 0;
  EXPECT_FALSE(PasswordReused("current-pass-0", current_, previous_, policy_));
  EXPECT_FALSE(PasswordReused("previous-pass-1", current_, previous_, policy_));
}

TEST_F(PasswordHistoryTest, HistoryOneRefusesOnlyTheCurrent) {
  policy_.history = 1;
  EXPECT_TRUE(PasswordReused("current-pass-0", current_, previous_, policy_));
  EXPECT_FALSE(PasswordReused("previous-pass-1", current_, previous_, policy_));
}

TEST_F(PasswordHistoryTest, MalformedEntriesAreSkipped) {
  std::vector<std::string> previous = {"garbage", previous_[0]};
  EXPECT_TRUE(PasswordReused("previous-pass-1", current_, previous, policy_));
  EXPECT_FALSE(PasswordReused("garbage", "", {}, policy_));
}

TEST_F(PasswordHistoryTest, ChangeThenReuseIsRefusedThroughTheStoredHistory) {
  // A change: the new hash becomes current, the old one goes to the history.
  std::vector<std::string> next = NextPasswordHistory(current_, previous_, policy_);
  std::string new_current = MustHash("fresh-pass-4");
  EXPECT_TRUE(PasswordReused("current-pass-0", new_current, next, policy_));
  EXPECT_TRUE(PasswordReused("previous-pass-1", new_current, next, policy_));
  EXPECT_FALSE(PasswordReused("previous-pass-2", new_current, next, policy_));
}

TEST(NextPasswordHistoryTest, PrependsAndTrims) {
  PasswordPolicy policy;  // history 5 → 4 previous kept
  EXPECT_EQ(NextPasswordHistory("c", {"p1", "p2", "p3", "p4"}, policy),
            (std::vector<std::string>{"c", "p1", "p2", "p3"}));
  EXPECT_EQ(NextPasswordHistory("c", {"p1"}, policy), (std::vector<std::string>{"c", "p1"}));
  EXPECT_EQ(NextPasswordHistory("c", {}, policy), (std::vector<std::string>{"c"}));
  policy.history = 3;
  EXPECT_EQ(NextPasswordHistory("c", {"p1", "p2", "p3", "p4", "p5"}, policy), (std::vector<std::string>{"c", "p1"}));
  policy.history = 1;
  EXPECT_TRUE(NextPasswordHistory("c", {"p1"}, policy).empty());
  policy.history = 0;
  EXPECT_TRUE(NextPasswordHistory("c", {"p1"}, policy).empty());
  policy.history = 5;
  // No current password yet (first set): nothing to remember.
  EXPECT_EQ(NextPasswordHistory("", {"p1"}, policy), (std::vector<std::string>{"p1"}));
}

// --- lockout ------------------------------------------------------------

constexpr std::int64_t kT0 = 1'700'000'000;

TEST(LockoutTest, FiveFailuresInTheWindowLock) {
  PasswordPolicy policy;  // 5 in 15 min → 15 min
  LoginFailures f;
  for (int i = 0; i < 4; ++i) {
    f = RecordLoginFailure(f, kT0 + i * 60, policy);
    EXPECT_FALSE(IsLockedOut(f, kT0 + i * 60)) << i;
  }
  EXPECT_EQ(f.count, 4);
  EXPECT_EQ(f.window_start, kT0);
  f = RecordLoginFailure(f, kT0 + 600, policy);
  EXPECT_EQ(f.count, 5);
  EXPECT_TRUE(IsLockedOut(f, kT0 + 600));
  EXPECT_EQ(f.locked_until, kT0 + 600 + 900);
}

TEST(LockoutTest, FailuresSpreadBeyondTheWindowDoNotLock) {
  PasswordPolicy policy;
  LoginFailures f;
  // One failure every 4 minutes, for an hour: never 5 within 15 minutes of
  // a window's start.
  for (int i = 0; i < 15; ++i) {
    std::int64_t t = kT0 + i * 240;
    f = RecordLoginFailure(f, t, policy);
    EXPECT_FALSE(IsLockedOut(f, t)) << i;
    EXPECT_LE(f.count, 4);
  }
  // Four failures, then the window passes, then four more: no lock.
  LoginFailures g;
  for (int i = 0; i < 4; ++i) g = RecordLoginFailure(g, kT0 + i, policy);
  for (int i = 0; i < 4; ++i) g = RecordLoginFailure(g, kT0 + 900 + i, policy);
  EXPECT_FALSE(IsLockedOut(g, kT0 + 903));
  EXPECT_EQ(g.count, 4);
  EXPECT_EQ(g.window_start, kT0 + 900);
}

TEST(LockoutTest, LockExpiresAfterItsDuration) {
  PasswordPolicy policy;
  LoginFailures f;
  for (int i = 0; i < 5; ++i) f = RecordLoginFailure(f, kT0 + i, policy);
  ASSERT_TRUE(IsLockedOut(f, kT0 + 4));
  EXPECT_TRUE(IsLockedOut(f, kT0 + 4 + 899));
  EXPECT_FALSE(IsLockedOut(f, kT0 + 4 + 900));
  EXPECT_FALSE(IsLockedOut(f, kT0 + 100000));
}

TEST(LockoutTest, FailuresWhileLockedDoNotExtendTheLock) {
  PasswordPolicy policy;
  LoginFailures f;
  for (int i = 0; i < 5; ++i) f = RecordLoginFailure(f, kT0 + i, policy);
  std::int64_t until = f.locked_until;
  for (int i = 0; i < 20; ++i) f = RecordLoginFailure(f, kT0 + 10 + i * 30, policy);
  EXPECT_EQ(f.locked_until, until);
  EXPECT_FALSE(IsLockedOut(f, until));
}

TEST(LockoutTest, ANewWindowStartsAfterTheLockExpires) {
  PasswordPolicy policy;
  LoginFailures f;
  for (int i = 0; i < 5; ++i) f = RecordLoginFailure(f, kT0 + i, policy);
  std::int64_t after = f.locked_until + 1;
  f = RecordLoginFailure(f, after, policy);
  EXPECT_FALSE(IsLockedOut(f, after));
  EXPECT_EQ(f.count, 1);
  EXPECT_EQ(f.window_start, after);
  EXPECT_EQ(f.locked_until, 0);
  // And it takes a full threshold again to lock.
  for (int i = 1; i < 4; ++i) f = RecordLoginFailure(f, after + i, policy);
  EXPECT_FALSE(IsLockedOut(f, after + 3));
  f = RecordLoginFailure(f, after + 4, policy);
  EXPECT_TRUE(IsLockedOut(f, after + 4));
}

TEST(LockoutTest, ThresholdAndDurationFollowThePolicy) {
  PasswordPolicy policy;
  policy.lockout_threshold = 3;
  policy.lockout_window = std::chrono::seconds(60);
  policy.lockout_duration = std::chrono::seconds(3600);
  LoginFailures f;
  for (int i = 0; i < 3; ++i) f = RecordLoginFailure(f, kT0 + i, policy);
  EXPECT_TRUE(IsLockedOut(f, kT0 + 2));
  EXPECT_EQ(f.locked_until, kT0 + 2 + 3600);
  // Threshold 0 disables lockout.
  policy.lockout_threshold = 0;
  LoginFailures g;
  for (int i = 0; i < 100; ++i) g = RecordLoginFailure(g, kT0 + i, policy);
  EXPECT_FALSE(IsLockedOut(g, kT0 + 99));
}

TEST(LockoutTest, ClockGoingBackwardsStartsANewWindow) {
  PasswordPolicy policy;
  LoginFailures f;
  for (int i = 0; i < 4; ++i) f = RecordLoginFailure(f, kT0 + i, policy);
  f = RecordLoginFailure(f, kT0 - 1000, policy);
  EXPECT_EQ(f.count, 1);
  EXPECT_FALSE(IsLockedOut(f, kT0 - 1000));
}

}  // namespace
}  // namespace kura::auth
