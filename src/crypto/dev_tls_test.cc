#include "crypto/dev_tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/test_dir_for_test.h"

namespace kura::crypto {
namespace {

namespace fs = std::filesystem;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<X509Ptr> LoadCerts(const std::string& path) {
  std::vector<X509Ptr> out;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return out;
  while (X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr)) out.emplace_back(x);
  std::fclose(f);
  return out;
}

PkeyPtr LoadKey(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  PkeyPtr key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  return key;
}

// Verifies leaf (+ optional intermediate) against the root as a TLS server
// certificate for `host` or `ip`; returns the X509_V_ERR code (0 = OK).
int Verify(X509* root, X509* leaf, X509* intermediate, const char* host, const char* ip) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root);
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  if (intermediate != nullptr) sk_X509_push(untrusted.get(), intermediate);
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get());
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (host != nullptr) X509_VERIFY_PARAM_set1_host(param, host, 0);
  if (ip != nullptr) X509_VERIFY_PARAM_set1_ip_asc(param, ip);
  if (X509_verify_cert(ctx.get()) == 1) return 0;
  int err = X509_STORE_CTX_get_error(ctx.get());
  return err == 0 ? -1 : err;
}

std::set<std::string> SubjectAltNames(X509* cert) {
  std::set<std::string> out;
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_IA5STRING* s = gn->d.dNSName;
      out.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<std::size_t>(ASN1_STRING_length(s))));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      const int len = ASN1_STRING_length(ip);
      char text[INET6_ADDRSTRLEN] = {};
      const int family = len == 4 ? AF_INET : AF_INET6;
      if ((len == 4 || len == 16) && inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text)) != nullptr) {
        out.insert("IP:" + std::string(text));
      }
    }
  }
  return out;
}

class DevTlsTest : public testing::Test {
 protected:
  void SetUp() override {
    Result<DevTlsPaths> r = EnsureDevTls(dir_.Sub("tls"), {"kura.test", "192.0.2.10", "::1"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    paths_ = *r;
    std::vector<X509Ptr> ca = LoadCerts(paths_.ca_cert);
    ASSERT_EQ(ca.size(), 1u);
    root_ = std::move(ca[0]);
    chain_ = LoadCerts(paths_.server_chain);
    ASSERT_EQ(chain_.size(), 2u) << "server-chain.pem must hold leaf then intermediate";
    key_ = LoadKey(paths_.server_key);
    ASSERT_TRUE(key_);
  }
  X509* leaf() { return chain_[0].get(); }
  X509* intermediate() { return chain_[1].get(); }

  TestDir dir_;
  DevTlsPaths paths_;
  X509Ptr root_;
  std::vector<X509Ptr> chain_;
  PkeyPtr key_;
};

TEST_F(DevTlsTest, WritesTheThreeFilesOnly) {
  EXPECT_EQ(paths_.ca_cert, dir_.Sub("tls/ca.pem"));
  EXPECT_EQ(paths_.server_chain, dir_.Sub("tls/server-chain.pem"));
  EXPECT_EQ(paths_.server_key, dir_.Sub("tls/server.key"));
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_.Sub("tls"))) names.insert(entry.path().filename().string());
  // No CA private key (nor temporary file) is left on disk.
  EXPECT_EQ(names, (std::set<std::string>{"ca.pem", "server-chain.pem", "server.key"}));
  struct stat st;
  ASSERT_EQ(::stat(paths_.server_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(DevTlsTest, ChainVerifiesAgainstCa) {
  EXPECT_EQ(Verify(root_.get(), leaf(), intermediate(), "localhost", nullptr), 0);
  EXPECT_EQ(Verify(root_.get(), leaf(), intermediate(), nullptr, "127.0.0.1"), 0);
  EXPECT_EQ(Verify(root_.get(), leaf(), intermediate(), "kura.test", nullptr), 0);
  EXPECT_EQ(Verify(root_.get(), leaf(), intermediate(), nullptr, "192.0.2.10"), 0);
  EXPECT_EQ(Verify(root_.get(), leaf(), intermediate(), nullptr, "::1"), 0);
  // Negative controls: the check is real.
  EXPECT_EQ(Verify(root_.get(), leaf(), intermediate(), "example.com", nullptr), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(Verify(root_.get(), leaf(), intermediate(), nullptr, "127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
  EXPECT_NE(Verify(root_.get(), leaf(), nullptr, "localhost", nullptr), 0) << "the intermediate is required";
  EXPECT_NE(Verify(intermediate(), leaf(), nullptr, "localhost", nullptr), 0) << "intermediate is not a root";
}

TEST_F(DevTlsTest, LeafKeyIsP256AndMatchesCertificate) {
  EXPECT_TRUE(EVP_PKEY_is_a(key_.get(), "EC"));
  char group[64] = {};
  std::size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key_.get(), group, sizeof(group), &len), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_check_private_key(leaf(), key_.get()), 1);
  for (X509* cert : {root_.get(), intermediate(), leaf()}) {
    EVP_PKEY* pub = X509_get0_pubkey(cert);
    ASSERT_NE(pub, nullptr);
    EXPECT_EQ(EVP_PKEY_get_bits(pub), 256);
    EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
  }
}

TEST_F(DevTlsTest, SignaturesAreEcdsaSha256) {
  for (X509* cert : {root_.get(), intermediate(), leaf()}) {
    EXPECT_EQ(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
  }
}

TEST_F(DevTlsTest, ExtensionsMatchTheRoles) {
  EXPECT_EQ(X509_check_ca(root_.get()), 1);
  EXPECT_TRUE(X509_get_key_usage(root_.get()) & KU_KEY_CERT_SIGN);
  EXPECT_EQ(X509_check_issued(root_.get(), root_.get()), X509_V_OK);

  EXPECT_EQ(X509_check_ca(intermediate()), 1);
  EXPECT_EQ(X509_get_pathlen(intermediate()), 0);
  EXPECT_TRUE(X509_get_key_usage(intermediate()) & KU_KEY_CERT_SIGN);
  EXPECT_EQ(X509_check_issued(root_.get(), intermediate()), X509_V_OK);

  EXPECT_EQ(X509_check_ca(leaf()), 0);
  EXPECT_TRUE(X509_get_extended_key_usage(leaf()) & XKU_SSL_SERVER);
  EXPECT_TRUE(X509_get_key_usage(leaf()) & KU_DIGITAL_SIGNATURE);
  EXPECT_EQ(X509_check_issued(intermediate(), leaf()), X509_V_OK);
}

TEST_F(DevTlsTest, SubjectAltNamesIncludeDefaultsAndExtras) {
  std::set<std::string> names = SubjectAltNames(leaf());
  EXPECT_TRUE(names.count("DNS:localhost"));
  EXPECT_TRUE(names.count("IP:127.0.0.1"));
  EXPECT_TRUE(names.count("DNS:kura.test"));
  EXPECT_TRUE(names.count("IP:192.0.2.10"));
  EXPECT_EQ(names.size(), 5u) << "plus IP:::1";
}

TEST_F(DevTlsTest, LeafValidity397DaysCaTenYears) {
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf()), X509_get0_notAfter(leaf())), 1);
  EXPECT_GE(days, 397);
  EXPECT_LE(days, 398);
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(root_.get()), X509_get0_notAfter(root_.get())), 1);
  EXPECT_GE(days, 3650);
}

TEST_F(DevTlsTest, SecondCallReusesFiles) {
  const std::string ca = ReadFile(paths_.ca_cert);
  const std::string chain = ReadFile(paths_.server_chain);
  const std::string key = ReadFile(paths_.server_key);
  Result<DevTlsPaths> again = EnsureDevTls(dir_.Sub("tls"), {"kura.test"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ReadFile(again->ca_cert), ca);
  EXPECT_EQ(ReadFile(again->server_chain), chain);
  EXPECT_EQ(ReadFile(again->server_key), key);
}

TEST_F(DevTlsTest, IncompleteSetIsRegenerated) {
  const std::string chain = ReadFile(paths_.server_chain);
  ASSERT_EQ(::unlink(paths_.ca_cert.c_str()), 0);
  Result<DevTlsPaths> again = EnsureDevTls(dir_.Sub("tls"));
  ASSERT_TRUE(again.ok());
  EXPECT_NE(ReadFile(again->server_chain), chain);
  std::vector<X509Ptr> ca = LoadCerts(again->ca_cert);
  std::vector<X509Ptr> new_chain = LoadCerts(again->server_chain);
  ASSERT_EQ(ca.size(), 1u);
  ASSERT_EQ(new_chain.size(), 2u);
  EXPECT_EQ(Verify(ca[0].get(), new_chain[0].get(), new_chain[1].get(), "localhost", nullptr), 0);
}

TEST(DevTlsNamesTest, RejectsNamesThatAreNotHostsOrAddresses) {
  TestDir dir;
  for (const char* bad : {"a,b", "DNS:evil", "bad name", "", "-lead.example", "x..y", "email:a@b"}) {
    Result<DevTlsPaths> r = EnsureDevTls(dir.Sub("tls"), {bad});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(fs::exists(dir.Sub("tls"))) << "nothing is written for a rejected request";
  EXPECT_TRUE(EnsureDevTls(dir.Sub("tls"), {"*.kura.test", "vault-1.internal"}).ok());
}

}  // namespace
}  // namespace kura::crypto
