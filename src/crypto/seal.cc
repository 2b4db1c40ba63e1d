#include "crypto/seal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "crypto/random.h"
#include "crypto/seal_internal.h"
#include "crypto/shamir.h"

namespace kura::crypto {
namespace {

using internal::Errno;
using internal::Fd;
using internal::ModeText;

// Makes the new directory entry durable: losing the key file after a crash
// would make every record unreadable.
void SyncParentDirectory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());
}

class KeyfileSeal final : public Seal {
 public:
  explicit KeyfileSeal(std::string path) : path_(std::move(path)) {}

  std::string_view Type() const override { return "keyfile"; }

  Result<SealInitResult> Initialize(const SealInitOptions& /*options*/) override {
    // O_EXCL: never replace an existing KEK (that would orphan every wrapped
    // key); O_NOFOLLOW: never write the key through a planted symlink.
    Fd fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      const int err = errno;
      if (err == EEXIST) return AlreadyExistsError("key file " + path_ + " already exists; refusing to overwrite it");
      return UnavailableError("cannot create key file " + path_ + ": " + Errno(err));
    }
    SealInitResult result;
    result.kek = RandomSecret(internal::kKekSize);
    // The umask can only narrow 0600, but set it explicitly so the file is
    // exactly owner read/write whatever the umask was.
    Status status = WriteAll(fd.get(), result.kek);
    if (status.ok() && ::fchmod(fd.get(), 0600) != 0) {
      status = UnavailableError("cannot chmod key file: " + Errno(errno));
    }
    if (status.ok() && ::fsync(fd.get()) != 0) status = UnavailableError("cannot sync key file: " + Errno(errno));
    if (status.ok() && ::close(fd.Release()) != 0) status = UnavailableError("cannot close key file: " + Errno(errno));
    if (!status.ok()) {
      ::unlink(path_.c_str());  // do not leave a partial key behind
      return status;
    }
    SyncParentDirectory(path_);
    return result;
  }

  Result<std::optional<SecretBytes>> AutoUnseal() override {
    Fd fd(::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err == ENOENT) return UnavailableError("key file " + path_ + " does not exist");
      return UnavailableError("cannot open key file " + path_ + ": " + Errno(err));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return UnavailableError("cannot stat key file " + path_ + ": " + Errno(errno));
    if (!S_ISREG(st.st_mode)) return InvalidArgumentError("key file " + path_ + " is not a regular file");
    // Like ssh with private keys: a KEK others can read (or replace) is not a
    // secret, so refuse to use it rather than silently run with it.
    if ((st.st_mode & 077) != 0) {
      return InvalidArgumentError("key file " + path_ + " is accessible by group or others (mode " +
                                  ModeText(st.st_mode) + "); run chmod 600 on it");
    }
    if (st.st_size != static_cast<off_t>(internal::kKekSize)) {
      return InvalidArgumentError("key file " + path_ + " has " + std::to_string(st.st_size) + " bytes; expected 32");
    }
    SecretBytes kek(internal::kKekSize);
    std::size_t got = 0;
    while (got < internal::kKekSize) {
      const ssize_t n = ::read(fd.get(), kek.data() + got, internal::kKekSize - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return UnavailableError("cannot read key file " + path_ + ": " + Errno(errno));
      if (n == 0) return InvalidArgumentError("key file " + path_ + " is shorter than 32 bytes");
      got += static_cast<std::size_t>(n);
    }
    return std::optional<SecretBytes>(std::move(kek));
  }

  Result<UnsealProgress> Submit(std::string_view /*input*/) override {
    return InvalidArgumentError("key file seal takes no unseal input");
  }

  void Reset() override {}

 private:
  static Status WriteAll(int fd, const SecretBytes& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return UnavailableError("cannot write key file: " + Errno(errno));
      done += static_cast<std::size_t>(n);
    }
    return Status::Ok();
  }

  std::string path_;
};

class ShamirSeal final : public Seal {
 public:
  std::string_view Type() const override { return "shamir"; }

  Result<SealInitResult> Initialize(const SealInitOptions& options) override {
    SealInitResult result;
    result.kek = RandomSecret(internal::kKekSize);
    // SplitSecret validates shares/threshold (InvalidArgument).
    KURA_ASSIGN_OR_RETURN(result.shares, SplitSecret(result.kek, options.shares, options.threshold));
    Reset();
    return result;
  }

  Result<std::optional<SecretBytes>> AutoUnseal() override { return std::optional<SecretBytes>(); }

  Result<UnsealProgress> Submit(std::string_view input) override {
    // A typo in one share should not discard the others already given.
    KURA_ASSIGN_OR_RETURN(ShamirShare share, ParseShare(input));
    if (!pending_.empty()) {
      const ShamirShare& first = pending_.front();
      if (share.threshold != first.threshold || share.y.size() != first.y.size()) {
        // Shares of two different splits were mixed: none of the partial
        // input can be trusted to belong together, so start over.
        Reset();
        return InvalidArgumentError(
            "share does not belong to the same set as the shares already given; "
            "unseal progress was reset");
      }
      for (const ShamirShare& s : pending_) {
        if (s.x == share.x) return InvalidArgumentError("this share was already given");
      }
    }
    UnsealProgress progress;
    progress.threshold = share.threshold;
    pending_.push_back(std::move(share));
    progress.progress = static_cast<int>(pending_.size());
    if (progress.progress >= progress.threshold) {
      Result<SecretBytes> kek = CombineShares(pending_);
      Reset();
      if (!kek.ok()) return kek.status();
      progress.kek = std::move(kek).value();
    }
    return progress;
  }

  void Reset() override { pending_.clear(); }  // SecretBytes wipe on destruction

 private:
  std::vector<ShamirShare> pending_;
};

}  // namespace

std::unique_ptr<Seal> MakeKeyfileSeal(std::string path) { return std::make_unique<KeyfileSeal>(std::move(path)); }

std::unique_ptr<Seal> MakeShamirSeal() { return std::make_unique<ShamirSeal>(); }

}  // namespace kura::crypto
