#include "auth/kerberos.h"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <openssl/evp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/bytes.h"

namespace kura::auth {
namespace {

// The one message a client ever sees: which check failed (expired ticket,
// wrong service, replay, garbage) helps an attacker probe, not a user.
constexpr char kFailed[] = "Kerberos authentication failed";

// A Negotiate token carries a ticket, an authenticator and (from Active
// Directory) a PAC of up to a few tens of KiB. Anything much larger is not a
// token; refusing it early keeps the decoder's allocation bounded.
constexpr size_t kMaxTokenBase64 = 96 * 1024;

// SPNEGO, 1.3.6.1.5.5.2 (RFC 4178).
gss_OID_desc kSpnegoOid = {6, const_cast<char*>("\x2b\x06\x01\x05\x05\x02")};
// Kerberos 5 as Microsoft's clients name it, 1.2.840.48018.1.2.2: Windows
// offers this OID first inside SPNEGO, so the negotiable set keeps it.
gss_OID_desc kMsKrb5Oid = {9, const_cast<char*>("\x2a\x86\x48\x82\xf7\x12\x01\x02\x02")};

// --- RAII holders for GSSAPI handles. Release errors are ignored: there is
// nothing to do about them and the handle is gone either way.

class Name {
 public:
  Name() = default;
  ~Name() {
    OM_uint32 minor = 0;
    if (name_ != GSS_C_NO_NAME) gss_release_name(&minor, &name_);
  }
  Name(const Name&) = delete;
  Name& operator=(const Name&) = delete;
  gss_name_t get() const { return name_; }
  gss_name_t* out() { return &name_; }

 private:
  gss_name_t name_ = GSS_C_NO_NAME;
};

class Buffer {
 public:
  Buffer() = default;
  ~Buffer() {
    OM_uint32 minor = 0;
    gss_release_buffer(&minor, &buf_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  gss_buffer_t out() { return &buf_; }
  std::string_view view() const {
    return buf_.length == 0 ? std::string_view() : std::string_view(static_cast<const char*>(buf_.value), buf_.length);
  }

 private:
  gss_buffer_desc buf_ = GSS_C_EMPTY_BUFFER;
};

class Context {
 public:
  Context() = default;
  ~Context() {
    OM_uint32 minor = 0;
    if (ctx_ != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx_, GSS_C_NO_BUFFER);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  gss_ctx_id_t* out() { return &ctx_; }

 private:
  gss_ctx_id_t ctx_ = GSS_C_NO_CONTEXT;
};

class Credential {
 public:
  Credential() = default;
  ~Credential() {
    OM_uint32 minor = 0;
    if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
  }
  Credential(const Credential&) = delete;
  Credential& operator=(const Credential&) = delete;
  gss_cred_id_t get() const { return cred_; }
  gss_cred_id_t* out() { return &cred_; }

 private:
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
};

// "major text; minor text" from gss_display_status, for logs. Minor codes are
// mapped to global values by MIT's mechglue, so GSS_C_NO_OID is the right mech.
void AppendStatus(std::string* out, OM_uint32 code, int type) {
  OM_uint32 message_context = 0;
  do {
    OM_uint32 minor = 0;
    Buffer text;
    OM_uint32 major = gss_display_status(&minor, code, type, GSS_C_NO_OID, &message_context, text.out());
    if (GSS_ERROR(major)) break;
    if (!out->empty()) out->append("; ");
    out->append(text.view());
  } while (message_context != 0);
}

std::string DisplayStatus(OM_uint32 major, OM_uint32 minor) {
  std::string out;
  AppendStatus(&out, major, GSS_C_GSS_CODE);
  if (minor != 0) AppendStatus(&out, minor, GSS_C_MECH_CODE);
  return out;
}

// Strict standard base64 (RFC 4648 §4) with padding: one spelling per token,
// and nothing OpenSSL's decoder would otherwise skip (whitespace) or guess.
bool IsBase64Char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

std::string EncodeBase64(std::string_view data) { return Base64Encode(AsBytes(data)); }

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > kMaxTokenBase64) return std::nullopt;
  size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (!IsBase64Char(static_cast<unsigned char>(text[i]))) return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) return std::nullopt;
  // EVP_DecodeBlock counts padding as zero bytes; they are not part of the data.
  out.resize(out.size() - padding);
  // Non-zero bits below the padding ("YR==") decode like their canonical form
  // ("YQ=="); only the canonical spelling is accepted.
  if (EncodeBase64(out) != text) return std::nullopt;
  return out;
}

Status Refuse(std::string* detail, std::string reason) {
  if (detail != nullptr) *detail = std::move(reason);
  return UnauthenticatedError(kFailed);
}

}  // namespace

struct KerberosAcceptor::Impl {
  Credential credential;
};

KerberosAcceptor::KerberosAcceptor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KerberosAcceptor::~KerberosAcceptor() = default;

Result<std::unique_ptr<KerberosAcceptor>> KerberosAcceptor::Create(const KerberosOptions& options) {
  const std::string keytab_label = options.keytab.empty() ? "(default, KRB5_KTNAME)" : options.keytab;
  const std::string principal_label = options.service_principal.empty() ? "(any)" : options.service_principal;
  auto fail = [&](const std::string& what, OM_uint32 major, OM_uint32 minor) {
    return InvalidArgumentError("Kerberos keytab " + keytab_label + ", service principal " + principal_label + ": " +
                                what + ": " + DisplayStatus(major, minor));
  };

  OM_uint32 minor = 0;
  OM_uint32 major = 0;
  Name service;
  if (!options.service_principal.empty()) {
    gss_buffer_desc text = {options.service_principal.size(), const_cast<char*>(options.service_principal.data())};
    major = gss_import_name(&minor, &text, GSS_KRB5_NT_PRINCIPAL_NAME, service.out());
    if (GSS_ERROR(major)) return fail("bad service principal", major, minor);
  }

  // The keytab is passed through the cred store rather than KRB5_KTNAME or
  // krb5_gss_register_acceptor_identity: both are process-wide, and the
  // acceptor must not change what other code in the process sees.
  // krb5 reads "TYPE:residual"; an absolute path is made explicit so that a
  // colon inside it is not taken for a keytab type.
  const std::string keytab_name =
      !options.keytab.empty() && options.keytab.front() == '/' ? "FILE:" + options.keytab : options.keytab;
  gss_key_value_element_desc element = {"keytab", keytab_name.c_str()};
  gss_key_value_set_desc store = {1, &element};
  gss_OID_desc mech_oids[] = {*gss_mech_krb5, kSpnegoOid};
  gss_OID_set_desc mechs = {2, mech_oids};
  auto impl = std::make_unique<Impl>();
  major = gss_acquire_cred_from(&minor, service.get(), GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
                                options.keytab.empty() ? GSS_C_NO_CRED_STORE : &store, impl->credential.out(), nullptr,
                                nullptr);
  // Acquisition opens the keytab and checks that it holds keys (for the named
  // principal, when one is given): a missing, empty or foreign keytab fails
  // here, at start-up, not at the first sign-in. Whether those keys are the
  // KDC's current ones only a ticket can show.
  if (GSS_ERROR(major)) return fail("no usable acceptor credential", major, minor);

  // Under SPNEGO, negotiate Kerberos only: no other mechanism a host might
  // have installed (NTLM through gss-ntlmssp, for one) may sign anyone in.
  gss_OID_desc neg_oids[] = {*gss_mech_krb5, kMsKrb5Oid};
  gss_OID_set_desc neg_mechs = {2, neg_oids};
  major = gss_set_neg_mechs(&minor, impl->credential.get(), &neg_mechs);
  if (GSS_ERROR(major)) return fail("cannot restrict SPNEGO to Kerberos", major, minor);

  return std::unique_ptr<KerberosAcceptor>(new KerberosAcceptor(std::move(impl)));
}

Result<KerberosSignIn> KerberosAcceptor::Accept(std::string_view token_base64, std::string* detail) const {
  std::optional<std::string> token = DecodeBase64(token_base64);
  if (!token) return Refuse(detail, "Negotiate token is not canonical base64 (or empty, or too large)");

  OM_uint32 minor = 0;
  gss_buffer_desc input = {token->size(), token->data()};
  Context context;
  Name source;
  Buffer output;
  OM_uint32 flags = 0;
  // delegated_cred_handle is null: a client's delegated credential is never
  // kept; kura acts as nobody but itself. The replay cache is krb5's default
  // (the acceptor's KRB5RCACHEDIR / KRB5RCACHENAME), which refuses an
  // authenticator seen before.
  OM_uint32 major =
      gss_accept_sec_context(&minor, context.out(), impl_->credential.get(), &input, GSS_C_NO_CHANNEL_BINDINGS,
                             source.out(), nullptr, output.out(), &flags, nullptr, nullptr);
  if (GSS_ERROR(major)) return Refuse(detail, DisplayStatus(major, minor));
  // A Negotiate exchange over stateless HTTP gets one round: a context that
  // wants another token (SPNEGO without an optimistic Kerberos token) is
  // refused rather than kept between requests.
  if (major & GSS_S_CONTINUE_NEEDED) return Refuse(detail, "GSSAPI context needs more than one round trip");
  if (major != GSS_S_COMPLETE)
    return Refuse(detail, "GSSAPI returned supplementary status: " + DisplayStatus(major, 0));
  // Anonymous Kerberos (RFC 8062) authenticates the KDC, not the client.
  if (flags & GSS_C_ANON_FLAG) return Refuse(detail, "anonymous Kerberos is not a sign-in");
  if (source.get() == GSS_C_NO_NAME) return Refuse(detail, "GSSAPI returned no client name");

  Buffer name;
  major = gss_display_name(&minor, source.get(), name.out(), nullptr);
  if (GSS_ERROR(major)) return Refuse(detail, "cannot display client name: " + DisplayStatus(major, minor));
  if (name.view().empty()) return Refuse(detail, "GSSAPI returned an empty client name");

  KerberosSignIn sign_in;
  sign_in.client_principal = std::string(name.view());
  sign_in.output_token = EncodeBase64(output.view());
  return sign_in;
}

}  // namespace kura::auth
