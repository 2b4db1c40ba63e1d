#include "audit/export.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/log.h"

namespace kura::audit {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kPollInterval = 200ms;  // wake-up without Notify()
constexpr auto kMinBackoff = 200ms;    // first retry after a sink failure
constexpr auto kMaxBackoff = 5s;       // retries never further apart than this
constexpr auto kWarnEvery = 60s;       // a failing sink warns once, then at most this often
// Bounds every blocking socket step (connect, send, waiting for the
// receiver's acknowledgement) so a dead receiver cannot stall the exporter or
// its shutdown for long.
constexpr auto kIoTimeout = 5s;
// The largest syslog datagram sent (UDP payload limit is 65507 bytes on IPv4);
// RFC 5424 §6.1 lets a transport truncate longer messages.
constexpr std::size_t kMaxDatagram = 65000;
// docs/formats/audit-export.md: one line, "<magic> next_seq=<N>\n".
constexpr std::string_view kPositionMagic = "kura-audit-export v1";
// RFC 5424 structured data ID: 32473 is the enterprise number RFC 5612
// reserves for documentation; the element only carries the seq so a
// receiver can drop a duplicate after a retried batch.
constexpr std::string_view kSdId = "kura@32473";

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r: returns a pointer that may or may not be `buf`.
  return std::string(strerror_r(err, buf, sizeof buf));
}

Status PosixError(const std::string& what, int err) { return UnavailableError(what + ": " + ErrnoText(err)); }

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write " + what, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

std::string DirOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// A rename or a new file is durable only once its directory is synced.
Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return PosixError("open directory " + dir, errno);
  if (::fsync(fd.get()) != 0) return PosixError("fsync directory " + dir, errno);
  return Status::Ok();
}

// A sink name becomes a file name (<state_dir>/<name>.pos): no separators,
// no leading dot. Same rule as the configuration's.
bool ValidSinkName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '_' || ch == '-';
  });
}

// RFC 5424 §6: PRINTUSASCII, no space.
bool PrintUsAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char ch) { return ch >= 33 && ch <= 126; });
}

// --- Position file.

// nullopt when there is none yet; DataLoss when it is not ours.
Result<std::optional<std::int64_t>> ReadPosition(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<std::int64_t>();
    return PosixError("open " + path, errno);
  }
  char buf[128];
  ssize_t n;
  do {
    n = ::read(fd.get(), buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return PosixError("read " + path, errno);
  std::string_view text(buf, static_cast<std::size_t>(n));
  const std::string prefix = std::string(kPositionMagic) + " next_seq=";
  if (!text.starts_with(prefix) || !text.ends_with('\n')) return DataLossError(path + ": not an export position file");
  text.remove_prefix(prefix.size());
  text.remove_suffix(1);
  std::int64_t value = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return DataLossError(path + ": malformed position");
  }
  return std::optional<std::int64_t>(value);
}

// Atomic replace: a crash leaves the old or the new position, never a torn one.
Status WritePosition(const std::string& path, std::int64_t next_seq) {
  const std::string tmp = path + ".tmp";
  const std::string text = std::string(kPositionMagic) + " next_seq=" + std::to_string(next_seq) + "\n";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return PosixError("open " + tmp, errno);
    KURA_RETURN_IF_ERROR(WriteAll(fd.get(), text, tmp));
    if (::fsync(fd.get()) != 0) return PosixError("fsync " + tmp, errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return PosixError("rename " + tmp, errno);
  return SyncDir(DirOf(path));
}

// --- Syslog addresses.

enum class Transport { kUdp, kTcp, kUnix };

struct Endpoint {
  Transport transport = Transport::kUdp;
  std::string host;  // udp, tcp
  std::string port;
  std::string path;  // unix
};

Result<Endpoint> ParseAddress(std::string_view address) {
  auto bad = [&address](std::string_view why) {
    return InvalidArgumentError("syslog address \"" + std::string(address) + "\" " + std::string(why));
  };
  Endpoint e;
  if (address.starts_with("unix://")) {
    e.transport = Transport::kUnix;
    e.path = std::string(address.substr(7));
    if (e.path.empty() || e.path.front() != '/') return bad("needs an absolute socket path (unix:///dev/log)");
    if (e.path.size() >= sizeof(sockaddr_un::sun_path)) return bad("has a socket path that is too long");
    return e;
  }
  if (address.starts_with("udp://")) {
    e.transport = Transport::kUdp;
  } else if (address.starts_with("tcp://")) {
    e.transport = Transport::kTcp;
  } else {
    return bad("is not udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH");
  }
  std::string_view rest = address.substr(6);
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad("is not HOST:PORT");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("is not HOST:PORT");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("needs brackets around an IPv6 address");
  }
  int value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
    return bad("is not HOST:PORT with a port of 1-65535");
  }
  e.host = std::string(host);
  e.port = std::string(port);
  return e;
}

// RFC 3339 UTC with milliseconds (RFC 5424 §6.2.3 TIMESTAMP).
std::string TimestampMs(std::int64_t at_ms) {
  std::int64_t secs = at_ms / 1000;
  std::int64_t ms = at_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) return "-";
  char buf[96];  // room for any int fields, so the compiler sees no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// RFC 5424 HOSTNAME: 1-255 PRINTUSASCII, "-" when unknown.
std::string LocalHostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "-";
  std::string name(buf);
  for (char& ch : name) {
    if (ch < 33 || ch > 126) ch = '-';
  }
  return name;
}

// The seq and hash (hex) of a JSON line written by ExportLine; seq -1 when
// the line is not one.
struct LineId {
  std::int64_t seq = -1;
  std::string hash;
};

LineId ParseLineId(std::string_view line) {
  LineId id;
  constexpr std::string_view kSeq = "\"seq\":";
  constexpr std::string_view kHash = "\"hash\":\"";
  auto s = line.find(kSeq);  // the first "seq" key is the entry's own (fixed key order)
  auto h = line.rfind(kHash);  // "hash" is the last key
  if (s == std::string_view::npos || h == std::string_view::npos) return id;
  std::string_view digits = line.substr(s + kSeq.size());
  std::int64_t seq = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || seq < 0) return id;
  std::string_view hash = line.substr(h + kHash.size());
  auto quote = hash.find('"');
  if (quote == std::string_view::npos) return id;
  id.seq = seq;
  id.hash = std::string(hash.substr(0, quote));
  return id;
}

// Offset of the last `ch` in [0, end) of the file, scanning backwards;
// nullopt when there is none.
Result<std::optional<std::uint64_t>> FindLastByte(int fd, std::uint64_t end, char ch, const std::string& what) {
  constexpr std::uint64_t kChunk = 64 * 1024;
  std::vector<char> buf(kChunk);
  while (end > 0) {
    std::uint64_t begin = end > kChunk ? end - kChunk : 0;
    std::size_t want = static_cast<std::size_t>(end - begin);
    std::size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd, buf.data() + got, want - got, static_cast<off_t>(begin + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return PosixError("read " + what, errno);
      if (n == 0) return UnavailableError("read " + what + ": file shrank while being read");
      got += static_cast<std::size_t>(n);
    }
    for (std::size_t i = want; i > 0; --i) {
      if (buf[i - 1] == ch) return std::optional<std::uint64_t>(begin + i - 1);
    }
    end = begin;
  }
  return std::optional<std::uint64_t>();
}

// The id of the last complete line of a file whose size is `size` and whose
// last byte is a newline.
Result<LineId> LastLineId(int fd, std::uint64_t size, const std::string& what) {
  if (size == 0) return LineId{};
  KURA_ASSIGN_OR_RETURN(auto prev, FindLastByte(fd, size - 1, '\n', what));
  std::uint64_t start = prev ? *prev + 1 : 0;
  // Only the head of the line (seq) and its tail (hash) are needed.
  constexpr std::uint64_t kMaxRead = 1 << 20;
  std::uint64_t length = std::min<std::uint64_t>(size - 1 - start, kMaxRead);
  std::uint64_t from = size - 1 - start > kMaxRead ? size - 1 - kMaxRead : start;
  std::string line(static_cast<std::size_t>(length), '\0');
  std::size_t got = 0;
  while (got < line.size()) {
    ssize_t n = ::pread(fd, line.data() + got, line.size() - got, static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return PosixError("read " + what, n < 0 ? errno : EIO);
    got += static_cast<std::size_t>(n);
  }
  return ParseLineId(line);
}

}  // namespace

// --- Sinks.

// Where the exporter delivers. Deliver() returns OK only once the rows are
// as safe as the sink can make them (file: written and fsynced; TCP:
// acknowledged by the receiver's TCP stack; UDP and Unix datagrams: handed
// to the kernel); on failure the exporter calls Close() and later retries
// from the first row. Used by the exporter thread only.
class Exporter::Sink {
 public:
  virtual ~Sink() = default;
  // Opens the file or connects; OK at once when already open.
  virtual Status Open() = 0;
  // The last entry the destination provably holds, found by Open() (a file
  // sink reads its file's last line); nullopt when unknown or already used.
  virtual std::optional<LineId> Held() const { return std::nullopt; }
  virtual void ForgetHeld() {}
  virtual Status Deliver(std::span<const store::AuditRow> rows) = 0;
  virtual void Close() = 0;
  // For log lines: the kind and destination, never anything secret.
  virtual std::string Describe() const = 0;

  class File;
  class Syslog;
};

// JSON lines, rotated by size. Exactly once even across a crash: on
// (re)opening, the sink reads the last line of the file (or of path.1 right
// after a rotation) and reports it through Held(), so the exporter skips
// entries already there; a torn last line from a crash mid-write is cut off
// and written again.
class Exporter::Sink::File final : public Exporter::Sink {
 public:
  explicit File(SinkConfig config) : config_(std::move(config)), dir_(DirOf(config_.path)) {}

  std::optional<LineId> Held() const override { return held_; }
  void ForgetHeld() override { held_.reset(); }

  Status Deliver(std::span<const store::AuditRow> rows) override {
    KURA_RETURN_IF_ERROR(Open());
    std::string buf;
    for (const auto& row : rows) {
      std::string line = ExportLine(row);
      line += '\n';
      // Rotate before a line that would overflow the file, never mid-line;
      // a file always holds at least one line.
      if (size_ + buf.size() > 0 && size_ + buf.size() + line.size() > config_.max_bytes) {
        KURA_RETURN_IF_ERROR(Flush(&buf));
        KURA_RETURN_IF_ERROR(Rotate());
      }
      buf += line;
    }
    return Flush(&buf);
  }

  void Close() override {
    fd_.Reset();
    held_.reset();
  }

  std::string Describe() const override { return "file " + config_.path; }

  Status Open() override {
    if (fd_.valid()) return Status::Ok();
    Close();
    // 0640: the export holds who accessed what (no secrets, but personal
    // metadata); a log shipper in the owner's group may read it.
    Fd fd(::open(config_.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fd.valid()) return PosixError("open " + config_.path, errno);
    KURA_RETURN_IF_ERROR(SyncDir(dir_));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return PosixError("stat " + config_.path, errno);
    std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    KURA_ASSIGN_OR_RETURN(auto newline, FindLastByte(fd.get(), size, '\n', config_.path));
    std::uint64_t complete = newline ? *newline + 1 : 0;
    if (complete < size) {
      // A torn line: the process died mid-write, before the batch was
      // fsynced and the position saved; the entry is written again.
      if (::ftruncate(fd.get(), static_cast<off_t>(complete)) != 0) return PosixError("truncate " + config_.path, errno);
      if (::fsync(fd.get()) != 0) return PosixError("fsync " + config_.path, errno);
      log::Warn("audit export: cut a partial last line from " + config_.path + " (it is written again)");
      size = complete;
    }
    LineId last;
    if (size > 0) {
      KURA_ASSIGN_OR_RETURN(last, LastLineId(fd.get(), size, config_.path));
    } else {
      // Just after a rotation the newest entries are in path.1.
      std::string previous = Rotated(1);
      Fd old(::open(previous.c_str(), O_RDONLY | O_CLOEXEC));
      if (old.valid()) {
        struct stat ost {};
        if (::fstat(old.get(), &ost) != 0) return PosixError("stat " + previous, errno);
        std::uint64_t osize = static_cast<std::uint64_t>(ost.st_size);
        KURA_ASSIGN_OR_RETURN(auto nl, FindLastByte(old.get(), osize, '\n', previous));
        if (nl) {
          KURA_ASSIGN_OR_RETURN(last, LastLineId(old.get(), *nl + 1, previous));
        }
      } else if (errno != ENOENT) {
        return PosixError("open " + previous, errno);
      }
    }
    fd_ = std::move(fd);
    size_ = size;
    if (last.seq >= 0) held_ = last;
    return Status::Ok();
  }

 private:
  std::string Rotated(int n) const { return config_.path + "." + std::to_string(n); }

  // Writes and fsyncs `buf`: on OK its lines are durable.
  Status Flush(std::string* buf) {
    if (buf->empty()) return Status::Ok();
    KURA_RETURN_IF_ERROR(WriteAll(fd_.get(), *buf, config_.path));
    size_ += buf->size();
    buf->clear();
    if (::fdatasync(fd_.get()) != 0) return PosixError("fsync " + config_.path, errno);
    return Status::Ok();
  }

  // path.(k-1) → path.k … path → path.1, the oldest beyond keep_files
  // replaced. Every line is fsynced before, and each rename is atomic, so a
  // crash at any point leaves every entry in exactly one file.
  Status Rotate() {
    fd_.Reset();
    for (int i = config_.keep_files - 1; i >= 1; --i) {
      if (::rename(Rotated(i).c_str(), Rotated(i + 1).c_str()) != 0 && errno != ENOENT) {
        return PosixError("rename " + Rotated(i), errno);
      }
    }
    if (::rename(config_.path.c_str(), Rotated(1).c_str()) != 0) return PosixError("rename " + config_.path, errno);
    KURA_RETURN_IF_ERROR(SyncDir(dir_));
    Fd fd(::open(config_.path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!fd.valid()) return PosixError("open " + config_.path, errno);
    KURA_RETURN_IF_ERROR(SyncDir(dir_));
    fd_ = std::move(fd);
    size_ = 0;
    return Status::Ok();
  }

  SinkConfig config_;
  std::string dir_;
  Fd fd_;
  std::uint64_t size_ = 0;
  std::optional<LineId> held_;  // set by Open(), until the exporter used it
};

// RFC 5424 messages over UDP (RFC 5426: one message per datagram), TCP
// (RFC 6587 §3.4.1 octet counting: "LEN SP MSG") or a Unix datagram socket.
//
// A small client on plain POSIX sockets rather than a library: no Debian
// package offers RFC 5424 client framing to a configurable endpoint (the libc
// syslog(3) speaks RFC 3164 to /dev/log only), and this module must stay free
// of Asio, which only the http layer uses.
class Exporter::Sink::Syslog final : public Exporter::Sink {
 public:
  Syslog(SinkConfig config, Endpoint endpoint)
      : config_(std::move(config)),
        endpoint_(std::move(endpoint)),
        hostname_(LocalHostname()),
        procid_(std::to_string(::getpid())) {}

  Status Open() override { return fd_.valid() ? Status::Ok() : Connect(); }

  Status Deliver(std::span<const store::AuditRow> rows) override {
    if (!fd_.valid()) KURA_RETURN_IF_ERROR(Connect());
    // Whether this connection has carried a batch before (a stale one can
    // fail only then).
    const bool fresh = std::exchange(fresh_, false);
    if (endpoint_.transport == Transport::kTcp) {
      // A receiver that restarted closed our connection; writing into it
      // would "succeed" into the void. Detect that before sending.
      if (!fresh && !Alive()) {
        KURA_RETURN_IF_ERROR(Connect());
        fresh_ = false;
      }
      return SendStream(rows);
    }
    Status s = SendDatagrams(rows);
    if (!s.ok() && !fresh) {
      // A datagram receiver that restarted (new socket at the same path, or
      // ICMP port unreachable) makes the old connection refuse; reconnect
      // once at once instead of waiting for the backoff.
      KURA_RETURN_IF_ERROR(Connect());
      fresh_ = false;
      s = SendDatagrams(rows);
    }
    return s;
  }

  void Close() override { fd_.Reset(); }

  std::string Describe() const override { return "syslog " + config_.address; }

 private:
  // "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG" (RFC 5424 §6).
  std::string Message(const store::AuditRow& row) const {
    // Severity: informational for a success, notice for anything else
    // (denials and failures are what a SIEM alerts on).
    int severity = row.outcome == "success" ? 6 : 5;
    std::string m = "<" + std::to_string(config_.facility * 8 + severity) + ">1 ";
    m += TimestampMs(row.at_ms);
    m += ' ';
    m += hostname_;
    m += ' ';
    m += config_.app_name;
    m += ' ';
    m += procid_;
    m += " audit [";
    m += kSdId;
    m += " seq=\"" + std::to_string(row.seq) + "\"] ";
    m += ExportLine(row);  // ASCII only, so no BOM (RFC 5424 §6.4)
    return m;
  }

  Status Connect() {
    Close();
    if (endpoint_.transport == Transport::kUnix) {
      Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!fd.valid()) return PosixError("socket", errno);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path, endpoint_.path.c_str(), endpoint_.path.size() + 1);
      if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return PosixError("connect " + config_.address, errno);
      }
      SetSendTimeout(fd.get());
      fd_ = std::move(fd);
      fresh_ = true;
      return Status::Ok();
    }
    const bool tcp = endpoint_.transport == Transport::kTcp;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(endpoint_.host.c_str(), endpoint_.port.c_str(), &hints, &found);
    if (rc != 0) return UnavailableError("resolve " + config_.address + ": " + ::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
    Status last = UnavailableError("connect " + config_.address + ": no address");
    for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
      Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
      if (!fd.valid()) {
        last = PosixError("socket", errno);
        continue;
      }
      Status s = tcp ? ConnectWithTimeout(fd.get(), ai->ai_addr, ai->ai_addrlen)
                     : (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0 ? Status::Ok()
                                                                                : PosixError("connect", errno));
      if (!s.ok()) {
        last = UnavailableError(s.message() + " (" + config_.address + ")");
        continue;
      }
      if (tcp) {
        int one = 1;
        // The batch is acknowledged as a whole; no reason to hold back its tail.
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      SetSendTimeout(fd.get());
      fd_ = std::move(fd);
      fresh_ = true;
      return Status::Ok();
    }
    return last;
  }

  static void SetSendTimeout(int fd) {
    timeval tv{};
    tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kIoTimeout).count();
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  static Status ConnectWithTimeout(int fd, const sockaddr* addr, socklen_t len) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return PosixError("fcntl", errno);
    if (::connect(fd, addr, len) != 0) {
      if (errno != EINPROGRESS) return PosixError("connect", errno);
      pollfd p{fd, POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kIoTimeout).count()));
      } while (n < 0 && errno == EINTR);
      if (n < 0) return PosixError("poll", errno);
      if (n == 0) return UnavailableError("connect: timed out");
      int err = 0;
      socklen_t err_len = sizeof err;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) return PosixError("getsockopt", errno);
      if (err != 0) return PosixError("connect", err);
    }
    if (::fcntl(fd, F_SETFL, flags) != 0) return PosixError("fcntl", errno);
    return Status::Ok();
  }

  // Whether the TCP connection is still open for writing: the receiver has
  // neither closed nor reset it. Receivers send nothing; stray bytes are
  // discarded.
  bool Alive() {
    for (;;) {
      pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
      int n = ::poll(&p, 1, 0);
      if (n < 0) return errno == EINTR ? true : false;
      if (n == 0) return true;
      if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return false;
      char junk[512];
      ssize_t got = ::recv(fd_.get(), junk, sizeof junk, MSG_DONTWAIT);
      if (got == 0) return false;
      if (got < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
  }

  Status SendStream(std::span<const store::AuditRow> rows) {
    std::string frames;
    for (const auto& row : rows) {
      std::string m = Message(row);
      frames += std::to_string(m.size());
      frames += ' ';
      frames += m;
    }
    std::string_view rest = frames;
    while (!rest.empty()) {
      ssize_t n = ::send(fd_.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return UnavailableError("send to " + config_.address + ": timed out");
        return PosixError("send to " + config_.address, errno);
      }
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    return WaitAcknowledged();
  }

  // send() returning means only "in our kernel's buffer". The position may
  // advance only once the receiver's TCP stack acknowledged every byte;
  // otherwise a receiver that restarts loses what was in flight.
  Status WaitAcknowledged() {
    const auto deadline = SteadyClock::now() + kIoTimeout;
    for (;;) {
      int unacked = 0;
      if (::ioctl(fd_.get(), SIOCOUTQ, &unacked) != 0) return PosixError("ioctl SIOCOUTQ", errno);
      // Checked after the queue: a reset empties the queue, but changes the
      // state first, so an empty queue in an open state means acknowledged.
      tcp_info info{};
      socklen_t len = sizeof info;
      if (::getsockopt(fd_.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return PosixError("TCP_INFO", errno);
      if (info.tcpi_state != TCP_ESTABLISHED && info.tcpi_state != TCP_CLOSE_WAIT) {
        return UnavailableError("send to " + config_.address + ": connection closed by the receiver");
      }
      if (unacked == 0) return Status::Ok();
      if (SteadyClock::now() >= deadline) {
        return UnavailableError("send to " + config_.address + ": not acknowledged within " +
                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kIoTimeout).count()) +
                                "s");
      }
      pollfd p{fd_.get(), POLLRDHUP, 0};
      ::poll(&p, 1, 2);
    }
  }

  Status SendDatagrams(std::span<const store::AuditRow> rows) {
    for (const auto& row : rows) {
      std::string m = Message(row);
      if (m.size() > kMaxDatagram) m.resize(kMaxDatagram);
      for (;;) {
        ssize_t n = ::send(fd_.get(), m.data(), m.size(), MSG_NOSIGNAL);
        if (n >= 0) break;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return UnavailableError("send to " + config_.address + ": timed out");
        return PosixError("send to " + config_.address, errno);
      }
    }
    return Status::Ok();
  }

  SinkConfig config_;
  Endpoint endpoint_;
  std::string hostname_;
  std::string procid_;
  Fd fd_;
  bool fresh_ = true;  // connected, no batch sent on it yet
};

// --- Free functions.

SinkConfig SinkConfigFrom(const Config::Audit::SinkSettings& s) {
  SinkConfig c;
  c.name = s.name;
  c.type = s.type;
  c.path = s.path;
  c.max_bytes = s.max_bytes;
  c.keep_files = s.keep_files;
  c.address = s.address;
  c.app_name = s.app_name;
  c.facility = s.facility;
  return c;
}

std::string ExportLine(const store::AuditRow& row) {
  std::string_view entry = AsString(row.entry);
  std::string hash = HexEncode(row.hash);
  // Canonical entries are one-line ASCII JSON objects; anything else means a
  // damaged row (the verifier names it). Export a stub that keeps the seq
  // visible instead of a line that would break the JSON-lines framing.
  bool object = entry.size() >= 2 && entry.front() == '{' && entry.back() == '}' &&
                entry.find_first_of("\n\r") == std::string_view::npos;
  if (!object) return "{\"seq\":" + std::to_string(row.seq) + ",\"malformed\":true,\"hash\":\"" + hash + "\"}";
  std::string out;
  out.reserve(entry.size() + hash.size() + 12);
  out.append(entry.substr(0, entry.size() - 1));
  if (entry.size() > 2) out += ',';
  out += "\"hash\":\"";
  out += hash;
  out += "\"}";
  return out;
}

// --- Exporter.

Result<std::unique_ptr<Exporter>> Exporter::Create(store::Store* store, SinkConfig sink, std::string state_dir) {
  if (store == nullptr) return InvalidArgumentError("audit export: no store");
  if (!ValidSinkName(sink.name)) {
    return InvalidArgumentError("audit export: \"" + sink.name +
                                "\" is not a sink name (1-64 of A-Z a-z 0-9 . _ -, not starting with '.')");
  }
  const std::string who = "audit export \"" + sink.name + "\": ";
  std::unique_ptr<Sink> out;
  if (sink.type == "file") {
    if (sink.path.empty()) return InvalidArgumentError(who + "a file sink needs a path");
    if (sink.max_bytes == 0) return InvalidArgumentError(who + "max_bytes must be greater than zero");
    if (sink.keep_files < 1) return InvalidArgumentError(who + "keep_files must be at least 1");
    out = std::make_unique<Sink::File>(sink);
  } else if (sink.type == "syslog") {
    auto endpoint = ParseAddress(sink.address);
    if (!endpoint.ok()) return InvalidArgumentError(who + endpoint.status().message());
    if (sink.app_name.empty() || sink.app_name.size() > 48 || !PrintUsAscii(sink.app_name)) {
      return InvalidArgumentError(who + "app_name must be 1-48 printable ASCII characters without spaces");
    }
    if (sink.facility < 0 || sink.facility > 23) return InvalidArgumentError(who + "facility must be 0-23");
    out = std::make_unique<Sink::Syslog>(sink, std::move(*endpoint));
  } else {
    return InvalidArgumentError(who + "type \"" + sink.type + "\" is not file or syslog");
  }
  if (state_dir.empty()) return InvalidArgumentError(who + "no state directory");
  std::error_code ec;
  if (std::filesystem::create_directories(state_dir, ec)) {
    // Only kura reads its own positions.
    std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all, ec);
  }
  if (ec) return UnavailableError(who + "cannot create " + state_dir + ": " + ec.message());

  std::string state_path = (std::filesystem::path(state_dir) / (sink.name + ".pos")).string();
  std::unique_ptr<Exporter> exporter(new Exporter(store, std::move(sink), std::move(state_path), std::move(out)));
  auto saved = ReadPosition(exporter->state_path_);
  if (!saved.ok()) {
    // Starting over sends entries twice, never loses one; a file sink still
    // skips what its file already holds.
    log::Warn(who + saved.status().message() + "; exporting from the first entry");
  } else if (saved->has_value()) {
    exporter->position_ = **saved;
    exporter->saved_position_ = **saved;
  } else {
    exporter->saved_position_ = 0;  // no file means "from entry 0": nothing to write yet
  }
  // A position past the end means the log was replaced by an older one (a
  // restore): follow the log as it is now rather than wait for a seq that
  // would skip the entries written from here on.
  if (auto size = store->AuditSize(); size.ok() && exporter->position_.load() > *size) {
    log::Warn(who + "saved position " + std::to_string(exporter->position_.load()) + " is past the end of the log (" +
              std::to_string(*size) + " entries); continuing from there");
    exporter->position_ = *size;
  }
  return exporter;
}

Exporter::Exporter(store::Store* store, SinkConfig sink, std::string state_path, std::unique_ptr<Sink> out)
    : store_(store), config_(std::move(sink)), state_path_(std::move(state_path)), sink_(std::move(out)) {}

Exporter::~Exporter() { Stop(); }

void Exporter::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread(&Exporter::Run, this);
}

void Exporter::Notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_one();
}

void Exporter::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Exporter::Drain() {
  for (;;) {
    const std::int64_t from = position_.load();
    if (saved_position_ != from) {
      // Delivered before, but the position file could not be written then.
      KURA_RETURN_IF_ERROR(WritePosition(state_path_, from));
      saved_position_ = from;
    }
    KURA_RETURN_IF_ERROR(sink_->Open());
    if (auto held = sink_->Held()) {
      // The file already holds entries up to held->seq (the exporter stopped
      // between writing them and saving its position). Skip them only if
      // that line is this log's entry: a file left over from another log
      // must not swallow entries.
      if (held->seq >= from) {
        KURA_ASSIGN_OR_RETURN(std::vector<store::AuditRow> check, store_->ReadAudit(held->seq, 1));
        if (check.size() == 1 && check[0].seq == held->seq && HexEncode(check[0].hash) == held->hash) {
          log::Info("audit export \"" + config_.name + "\": entries " + std::to_string(from) + " to " +
                    std::to_string(held->seq) + " are already in " + sink_->Describe() + "; continuing after them");
          position_.store(held->seq + 1);
          sink_->ForgetHeld();
          continue;  // saves the position, then reads on
        }
        log::Warn("audit export \"" + config_.name + "\": " + sink_->Describe() + " ends with an entry " +
                  std::to_string(held->seq) + " that is not this log's; appending from entry " + std::to_string(from));
      }
      sink_->ForgetHeld();
    }
    KURA_ASSIGN_OR_RETURN(std::vector<store::AuditRow> rows, store_->ReadAudit(from, kBatchSize));
    if (rows.empty()) return Status::Ok();
    // The log has no gaps; a row out of place would make the export skip or
    // repeat entries, so stop and say so rather than carry on.
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].seq != from + static_cast<std::int64_t>(i)) {
        return DataLossError("audit log read from entry " + std::to_string(from) + " returned entry " +
                             std::to_string(rows[i].seq) + " at place " + std::to_string(i));
      }
    }
    KURA_RETURN_IF_ERROR(sink_->Deliver(rows));
    const std::int64_t next = rows.back().seq + 1;
    position_.store(next);
    KURA_RETURN_IF_ERROR(WritePosition(state_path_, next));
    saved_position_ = next;
    if (rows.size() < static_cast<std::size_t>(kBatchSize)) return Status::Ok();
  }
}

void Exporter::Run() {
  const std::string who = "audit export \"" + config_.name + "\" (" + sink_->Describe() + "): ";
  auto backoff = kMinBackoff;
  bool failing = false;
  bool final_pass = false;
  auto last_warning = SteadyClock::time_point();
  for (;;) {
    Status s = Drain();
    if (s.ok()) {
      if (failing) log::Info(who + "delivering again from entry " + std::to_string(position_.load()));
      failing = false;
      backoff = kMinBackoff;
    } else {
      sink_->Close();
      backoff = failing ? std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff) : kMinBackoff;
      auto now = SteadyClock::now();
      if (!failing || now - last_warning >= kWarnEvery) {
        // Entries wait in the durable log; nothing is lost while this repeats.
        log::Warn(who + s.message() + "; entries from " + std::to_string(position_.load()) +
                  " wait in the log, retrying with backoff");
        last_warning = now;
      }
      failing = true;
    }
    if (final_pass) break;
    std::unique_lock lock(mu_);
    if (!stop_) {
      if (failing) {
        // Notify() does not cut a backoff short: a busy server must not turn
        // a down receiver into a retry storm.
        cv_.wait_for(lock, backoff, [this] { return stop_; });
      } else {
        cv_.wait_for(lock, kPollInterval, [this] { return stop_ || notified_; });
      }
    }
    notified_ = false;
    if (stop_) {
      // One last pass delivers what was committed before Stop(), unless the
      // sink is failing: shutdown must not wait for a receiver that is down.
      if (failing) break;
      final_pass = true;
    }
  }
  sink_->Close();
}

}  // namespace kura::audit
