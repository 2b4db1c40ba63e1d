#include "crypto/dev_tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "crypto/openssl_internal.h"
#include "crypto/random.h"

// Why the CA private keys are not kept: the root certificate is what dev
// clients trust (KURA_CACERT). A root key on disk would let anyone who can
// read the data directory mint a certificate for any name those clients
// would accept. Nothing needs it after the leaf is issued: a restart reuses
// the files, and new names or an expired leaf simply mean a fresh CA
// (delete the directory, or EnsureDevTls regenerates an expired set).
// So both CA keys live only in memory for the duration of this call.

namespace kura::crypto {
namespace {

using internal::BioPtr;
using internal::OpenSslError;
using internal::PkeyPtr;
using internal::X509Ptr;
using BignumPtr = internal::OsslPtr<BIGNUM, BN_free>;
using ExtensionPtr = internal::OsslPtr<X509_EXTENSION, X509_EXTENSION_free>;

constexpr long kCaDays = 3650;          // NOLINT(runtime/int): OpenSSL's type
constexpr long kLeafDays = 397;         // NOLINT(runtime/int): the browser maximum
constexpr long kBackdateSeconds = 300;  // NOLINT(runtime/int): tolerate clock skew
constexpr std::time_t kRenewBeforeSeconds = 24 * 3600;

bool IsDnsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// Strict host name check. The name goes into OpenSSL's "DNS:…" config
// syntax, so anything beyond letters, digits, '-' and '.' (a ',' would add a
// second, attacker-chosen entry) must be refused, not escaped.
bool IsDnsName(std::string_view name) {
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!IsDnsLabelChar(c)) return false;
    }
    start = end + 1;
  }
  return true;
}

bool IsIpAddress(const std::string& name) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

Result<std::string> SubjectAltNames(const std::vector<std::string>& extra_names) {
  std::string san = "DNS:localhost,IP:127.0.0.1";
  for (const std::string& name : extra_names) {
    if (name == "localhost" || name == "127.0.0.1") continue;
    if (IsIpAddress(name)) {
      san += ",IP:" + name;
    } else if (IsDnsName(name)) {
      san += ",DNS:" + name;
    } else {
      return InvalidArgumentError("not a DNS name or IP address: \"" + name + "\"");
    }
  }
  return san;
}

Result<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return OpenSslError("generate P-256 key");
  return key;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (!ext) return OpenSslError(std::string("certificate extension ") + OBJ_nid2sn(nid));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return OpenSslError("add certificate extension");
  return Status::Ok();
}

struct Extension {
  int nid;
  std::string value;
};

// Issues a v3 certificate for `key` signed by `issuer_key` (ECDSA with
// SHA-256). `issuer` is nullptr for the self-signed root.
Result<X509Ptr> Issue(const std::string& common_name, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                      long days,  // NOLINT(runtime/int)
                      const std::vector<Extension>& extensions) {
  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("X509_set_version");

  // Random positive 127-bit serial (RFC 5280 §4.1.2.2: unique, at most 20 bytes).
  Bytes serial = RandomBytes(16);
  serial[0] &= 0x7f;
  BignumPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpenSslError("certificate serial");
  }

  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("kura development"),
                                 -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                 -1, -1, 0) != 1) {
    return OpenSslError("certificate subject");
  }
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) return OpenSslError("issuer name");

  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(days), 0, nullptr) == nullptr) {
    return OpenSslError("certificate validity");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return OpenSslError("X509_set_pubkey");

  for (const Extension& ext : extensions) {
    KURA_RETURN_IF_ERROR(AddExtension(cert.get(), signer, ext.nid, ext.value.c_str()));
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return OpenSslError("X509_sign");
  return cert;
}

Result<std::string> BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  if (len < 0 || (len > 0 && data == nullptr)) return InternalError("PEM buffer");
  return std::string(data, static_cast<std::size_t>(len));
}

Result<std::string> CertsPem(std::initializer_list<X509*> certs) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return OpenSslError("BIO_new");
  for (X509* cert : certs) {
    if (PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("PEM_write_bio_X509");
  }
  return BioContents(bio.get());
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  // BIO_s_secmem keeps the encoded private key in OpenSSL's secure heap when
  // one is configured (plain heap otherwise; it is cleansed on free).
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) return OpenSslError("BIO_new");
  // PKCS#8, unencrypted: the server must read it unattended; the file mode
  // (0600) is its protection.
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  return BioContents(bio.get());
}

// Writes `contents` to `path` via a temporary file and rename, so a crash
// never leaves a truncated certificate or key under the final name.
Status WriteFileAtomically(const std::string& path, std::string_view contents, mode_t mode) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover from an interrupted run
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return UnavailableError("cannot create " + tmp + ": " + std::strerror(errno));
  std::size_t done = 0;
  Status status;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = UnavailableError("cannot write " + tmp + ": " + std::strerror(errno));
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (status.ok() && ::fchmod(fd, mode) != 0) status = UnavailableError("cannot chmod " + tmp);
  if (status.ok() && ::fsync(fd) != 0) status = UnavailableError("cannot sync " + tmp);
  if (::close(fd) != 0 && status.ok()) status = UnavailableError("cannot close " + tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = UnavailableError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// True when the first certificate of the chain file is readable and valid
// for at least another day. An unreadable chain is reported as usable: it is
// the operator's file, and the server's TLS set-up will name the problem.
bool LeafStillValid(const std::string& chain_path) {
  BioPtr bio(BIO_new_file(chain_path.c_str(), "r"));
  if (!bio) {
    internal::ClearOpenSslErrors();
    return true;
  }
  X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) {
    internal::ClearOpenSslErrors();
    return true;
  }
  std::time_t cutoff = std::time(nullptr) + kRenewBeforeSeconds;
  return X509_cmp_time(X509_get0_notAfter(leaf.get()), &cutoff) > 0;
}

Status Generate(const DevTlsPaths& paths, const std::string& san) {
  KURA_ASSIGN_OR_RETURN(PkeyPtr root_key, NewP256Key());
  KURA_ASSIGN_OR_RETURN(PkeyPtr intermediate_key, NewP256Key());
  KURA_ASSIGN_OR_RETURN(PkeyPtr leaf_key, NewP256Key());

  KURA_ASSIGN_OR_RETURN(X509Ptr root,
                        Issue("kura development root CA", root_key.get(), nullptr, root_key.get(), kCaDays,
                              {{NID_basic_constraints, "critical,CA:TRUE"},
                               {NID_key_usage, "critical,keyCertSign,cRLSign"},
                               {NID_subject_key_identifier, "hash"}}));
  // pathlen:0: the intermediate may issue only end-entity certificates.
  KURA_ASSIGN_OR_RETURN(X509Ptr intermediate, Issue("kura development intermediate CA", intermediate_key.get(),
                                                    root.get(), root_key.get(), kCaDays,
                                                    {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                                     {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                                     {NID_subject_key_identifier, "hash"},
                                                     {NID_authority_key_identifier, "keyid:always"}}));
  KURA_ASSIGN_OR_RETURN(X509Ptr leaf,
                        Issue("localhost", leaf_key.get(), intermediate.get(), intermediate_key.get(), kLeafDays,
                              {{NID_basic_constraints, "critical,CA:FALSE"},
                               {NID_key_usage, "critical,digitalSignature"},
                               {NID_ext_key_usage, "serverAuth"},
                               {NID_subject_alt_name, san},
                               {NID_subject_key_identifier, "hash"},
                               {NID_authority_key_identifier, "keyid:always"}}));

  KURA_ASSIGN_OR_RETURN(std::string ca_pem, CertsPem({root.get()}));
  KURA_ASSIGN_OR_RETURN(std::string chain_pem, CertsPem({leaf.get(), intermediate.get()}));
  KURA_ASSIGN_OR_RETURN(std::string key_pem, KeyPem(leaf_key.get()));

  // Remove any partial old set first and install ca.pem last: if we stop in
  // between, fewer than three files exist and the next call starts over
  // instead of reusing a mismatched set.
  ::unlink(paths.ca_cert.c_str());
  Status status = WriteFileAtomically(paths.server_key, key_pem, 0600);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  KURA_RETURN_IF_ERROR(status);
  KURA_RETURN_IF_ERROR(WriteFileAtomically(paths.server_chain, chain_pem, 0644));
  return WriteFileAtomically(paths.ca_cert, ca_pem, 0644);
}

}  // namespace

Result<DevTlsPaths> EnsureDevTls(const std::string& dir, const std::vector<std::string>& extra_names) {
  namespace fs = std::filesystem;
  DevTlsPaths paths;
  paths.ca_cert = (fs::path(dir) / "ca.pem").string();
  paths.server_chain = (fs::path(dir) / "server-chain.pem").string();
  paths.server_key = (fs::path(dir) / "server.key").string();
  KURA_ASSIGN_OR_RETURN(std::string san, SubjectAltNames(extra_names));

  if (Exists(paths.ca_cert) && Exists(paths.server_chain) && Exists(paths.server_key)) {
    if (LeafStillValid(paths.server_chain)) return paths;
    log::Info("development TLS certificate in " + dir + " expires within a day; issuing a new set");
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return UnavailableError("cannot create directory " + dir + ": " + ec.message());
  KURA_RETURN_IF_ERROR(Generate(paths, san));
  return paths;
}

}  // namespace kura::crypto
