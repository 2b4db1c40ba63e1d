#include "crypto/seal_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

namespace kura::crypto::internal {
namespace {

// A passphrase or PIN file larger than this is certainly the wrong file.
constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

}  // namespace

std::string Errno(int err) { return std::strerror(err); }

std::string ModeText(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Result<SecretBytes> ReadSecretFile(const std::string& path, std::string_view what) {
  const std::string name = std::string(what) + " " + path;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return UnavailableError("cannot open " + name + ": " + Errno(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return UnavailableError("cannot stat " + name + ": " + Errno(errno));
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(name + " is not a regular file");
  // Like ssh with private keys: refuse rather than silently use a secret that
  // other users of the machine can read (or replace).
  if ((st.st_mode & 077) != 0) {
    return InvalidArgumentError(name + " is accessible by group or others (mode " + ModeText(st.st_mode) +
                                "); run chmod 600 on it");
  }
  if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) > kMaxSecretFileBytes) {
    return InvalidArgumentError(name + " is larger than " + std::to_string(kMaxSecretFileBytes) + " bytes");
  }
  SecretBytes buffer(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t got = 0;
  while (got < buffer.size()) {
    const ssize_t n = ::read(fd.get(), buffer.data() + got, buffer.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return UnavailableError("cannot read " + name + ": " + Errno(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > static_cast<std::size_t>(st.st_size)) return UnavailableError(name + " changed while it was read");
  std::size_t len = got;
  if (len > 0 && buffer.data()[len - 1] == '\n') {
    --len;
    if (len > 0 && buffer.data()[len - 1] == '\r') --len;
  }
  if (len == 0) return InvalidArgumentError(name + " is empty");
  return SecretBytes::FromBytes(ByteView(buffer.data(), len));
}

Result<SecretBytes> ReadSecretEnv(const std::string& name, std::string_view what) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return UnavailableError(std::string(what) + ": environment variable " + name + " is not set");
  const std::size_t len = std::strlen(value);
  if (len == 0) return InvalidArgumentError(std::string(what) + ": environment variable " + name + " is empty");
  return SecretBytes::FromBytes(ByteView(reinterpret_cast<const std::uint8_t*>(value), len));
}

Status WriteNewFile(const std::string& path, std::string_view content, std::string_view what) {
  const std::string name = std::string(what) + " " + path;
  // O_EXCL: never replace the file that leads to the KEK; O_NOFOLLOW: never
  // write through a planted symlink.
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    const int err = errno;
    if (err == EEXIST) return AlreadyExistsError(name + " already exists; refusing to overwrite it");
    return UnavailableError("cannot create " + name + ": " + Errno(err));
  }
  Status status = Status::Ok();
  std::size_t done = 0;
  while (status.ok() && done < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = UnavailableError("cannot write " + name + ": " + Errno(errno));
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (status.ok() && ::fchmod(fd.get(), 0600) != 0) status = UnavailableError("cannot chmod " + name + ": " + Errno(errno));
  if (status.ok() && ::fsync(fd.get()) != 0) status = UnavailableError("cannot sync " + name + ": " + Errno(errno));
  if (status.ok() && ::close(fd.Release()) != 0) status = UnavailableError("cannot close " + name + ": " + Errno(errno));
  if (!status.ok()) {
    ::unlink(path.c_str());
    return status;
  }
  // The directory entry must be durable too: losing the file after a crash
  // would make every record unreadable.
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());
  return Status::Ok();
}

Result<std::string> ReadSmallFile(const std::string& path, std::size_t max_bytes, std::string_view what) {
  const std::string name = std::string(what) + " " + path;
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) return NotFoundError(name + " does not exist");
    return UnavailableError("cannot open " + name + ": " + Errno(err));
  }
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return UnavailableError("cannot read " + name + ": " + Errno(errno));
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) return InvalidArgumentError(name + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

}  // namespace kura::crypto::internal
