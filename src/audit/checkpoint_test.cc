#include "audit/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "audit/merkle.h"
#include "core/bytes.h"
#include "crypto/hash.h"

namespace kura::audit {
namespace {

Bytes Root(std::uint8_t fill) { return Bytes(32, fill); }

crypto::SigningKey TestKey() {
  // RFC 8032 §7.1 TEST 1's seed: a fixed key makes the note below fixed.
  return crypto::SigningKey::FromSeed(
             SecretBytes::FromBytes(
                 HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").value()))
      .value();
}

TEST(CheckpointTest, KeyIdIsFirstEightBytesOfSha256) {
  const crypto::SigningKey key = TestKey();
  EXPECT_EQ(KeyId(key.public_key()), HexEncode(crypto::Sha256(key.public_key())).substr(0, 16));
  EXPECT_EQ(KeyId(key.public_key()).size(), 16u);
}

TEST(CheckpointTest, NoteFormat) {
  Checkpoint c{.key_id = "0123456789abcdef", .tree_size = 1000, .root = EmptyTreeRoot(), .at_ms = 1700000000000};
  EXPECT_EQ(CheckpointNote(c),
            "kura-audit-checkpoint v1\n"
            "0123456789abcdef\n"
            "1000\n"
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
            "1700000000000\n");
  auto parsed = ParseCheckpointNote(CheckpointNote(c));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->key_id, c.key_id);
  EXPECT_EQ(parsed->tree_size, 1000);
  EXPECT_EQ(parsed->root, EmptyTreeRoot());
  EXPECT_EQ(parsed->at_ms, 1700000000000);

  // Every root byte pattern survives the round trip (base64 edge bits).
  for (int fill = 0; fill < 256; fill += 17) {
    Checkpoint d = c;
    d.root = Root(static_cast<std::uint8_t>(fill));
    d.root[31] = static_cast<std::uint8_t>(255 - fill);
    d.tree_size = fill;
    auto back = ParseCheckpointNote(CheckpointNote(d));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->root, d.root);
    EXPECT_EQ(back->tree_size, fill);
  }
}

TEST(CheckpointTest, ParserIsStrict) {
  const std::string good = CheckpointNote(
      {.key_id = "0123456789abcdef", .tree_size = 7, .root = EmptyTreeRoot(), .at_ms = 5});
  ASSERT_TRUE(ParseCheckpointNote(good).ok());
  const auto replace = [&](std::string_view from, std::string_view to) {
    std::string s = good;
    const std::size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::vector<std::string> bad = {
      "",
      "\n",
      good.substr(0, good.size() - 1),            // no final newline
      good + "\n",                                // extra empty line
      good + "extra\n",
      replace("kura-audit-checkpoint v1", "kura-audit-checkpoint v2"),
      replace("kura-audit-checkpoint v1\n", "kura-audit-checkpoint v1\r\n"),
      replace("0123456789abcdef", "0123456789ABCDEF"),
      replace("0123456789abcdef", "0123456789abcde"),
      replace("0123456789abcdef", "0123456789abcdeg"),
      replace("\n7\n", "\n07\n"),
      replace("\n7\n", "\n+7\n"),
      replace("\n7\n", "\n-7\n"),
      replace("\n7\n", "\n 7\n"),
      replace("\n7\n", "\n\n"),
      replace("\n7\n", "\n99999999999999999999\n"),
      replace("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"),
      replace("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="),
      replace("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV="),
      replace("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS"),
      replace("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=AAAA"),
      replace("\n5\n", "\n5.0\n"),
      replace("\n5\n", "\n\n"),
  };
  for (const std::string& note : bad) {
    auto parsed = ParseCheckpointNote(note);
    EXPECT_FALSE(parsed.ok()) << note;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), StatusCode::kDataLoss);
    }
  }
}

TEST(CheckpointTest, SignAndVerify) {
  const crypto::SigningKey key = TestKey();
  const store::AuditCheckpointRow row =
      SignCheckpoint({.key_id = "ignored", .tree_size = 42, .root = Root(9), .at_ms = 1234}, key);
  EXPECT_EQ(row.tree_size, 42);
  EXPECT_EQ(row.at_ms, 1234);
  EXPECT_EQ(row.root, Root(9));
  EXPECT_EQ(row.signature.size(), crypto::kEd25519SignatureSize);
  auto parsed = ParseCheckpointNote(row.note);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->key_id, KeyId(key.public_key()));
  EXPECT_TRUE(crypto::VerifySignature(key.public_key(), AsBytes(row.note), row.signature));
  EXPECT_TRUE(VerifyCheckpoint(row, key.public_key()).ok());
}

void ExpectRejected(const store::AuditCheckpointRow& row, ByteView public_key, std::string_view needle) {
  Status s = VerifyCheckpoint(row, public_key);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << needle;
  EXPECT_NE(s.message().find("tree size " + std::to_string(row.tree_size)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

TEST(CheckpointTest, TamperingIsDataLossNamingTheTreeSize) {
  const crypto::SigningKey key = TestKey();
  const store::AuditCheckpointRow good =
      SignCheckpoint({.tree_size = 42, .root = Root(9), .at_ms = 1234}, key);

  store::AuditCheckpointRow row = good;
  row.signature[10] ^= 1;
  ExpectRejected(row, key.public_key(), "signature does not verify");
  row = good;
  row.signature.clear();
  ExpectRejected(row, key.public_key(), "signature does not verify");

  // A column changed alone.
  row = good;
  row.tree_size = 43;
  ExpectRejected(row, key.public_key(), "says tree size 42");
  row = good;
  row.root[0] ^= 1;
  ExpectRejected(row, key.public_key(), "root column");
  row = good;
  row.at_ms = 1;
  ExpectRejected(row, key.public_key(), "time column");

  // The note and the columns changed together: the signature no longer fits.
  row = good;
  row.tree_size = 50;
  row.note = CheckpointNote({.key_id = KeyId(key.public_key()), .tree_size = 50, .root = Root(9), .at_ms = 1234});
  ExpectRejected(row, key.public_key(), "signature does not verify");

  // Another key: its own valid signature, or a note claiming our key id.
  const crypto::SigningKey other = crypto::SigningKey::Generate();
  row = SignCheckpoint({.tree_size = 42, .root = Root(9), .at_ms = 1234}, other);
  ExpectRejected(row, key.public_key(), "another key");
  row = good;
  row.signature = other.Sign(AsBytes(row.note));
  ExpectRejected(row, key.public_key(), "signature does not verify");
  // And a good checkpoint checked against the wrong public key.
  ExpectRejected(good, other.public_key(), "another key");

  // A malformed note.
  row = good;
  row.note += "x";
  ExpectRejected(row, key.public_key(), "malformed");
}

int RunShell(const std::string& command) {
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// What docs/formats/audit.md promises: the OpenSSL command line checks a
// checkpoint with nothing but the PEM public key, and the root line is plain
// base64.
TEST(CheckpointTest, OpenSslCommandLineVerifiesTheNote) {
  if (RunShell("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  std::string tmpl = (std::filesystem::temp_directory_path() / "kura-checkpoint-test.XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  const crypto::SigningKey key = crypto::SigningKey::Generate();
  const Bytes root = crypto::Sha256(AsBytes("some root"));
  const store::AuditCheckpointRow row = SignCheckpoint({.tree_size = 99, .root = root, .at_ms = 1}, key);
  const auto write = [&](const std::string& name, std::string_view data) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  };
  write("pub.pem", crypto::PublicKeyToPem(key.public_key()));
  write("note", row.note);
  write("sig", AsString(row.signature));
  EXPECT_EQ(RunShell("cd '" + dir +
                     "' && openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in note -sigfile sig >/dev/null"),
            0);
  EXPECT_EQ(RunShell("cd '" + dir + "' && test \"$(sed -n 4p note | base64 -d | od -An -tx1 | tr -d ' \\n')\" = " +
                     HexEncode(root)),
            0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kura::audit
