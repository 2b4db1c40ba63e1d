#include "crypto/envelope.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/aead.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

Bytes Concat(const std::string& text, std::initializer_list<std::uint8_t> tail) {
  Bytes out = ToBytes(text);
  out.insert(out.end(), tail);
  return out;
}

const char kNul = '\0';

TEST(AssociatedDataTest, RecordLayout) {
  const std::string prefix = std::string("kura/record/v1") + kNul + "acme" + kNul + "customers" + kNul + "r1" + kNul;
  const Bytes want = Concat(prefix, {0, 0, 0, 0, 0, 0, 0x01, 0x02});
  EXPECT_EQ(HexEncode(RecordAssociatedData("acme", "customers", "r1", 0x0102)), HexEncode(want));
  // Negative versions are two's complement.
  const Bytes negative = Concat(prefix, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  EXPECT_EQ(HexEncode(RecordAssociatedData("acme", "customers", "r1", -1)), HexEncode(negative));
}

TEST(AssociatedDataTest, KeyLayout) {
  const std::string prefix = std::string("kura/key/v1") + kNul + '\x02' + kNul + "acme" + kNul;
  const Bytes want = Concat(prefix, {0, 0, 0, 0, 0, 0, 0, 0x05});
  EXPECT_EQ(HexEncode(KeyAssociatedData(KeyPurpose::kIndexKey, "acme", 5)), HexEncode(want));
}

TEST(AssociatedDataTest, ComponentBoundariesAreUnambiguous) {
  EXPECT_NE(RecordAssociatedData("ab", "c", "d", 1), RecordAssociatedData("a", "bc", "d", 1));
  EXPECT_NE(RecordAssociatedData("a", "bc", "d", 1), RecordAssociatedData("a", "b", "cd", 1));
  EXPECT_NE(RecordAssociatedData("a", "b", "c", 1), RecordAssociatedData("a", "b", "c", 256));
  EXPECT_NE(RecordAssociatedData("a", "b", "c", 1), RecordAssociatedData("a", "b", "c", -1));
  // A record AAD can never equal a key AAD (different labels).
  EXPECT_NE(RecordAssociatedData("", "", "", 1), KeyAssociatedData(KeyPurpose::kDataKey, "", 1));
}

TEST(AssociatedDataDeathTest, NulInComponentAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(RecordAssociatedData(std::string_view("a\0b", 3), "c", "r", 1), "");
  EXPECT_DEATH(KeyAssociatedData(KeyPurpose::kDataKey, std::string_view("a\0", 2), 1), "");
}

class RecordCiphertextTest : public testing::Test {
 protected:
  SecretBytes dek_ = RandomSecret(kAeadKeySize);
  Bytes plaintext_ = ToBytes(R"({"email":"alice@example.com"})");
};

TEST_F(RecordCiphertextTest, OpensOnlyAtItsOwnLocation) {
  Result<Bytes> sealed = SealRecord(dek_, plaintext_, "acme", "customers", "rec-1", 3);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();

  Result<SecretBytes> opened = OpenRecord(dek_, *sealed, "acme", "customers", "rec-1", 3);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->Equals(plaintext_));

  // The same bytes copied onto another record id, version, collection or tenant.
  EXPECT_EQ(OpenRecord(dek_, *sealed, "acme", "customers", "rec-2", 3).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(OpenRecord(dek_, *sealed, "acme", "customers", "rec-1", 2).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(OpenRecord(dek_, *sealed, "acme", "customers", "rec-1", 4).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(OpenRecord(dek_, *sealed, "acme", "orders", "rec-1", 3).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(OpenRecord(dek_, *sealed, "globex", "customers", "rec-1", 3).status().code(), StatusCode::kDataLoss);
  // Shifting a character between components changes the AAD too.
  EXPECT_EQ(OpenRecord(dek_, *sealed, "acm", "ecustomers", "rec-1", 3).status().code(), StatusCode::kDataLoss);
}

TEST_F(RecordCiphertextTest, SealRecordIsAeadWithRecordAssociatedData) {
  Result<Bytes> sealed = AeadSeal(dek_, plaintext_, RecordAssociatedData("acme", "customers", "rec-1", 1));
  ASSERT_TRUE(sealed.ok());
  Result<SecretBytes> opened = OpenRecord(dek_, *sealed, "acme", "customers", "rec-1", 1);
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->Equals(plaintext_));
  EXPECT_EQ(AeadOpen(dek_, *sealed, RecordAssociatedData("acme", "customers", "rec-9", 1)).status().code(),
            StatusCode::kDataLoss);
}

TEST_F(RecordCiphertextTest, WrongDataKeyIsRejected) {
  Result<Bytes> sealed = SealRecord(dek_, plaintext_, "acme", "customers", "rec-1", 1);
  ASSERT_TRUE(sealed.ok());
  SecretBytes other = RandomSecret(kAeadKeySize);
  EXPECT_EQ(OpenRecord(other, *sealed, "acme", "customers", "rec-1", 1).status().code(), StatusCode::kDataLoss);
}

TEST_F(RecordCiphertextTest, NulInLocationIsInvalidArgument) {
  const std::string_view bad("rec\0-1", 6);
  EXPECT_EQ(SealRecord(dek_, plaintext_, "acme", "customers", bad, 1).status().code(), StatusCode::kInvalidArgument);
  Result<Bytes> sealed = SealRecord(dek_, plaintext_, "acme", "customers", "rec", 1);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(OpenRecord(dek_, *sealed, bad, "customers", "rec", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsValidAssociatedDataComponent(bad));
  EXPECT_TRUE(IsValidAssociatedDataComponent("rec-1"));
}

class WrapKeyTest : public testing::Test {
 protected:
  SecretBytes kek_ = RandomSecret(kAeadKeySize);
  SecretBytes dek_ = RandomSecret(kAeadKeySize);
};

TEST_F(WrapKeyTest, RoundTrip) {
  Result<Bytes> wrapped = WrapKey(kek_, dek_, KeyPurpose::kDataKey, "acme", 1);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  EXPECT_EQ(wrapped->size(), dek_.size() + kAeadOverhead);
  // The wrap never contains the key in the clear.
  EXPECT_EQ(std::search(wrapped->begin(), wrapped->end(), dek_.data(), dek_.data() + dek_.size()), wrapped->end());
  Result<SecretBytes> unwrapped = UnwrapKey(kek_, *wrapped, KeyPurpose::kDataKey, "acme", 1);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status().ToString();
  EXPECT_TRUE(unwrapped->Equals(dek_.view()));
}

TEST_F(WrapKeyTest, EmptyOwnerForVaultWideKeys) {
  Result<Bytes> wrapped = WrapKey(kek_, dek_, KeyPurpose::kKekCheck, "", 1);
  ASSERT_TRUE(wrapped.ok());
  EXPECT_TRUE(UnwrapKey(kek_, *wrapped, KeyPurpose::kKekCheck, "", 1).ok());
}

TEST_F(WrapKeyTest, UnwrapElsewhereIsRejected) {
  Result<Bytes> wrapped = WrapKey(kek_, dek_, KeyPurpose::kDataKey, "acme", 1);
  ASSERT_TRUE(wrapped.ok());
  SecretBytes other_kek = RandomSecret(kAeadKeySize);
  EXPECT_EQ(UnwrapKey(kek_, *wrapped, KeyPurpose::kIndexKey, "acme", 1).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(UnwrapKey(kek_, *wrapped, KeyPurpose::kKekCheck, "acme", 1).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(UnwrapKey(kek_, *wrapped, KeyPurpose::kDataKey, "globex", 1).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(UnwrapKey(kek_, *wrapped, KeyPurpose::kDataKey, "acme", 2).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(UnwrapKey(other_kek, *wrapped, KeyPurpose::kDataKey, "acme", 1).status().code(), StatusCode::kDataLoss);
}

TEST_F(WrapKeyTest, AlteredOrTruncatedWrapIsRejected) {
  Result<Bytes> wrapped = WrapKey(kek_, dek_, KeyPurpose::kDataKey, "acme", 1);
  ASSERT_TRUE(wrapped.ok());
  for (std::size_t i = 1; i < wrapped->size(); ++i) {
    Bytes altered = *wrapped;
    altered[i] ^= 0x80;
    EXPECT_EQ(UnwrapKey(kek_, altered, KeyPurpose::kDataKey, "acme", 1).status().code(), StatusCode::kDataLoss) << i;
  }
  EXPECT_EQ(UnwrapKey(kek_, ByteView(wrapped->data(), 10), KeyPurpose::kDataKey, "acme", 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(WrapKeyTest, InvalidInputs) {
  SecretBytes empty;
  EXPECT_EQ(WrapKey(kek_, empty, KeyPurpose::kDataKey, "acme", 1).status().code(), StatusCode::kInvalidArgument);
  SecretBytes short_kek = RandomSecret(16);
  EXPECT_EQ(WrapKey(short_kek, dek_, KeyPurpose::kDataKey, "acme", 1).status().code(), StatusCode::kInvalidArgument);
  const std::string_view bad("ac\0me", 5);
  EXPECT_EQ(WrapKey(kek_, dek_, KeyPurpose::kDataKey, bad, 1).status().code(), StatusCode::kInvalidArgument);
  Result<Bytes> wrapped = WrapKey(kek_, dek_, KeyPurpose::kDataKey, "acme", 1);
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(UnwrapKey(kek_, *wrapped, KeyPurpose::kDataKey, bad, 1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kura::crypto
