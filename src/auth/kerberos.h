// Kerberos sign-in: the acceptor side of HTTP Negotiate (RFC 4559, SPNEGO
// over GSSAPI) with MIT krb5. One round trip: the client's token in, the
// authenticated client principal and the mutual-authentication token out.
//
// The service key comes from a keytab: `keytab` when set, else the one named
// by KRB5_KTNAME (MIT's default). `service_principal` ("HTTP/host@REALM")
// restricts the acceptor to that one principal's key; empty accepts any
// principal in the keytab. The replay cache is krb5's default.
//
// Thread safety: Accept may be called concurrently (each call has its own
// GSS security context; the credential is read-only after Create).
#ifndef KURA_AUTH_KERBEROS_H_
#define KURA_AUTH_KERBEROS_H_

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kura::auth {

struct KerberosOptions {
  std::string keytab;             // path ("" = KRB5_KTNAME / krb5 default)
  std::string service_principal;  // "" = any principal in the keytab
};

struct KerberosSignIn {
  std::string client_principal;  // "alice@CORP.EXAMPLE" (gss_display_name)
  std::string output_token;      // base64 (standard alphabet) for "WWW-Authenticate: Negotiate <token>"; may be empty
};

class KerberosAcceptor {
 public:
  // Acquires the acceptor credential. InvalidArgument when the keytab cannot
  // be read or holds no key for `service_principal` (message names the keytab
  // and principal, and GSSAPI's reason).
  static Result<std::unique_ptr<KerberosAcceptor>> Create(const KerberosOptions& options);
  ~KerberosAcceptor();
  KerberosAcceptor(const KerberosAcceptor&) = delete;
  KerberosAcceptor& operator=(const KerberosAcceptor&) = delete;

  // Accepts the base64 token of "Authorization: Negotiate <token>".
  // Unauthenticated with a generic message ("Kerberos authentication failed")
  // for every failure (malformed token, expired ticket, ticket for another
  // service, replay, a context needing more round trips); `detail`, when not
  // null, receives GSSAPI's reason for the server log (never for the client).
  Result<KerberosSignIn> Accept(std::string_view token_base64, std::string* detail = nullptr) const;

 private:
  struct Impl;
  explicit KerberosAcceptor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kura::auth

#endif  // KURA_AUTH_KERBEROS_H_
