// File and environment helpers shared by the seals that read a secret (a
// passphrase, a PIN) from the operator's configuration and keep a small
// non-secret file in the data directory. Internal to kura_crypto.
#ifndef KURA_CRYPTO_SEAL_INTERNAL_H_
#define KURA_CRYPTO_SEAL_INTERNAL_H_

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "core/secret.h"
#include "core/status.h"

namespace kura::crypto::internal {

// Every seal guards one AES-256 KEK.
constexpr std::size_t kKekSize = 32;

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// strerror(err), and a file mode as four octal digits ("0644").
std::string Errno(int err);
std::string ModeText(mode_t mode);

// Reads a secret from `path` (`what` names it in messages, e.g. "passphrase
// file"). Refused (InvalidArgument) when the file is not a regular file or is
// accessible by group or others (mode & 077): a secret others can read is no
// secret. One trailing "\n" or "\r\n" is dropped (editors add one). Unavailable
// when the file cannot be read. Never puts the content in a message.
Result<SecretBytes> ReadSecretFile(const std::string& path, std::string_view what);

// Reads a secret from the environment variable `name`; Unavailable when it is
// not set. The value is copied into locked memory; the environment keeps its
// copy (the process may need it again after `kura operator seal`).
Result<SecretBytes> ReadSecretEnv(const std::string& name, std::string_view what);

// Creates `path` with O_EXCL | O_NOFOLLOW, mode 0600, writes `content`, fsyncs
// the file and its directory. AlreadyExists when the path exists (never
// replaced: the file may be the only way to the KEK); Unavailable otherwise.
// A partial file is removed.
Status WriteNewFile(const std::string& path, std::string_view content, std::string_view what);

// Reads a small file (at most `max_bytes`); NotFound when missing,
// InvalidArgument when larger, Unavailable on other errors.
Result<std::string> ReadSmallFile(const std::string& path, std::size_t max_bytes, std::string_view what);

}  // namespace kura::crypto::internal

#endif  // KURA_CRYPTO_SEAL_INTERNAL_H_
