#include "audit/export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/entry.h"
#include "core/bytes.h"
#include "core/loopback_for_test.h"
#include "store/store.h"

namespace kura::audit {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// Polls `done` until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

std::vector<std::int64_t> Range(std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = begin; i < end; ++i) out.push_back(i);
  return out;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// --- RFC 5424 parsing, written from the RFC's ABNF (§6), independent of the
// code under test.
struct SyslogMessage {
  int pri = -1;
  int version = -1;
  std::string timestamp, hostname, app_name, procid, msgid, structured_data, msg;
};

std::optional<SyslogMessage> ParseRfc5424(std::string_view m) {
  SyslogMessage out;
  auto take_field = [&m](std::size_t max_len, std::string* field) -> bool {
    auto sp = m.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > max_len) return false;
    std::string_view f = m.substr(0, sp);
    for (char ch : f) {
      if (ch < 33 || ch > 126) return false;  // PRINTUSASCII
    }
    *field = std::string(f);
    m.remove_prefix(sp + 1);
    return true;
  };
  // PRI = "<" PRIVAL ">", PRIVAL 1-3 digits, 0-191.
  if (m.empty() || m.front() != '<') return std::nullopt;
  auto close = m.find('>');
  if (close == std::string_view::npos || close < 2 || close > 4) return std::nullopt;
  std::string prival(m.substr(1, close - 1));
  if (prival.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  if (prival.size() > 1 && prival[0] == '0') return std::nullopt;
  out.pri = std::stoi(prival);
  if (out.pri > 191) return std::nullopt;
  m.remove_prefix(close + 1);
  // VERSION = NONZERO-DIGIT 0*2DIGIT
  std::string version;
  if (!take_field(3, &version) || version[0] == '0') return std::nullopt;
  out.version = std::stoi(version);
  if (!take_field(64, &out.timestamp) || !take_field(255, &out.hostname) || !take_field(48, &out.app_name) ||
      !take_field(128, &out.procid) || !take_field(32, &out.msgid)) {
    return std::nullopt;
  }
  // STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT
  if (m.starts_with("-")) {
    out.structured_data = "-";
    m.remove_prefix(1);
  } else {
    std::size_t i = 0;
    while (i < m.size() && m[i] == '[') {
      bool in_quotes = false;
      ++i;
      for (; i < m.size(); ++i) {
        if (in_quotes && m[i] == '\\') {
          ++i;
        } else if (m[i] == '"') {
          in_quotes = !in_quotes;
        } else if (!in_quotes && m[i] == ']') {
          break;
        }
      }
      if (i >= m.size()) return std::nullopt;
      ++i;
    }
    if (i == 0) return std::nullopt;
    out.structured_data = std::string(m.substr(0, i));
    m.remove_prefix(i);
  }
  if (!m.empty()) {
    if (m.front() != ' ') return std::nullopt;
    out.msg = std::string(m.substr(1));
  }
  return out;
}

std::string ExpectedTimestamp(std::int64_t at_ms) {
  std::time_t secs = static_cast<std::time_t>(at_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(at_ms % 1000));
  return std::string(buf) + ms;
}

// --- Receivers on real sockets.

// Reads datagrams (UDP or Unix) from a bound socket on its own thread.
class DatagramReceiver {
 public:
  explicit DatagramReceiver(int fd) : fd_(fd) {
    int size = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    thread_ = std::thread([this] { Loop(); });
  }
  ~DatagramReceiver() { Stop(); }

  static std::unique_ptr<DatagramReceiver> Udp(int* port) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    *port = BindLoopback(fd);
    if (*port < 0) {
      if (fd >= 0) ::close(fd);
      return nullptr;
    }
    return std::make_unique<DatagramReceiver>(fd);
  }

  static std::unique_ptr<DatagramReceiver> Unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ::unlink(path.c_str());
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return nullptr;
    return std::make_unique<DatagramReceiver>(fd);
  }

  // Stops reading and closes the socket (a receiver going away).
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::vector<std::string> Messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  std::size_t Count() {
    std::lock_guard lock(mu_);
    return messages_.size();
  }

 private:
  void Loop() {
    std::vector<char> buf(1 << 17);
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n <= 0) continue;
      std::lock_guard lock(mu_);
      messages_.emplace_back(buf.data(), static_cast<std::size_t>(n));
    }
  }

  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> messages_;
};

// A TCP syslog receiver with RFC 6587 octet-counting framing. Optionally
// shrinks its receive buffer and drops the connection (and stops listening)
// after reading `drop_after` bytes: a receiver that dies mid-stream.
class TcpReceiver {
 public:
  explicit TcpReceiver(int port = 0, int rcvbuf = 0, std::size_t drop_after = 0) : drop_after_(drop_after) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Set before listen() so accepted connections inherit it (and the
    // window it implies).
    if (rcvbuf > 0) ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    port_ = BindLoopback(listen_fd_, port);
    ok_ = port_ > 0 && ::listen(listen_fd_, 8) == 0;
    thread_ = std::thread([this] { Loop(); });
  }
  ~TcpReceiver() { Stop(); }

  bool ok() const { return ok_; }
  int port() const { return port_; }
  bool dropped() const { return dropped_; }
  int connections() const { return connections_; }
  bool framing_error() const { return framing_error_; }

  // Reads what has arrived, then closes the connection and the listener.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    CloseAll();
  }

  std::vector<std::string> Frames() {
    std::lock_guard lock(mu_);
    return frames_;
  }
  std::size_t Count() {
    std::lock_guard lock(mu_);
    return frames_.size();
  }

 private:
  void CloseAll() {
    if (conn_fd_ >= 0) ::close(conn_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    conn_fd_ = listen_fd_ = -1;
  }

  // Frames: MSG-LEN SP SYSLOG-MSG, MSG-LEN = NONZERO-DIGIT *DIGIT.
  void Parse() {
    for (;;) {
      auto sp = buffer_.find(' ');
      if (sp == std::string::npos) {
        if (buffer_.size() > 10) framing_error_ = true;
        return;
      }
      std::string len_text = buffer_.substr(0, sp);
      if (len_text.empty() || len_text.size() > 9 || len_text[0] == '0' ||
          len_text.find_first_not_of("0123456789") != std::string::npos) {
        framing_error_ = true;
        return;
      }
      std::size_t len = std::stoul(len_text);
      if (buffer_.size() < sp + 1 + len) return;
      std::lock_guard lock(mu_);
      frames_.push_back(buffer_.substr(sp + 1, len));
      buffer_.erase(0, sp + 1 + len);
    }
  }

  void Loop() {
    std::vector<char> buf(1 << 16);
    while (!stop_ && !dropped_) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {conn_fd_, POLLIN, 0}};
      if (::poll(p, conn_fd_ >= 0 ? 2 : 1, 20) <= 0) continue;
      if (p[0].revents & POLLIN) {
        int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd >= 0) {
          if (conn_fd_ >= 0) ::close(conn_fd_);
          conn_fd_ = fd;
          buffer_.clear();  // a torn frame of an old connection is not a frame
          ++connections_;
        }
        continue;
      }
      if (conn_fd_ < 0 || !(p[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      std::size_t want = buf.size();
      if (drop_after_ > 0) want = std::min(want, drop_after_ - total_);
      ssize_t n = ::recv(conn_fd_, buf.data(), want, 0);
      if (n <= 0) {
        ::close(conn_fd_);
        conn_fd_ = -1;
        buffer_.clear();
        continue;
      }
      total_ += static_cast<std::size_t>(n);
      buffer_.append(buf.data(), static_cast<std::size_t>(n));
      Parse();
      if (drop_after_ > 0 && total_ >= drop_after_) {
        // Dies with unread bytes in its buffer: the kernel answers with RST.
        CloseAll();
        dropped_ = true;
      }
    }
    // A graceful stop reads what already arrived before closing.
    while (!dropped_ && conn_fd_ >= 0) {
      ssize_t n = ::recv(conn_fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n <= 0) break;
      buffer_.append(buf.data(), static_cast<std::size_t>(n));
      Parse();
    }
  }

  std::size_t drop_after_;
  int listen_fd_ = -1;
  int conn_fd_ = -1;
  int port_ = 0;
  bool ok_ = false;
  std::size_t total_ = 0;
  std::string buffer_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> dropped_{false};
  std::atomic<bool> framing_error_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> frames_;
};

// --- Fixture: a real SQLite store in a temp dir, entries appended through
// the real audit entry encoding.
class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short, so a Unix socket path inside fits sun_path.
    char tmpl[] = "/tmp/kx-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    state_dir_ = dir_ + "/state";
    store::SqliteOptions options;
    options.path = dir_ + "/db/kura.db";
    options.durable = false;
    auto s = store::OpenSqliteStore(options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Appends `n` entries: every fifth a denial, the rest successes.
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      std::int64_t k = appended_++;
      Event e;
      e.at_ms = 1767225600000 + k * 1001;  // 2026-01-01T00:00:00Z onwards
      e.principal = "apikey:k" + std::to_string(k % 3);
      e.tenant = "acme";
      e.action = "record.read";
      e.resource = "customers/r" + std::to_string(k);
      bool denied = k % 5 == 0;
      e.outcome = denied ? "permission_denied" : "success";
      e.client = "127.0.0.1";
      e.request_id = "req-" + std::to_string(k);
      Status s = store_->AppendAudit(PendingEntry(e));
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }

  std::vector<store::AuditRow> Rows() {
    auto rows = store_->ReadAudit(0, static_cast<int>(appended_) + 1);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<store::AuditRow>{};
  }

  SinkConfig FileSink(std::string path, std::uint64_t max_bytes = 64u << 20, int keep_files = 100) {
    SinkConfig c;
    c.name = "siem-file";
    c.type = "file";
    c.path = std::move(path);
    c.max_bytes = max_bytes;
    c.keep_files = keep_files;
    return c;
  }

  SinkConfig SyslogSink(std::string address) {
    SinkConfig c;
    c.name = "siem-syslog";
    c.type = "syslog";
    c.address = std::move(address);
    c.app_name = "kura-test";
    c.facility = 10;  // authpriv
    return c;
  }

  std::unique_ptr<Exporter> MakeExporter(SinkConfig sink) {
    auto e = Exporter::Create(store_.get(), std::move(sink), state_dir_);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(*e) : nullptr;
  }

  // The seqs of the JSON lines in path.keep … path.1, path (oldest first),
  // checking each line is exactly the export line of the stored entry.
  std::vector<std::int64_t> FileSeqs(const std::string& path, int keep) {
    auto rows = Rows();
    std::vector<std::int64_t> seqs;
    std::vector<std::string> files;
    for (int i = keep; i >= 1; --i) files.push_back(path + "." + std::to_string(i));
    files.push_back(path);
    for (const auto& f : files) {
      if (!std::filesystem::exists(f)) continue;
      for (const auto& line : ReadLines(f)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << line;
        if (j.is_discarded()) continue;
        std::int64_t seq = j.at("seq").get<std::int64_t>();
        seqs.push_back(seq);
        if (seq >= 0 && seq < static_cast<std::int64_t>(rows.size())) {
          EXPECT_EQ(line, ExportLine(rows[static_cast<std::size_t>(seq)])) << f;
        } else {
          ADD_FAILURE() << "line for an entry that does not exist: " << line;
        }
      }
    }
    return seqs;
  }

  // Checks messages are RFC 5424 with our fields and returns their seqs.
  std::vector<std::int64_t> SyslogSeqs(const std::vector<std::string>& messages, const SinkConfig& sink) {
    auto rows = Rows();
    std::vector<std::int64_t> seqs;
    static const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    static const std::regex kSd(R"re(\[kura@32473 seq="(\d+)"\])re");
    for (const auto& m : messages) {
      auto parsed = ParseRfc5424(m);
      if (!parsed) {
        ADD_FAILURE() << "not RFC 5424: " << m;
        continue;
      }
      EXPECT_EQ(parsed->version, 1);
      EXPECT_EQ(parsed->app_name, sink.app_name);
      EXPECT_EQ(parsed->msgid, "audit");
      EXPECT_EQ(parsed->procid, std::to_string(::getpid()));
      EXPECT_TRUE(std::regex_match(parsed->timestamp, kTimestamp)) << parsed->timestamp;
      std::smatch sd;
      if (!std::regex_match(parsed->structured_data, sd, kSd)) {
        ADD_FAILURE() << "structured data: " << parsed->structured_data;
        continue;
      }
      std::int64_t seq = std::stoll(sd[1]);
      seqs.push_back(seq);
      if (seq < 0 || seq >= static_cast<std::int64_t>(rows.size())) {
        ADD_FAILURE() << "message for an entry that does not exist: " << m;
        continue;
      }
      const auto& row = rows[static_cast<std::size_t>(seq)];
      EXPECT_EQ(parsed->msg, ExportLine(row));
      EXPECT_EQ(parsed->timestamp, ExpectedTimestamp(row.at_ms));
      int severity = row.outcome == "success" ? 6 : 5;
      EXPECT_EQ(parsed->pri, sink.facility * 8 + severity) << m;
    }
    return seqs;
  }

  std::string dir_;
  std::string state_dir_;
  std::unique_ptr<store::Store> store_;
  std::int64_t appended_ = 0;
};

TEST_F(ExportTest, ExportLineIsTheEntryWithItsHash) {
  Event e;
  e.at_ms = 1767225600123;
  e.principal = "root";
  e.action = "tenant.create";
  e.resource = "tenants/acme";
  e.outcome = "success";
  store::AuditRow row = PendingEntry(e).Link(0, {});
  std::string entry(AsString(row.entry));
  std::string line = ExportLine(row);
  ASSERT_EQ(line, entry.substr(0, entry.size() - 1) + ",\"hash\":\"" + HexEncode(LeafHash(row.entry)) + "\"}");
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["seq"], 0);
  EXPECT_EQ(j["action"], "tenant.create");
  EXPECT_EQ(j["hash"], HexEncode(row.hash));
  EXPECT_EQ(line.find('\n'), std::string::npos);

  // A damaged row still gives one JSON line that names its seq.
  store::AuditRow bad;
  bad.seq = 7;
  bad.entry = ToBytes("{\"v\":1,\n\"seq\":7}");
  bad.hash = Bytes(32, 0xab);
  auto b = nlohmann::json::parse(ExportLine(bad));
  EXPECT_EQ(b["seq"], 7);
  EXPECT_EQ(b["malformed"], true);
  EXPECT_EQ(ExportLine(bad).find('\n'), std::string::npos);
}

TEST_F(ExportTest, SinkConfigFromCopiesEveryField) {
  Config::Audit::SinkSettings s;
  s.name = "n";
  s.type = "syslog";
  s.path = "/p";
  s.max_bytes = 12345;
  s.keep_files = 7;
  s.address = "tcp://h:1";
  s.app_name = "app";
  s.facility = 3;
  SinkConfig c = SinkConfigFrom(s);
  EXPECT_EQ(c.name, "n");
  EXPECT_EQ(c.type, "syslog");
  EXPECT_EQ(c.path, "/p");
  EXPECT_EQ(c.max_bytes, 12345u);
  EXPECT_EQ(c.keep_files, 7);
  EXPECT_EQ(c.address, "tcp://h:1");
  EXPECT_EQ(c.app_name, "app");
  EXPECT_EQ(c.facility, 3);
}

TEST_F(ExportTest, CreateRefusesBadSinks) {
  auto refused = [this](SinkConfig c) {
    auto e = Exporter::Create(store_.get(), std::move(c), state_dir_);
    return !e.ok() && e.status().code() == StatusCode::kInvalidArgument;
  };
  auto file = [this] { return FileSink(dir_ + "/out.jsonl"); };
  auto syslog = [this] { return SyslogSink("udp://127.0.0.1:514"); };
  EXPECT_TRUE(Exporter::Create(store_.get(), file(), state_dir_).ok());
  EXPECT_TRUE(Exporter::Create(store_.get(), syslog(), state_dir_).ok());
  EXPECT_FALSE(Exporter::Create(nullptr, file(), state_dir_).ok());
  EXPECT_TRUE(refused([&] { auto c = file(); c.name = "../escape"; return c; }()));
  EXPECT_TRUE(refused([&] { auto c = file(); c.name = ""; return c; }()));
  EXPECT_TRUE(refused([&] { auto c = file(); c.type = "kafka"; return c; }()));
  EXPECT_TRUE(refused([&] { auto c = file(); c.path = ""; return c; }()));
  EXPECT_TRUE(refused([&] { auto c = file(); c.keep_files = 0; return c; }()));
  EXPECT_TRUE(refused([&] { auto c = file(); c.max_bytes = 0; return c; }()));
  for (const char* bad : {"tcp://host", "udp://host:0", "http://h:80", "unix://relative", "udp://::1:514", ""}) {
    EXPECT_TRUE(refused([&] { auto c = syslog(); c.address = bad; return c; }())) << bad;
  }
  EXPECT_TRUE(refused([&] { auto c = syslog(); c.app_name = "two words"; return c; }()));
  EXPECT_TRUE(refused([&] { auto c = syslog(); c.facility = 24; return c; }()));
  auto no_state_dir = Exporter::Create(store_.get(), file(), "");
  EXPECT_EQ(no_state_dir.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ExportTest, FileSinkDeliversEveryEntryOnceInOrderAcrossRotations) {
  const std::string path = dir_ + "/out/audit.jsonl";
  std::filesystem::create_directories(dir_ + "/out");
  Append(60);
  auto exporter = MakeExporter(FileSink(path, 4096, 100));
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  // The exporter follows the log while it grows.
  for (int i = 0; i < 6; ++i) {
    Append(10);
    exporter->Notify();
  }
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 120; })) << exporter->position();
  exporter->Stop();

  EXPECT_THAT(FileSeqs(path, 100), ElementsAreArray(Range(0, 120)));
  int rotated = 0;
  for (int i = 1; std::filesystem::exists(path + "." + std::to_string(i)); ++i) {
    ++rotated;
    EXPECT_LE(std::filesystem::file_size(path + "." + std::to_string(i)), 4096u);
  }
  EXPECT_GE(rotated, 5);
  EXPECT_LE(std::filesystem::file_size(path), 4096u);
  EXPECT_EQ(ReadFile(state_dir_ + "/siem-file.pos"), "kura-audit-export v1 next_seq=120\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(ExportTest, FileSinkKeepsOnlyKeepFilesRotations) {
  const std::string path = dir_ + "/audit.jsonl";
  Append(100);
  auto exporter = MakeExporter(FileSink(path, 4096, 2));
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 100; }));
  exporter->Stop();
  EXPECT_TRUE(std::filesystem::exists(path + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  // What is kept is the newest entries, contiguous and ending with the last.
  auto seqs = FileSeqs(path, 2);
  ASSERT_FALSE(seqs.empty());
  EXPECT_THAT(seqs, ElementsAreArray(Range(seqs.front(), 100)));
}

TEST_F(ExportTest, FileSinkContinuesAfterRestartWithoutLossOrDuplicate) {
  const std::string path = dir_ + "/audit.jsonl";
  Append(30);
  {
    auto first = MakeExporter(FileSink(path, 4096, 100));
    ASSERT_NE(first, nullptr);
    first->Start();
    ASSERT_TRUE(WaitFor([&] { return first->position() == 30; }));
    Append(5);  // committed before Stop(): Stop() delivers them
    first->Stop();
    EXPECT_EQ(first->position(), 35);
  }
  Append(40);  // written while no exporter runs
  auto second = MakeExporter(FileSink(path, 4096, 100));
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->position(), 35);  // resumed from the state file
  second->Start();
  Append(10);
  second->Notify();
  ASSERT_TRUE(WaitFor([&] { return second->position() == 85; }));
  second->Stop();
  EXPECT_THAT(FileSeqs(path, 100), ElementsAreArray(Range(0, 85)));
}

// A crash between writing a batch and saving the position (simulated by
// removing the state file) and a torn last line (a crash mid-write): the
// file still ends up with every entry exactly once.
TEST_F(ExportTest, FileSinkRecoversFromItsOwnFileAfterACrash) {
  const std::string path = dir_ + "/audit.jsonl";
  Append(300);  // more than one batch
  {
    auto first = MakeExporter(FileSink(path));
    ASSERT_NE(first, nullptr);
    first->Start();
    ASSERT_TRUE(WaitFor([&] { return first->position() == 300; }));
    first->Stop();
  }
  ASSERT_TRUE(std::filesystem::remove(state_dir_ + "/siem-file.pos"));
  {
    std::ofstream torn(path, std::ios::app);
    torn << "{\"v\":1,\"seq\":300,\"prev\":\"ab";
  }
  Append(10);
  auto second = MakeExporter(FileSink(path));
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->position(), 0);
  second->Start();
  ASSERT_TRUE(WaitFor([&] { return second->position() == 310; })) << second->position();
  second->Stop();
  EXPECT_THAT(FileSeqs(path, 0), ElementsAreArray(Range(0, 310)));
  EXPECT_EQ(ReadFile(state_dir_ + "/siem-file.pos"), "kura-audit-export v1 next_seq=310\n");
}

// A file from some other log must not make the exporter skip entries.
TEST_F(ExportTest, FileSinkDoesNotSkipForAForeignFile) {
  const std::string path = dir_ + "/audit.jsonl";
  std::ofstream(path) << "{\"v\":1,\"seq\":5,\"hash\":\"" << std::string(64, '0') << "\"}\n";
  Append(10);
  auto exporter = MakeExporter(FileSink(path));
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 10; }));
  exporter->Stop();
  auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 11u);
  lines.erase(lines.begin());
  auto rows = Rows();
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(lines[i], ExportLine(rows[i]));
}

TEST_F(ExportTest, FailingSinkBlocksNothingAndRecovers) {
  // The directory does not exist (root ignores permission bits, so a
  // missing directory is the failure every test user can reproduce).
  const std::string out_dir = dir_ + "/not-yet";
  const std::string path = out_dir + "/audit.jsonl";
  auto exporter = MakeExporter(FileSink(path));
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  for (int i = 0; i < 20; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    Append(1);
    exporter->Notify();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "an append waited for the export";
  }
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(exporter->position(), 0);
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/siem-file.pos"));

  std::filesystem::create_directories(out_dir);
  Append(5);
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 25; })) << exporter->position();
  exporter->Stop();
  EXPECT_THAT(FileSeqs(path, 0), ElementsAreArray(Range(0, 25)));
}

TEST_F(ExportTest, StopDoesNotWaitForAFailingSink) {
  auto exporter = MakeExporter(SyslogSink("tcp://127.0.0.1:1"));  // nothing listens on port 1
  ASSERT_NE(exporter, nullptr);
  Append(5);
  exporter->Start();
  std::this_thread::sleep_for(500ms);
  auto t0 = std::chrono::steady_clock::now();
  exporter->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(exporter->position(), 0);  // kept: the entries wait in the log
}

TEST_F(ExportTest, SyslogOverUdp) {
  int port = 0;
  auto receiver = DatagramReceiver::Udp(&port);
  ASSERT_NE(receiver, nullptr);
  SinkConfig sink = SyslogSink("udp://127.0.0.1:" + std::to_string(port));
  Append(100);
  auto exporter = MakeExporter(sink);
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  Append(50);
  exporter->Notify();
  ASSERT_TRUE(WaitFor([&] { return receiver->Count() >= 150 && exporter->position() == 150; }))
      << receiver->Count();
  exporter->Stop();
  EXPECT_THAT(SyslogSeqs(receiver->Messages(), sink), ElementsAreArray(Range(0, 150)));
}

TEST_F(ExportTest, SyslogOverUnixDatagramSocketSurvivesAReceiverRestart) {
  const std::string socket_path = dir_ + "/log.sock";
  auto receiver = DatagramReceiver::Unix(socket_path);
  ASSERT_NE(receiver, nullptr);
  SinkConfig sink = SyslogSink("unix://" + socket_path);
  sink.facility = 13;
  Append(60);
  auto exporter = MakeExporter(sink);
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 60 && receiver->Count() == 60; }));
  auto before = receiver->Messages();

  receiver->Stop();  // the syslog daemon goes away…
  ::unlink(socket_path.c_str());
  Append(40);
  exporter->Notify();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(exporter->position(), 60);  // nothing counted as sent while it is gone

  auto again = DatagramReceiver::Unix(socket_path);  // …and comes back at the same path
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 100 && again->Count() >= 40; })) << again->Count();
  exporter->Stop();
  auto after = again->Messages();
  before.insert(before.end(), after.begin(), after.end());
  EXPECT_THAT(SyslogSeqs(before, sink), ElementsAreArray(Range(0, 100)));
}

TEST_F(ExportTest, SyslogOverTcpWithOctetCounting) {
  TcpReceiver receiver;
  ASSERT_TRUE(receiver.ok());
  SinkConfig sink = SyslogSink("tcp://127.0.0.1:" + std::to_string(receiver.port()));
  Append(300);
  auto exporter = MakeExporter(sink);
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 300 && receiver.Count() == 300; })) << receiver.Count();
  exporter->Stop();
  EXPECT_FALSE(receiver.framing_error());
  EXPECT_EQ(receiver.connections(), 1);
  EXPECT_THAT(SyslogSeqs(receiver.Frames(), sink), ElementsAreArray(Range(0, 300)));
}

// The receiver goes down between batches (after reading all it was sent)
// and comes back on the same port: the exporter notices the closed
// connection before writing into it, reconnects, and nothing is lost or
// repeated.
TEST_F(ExportTest, SyslogOverTcpReconnectsAfterTheReceiverRestarts) {
  auto first = std::make_unique<TcpReceiver>();
  ASSERT_TRUE(first->ok());
  const int port = first->port();
  SinkConfig sink = SyslogSink("tcp://127.0.0.1:" + std::to_string(port));
  auto exporter = MakeExporter(sink);
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  Append(50);
  exporter->Notify();
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 50 && first->Count() == 50; }));
  first->Stop();
  auto frames = first->Frames();
  EXPECT_FALSE(first->framing_error());

  Append(50);  // while the receiver is down
  exporter->Notify();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(exporter->position(), 50);

  TcpReceiver second(port);
  ASSERT_TRUE(second.ok());
  Append(20);
  exporter->Notify();
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 120 && second.Count() >= 70; })) << second.Count();
  exporter->Stop();
  EXPECT_FALSE(second.framing_error());
  auto more = second.Frames();
  frames.insert(frames.end(), more.begin(), more.end());
  EXPECT_THAT(SyslogSeqs(frames, sink), ElementsAreArray(Range(0, 120)));
}

// The receiver dies in the middle of a batch with unread bytes (its kernel
// resets the connection): the batch was not acknowledged, so the exporter
// sends it again to the restarted receiver. Nothing is lost; only entries of
// that in-flight batch may arrive twice.
TEST_F(ExportTest, SyslogOverTcpLosesNothingWhenTheReceiverDiesMidBatch) {
  Append(600);  // batches of Exporter::kBatchSize, the first far larger than the receiver's window
  auto first = std::make_unique<TcpReceiver>(0, 4096, 4000);
  ASSERT_TRUE(first->ok());
  const int port = first->port();
  SinkConfig sink = SyslogSink("tcp://127.0.0.1:" + std::to_string(port));
  auto exporter = MakeExporter(sink);
  ASSERT_NE(exporter, nullptr);
  exporter->Start();
  ASSERT_TRUE(WaitFor([&] { return first->dropped(); }));
  first->Stop();
  auto frames = first->Frames();
  EXPECT_FALSE(first->framing_error());
  EXPECT_GT(frames.size(), 0u);
  EXPECT_EQ(exporter->position(), 0);  // the in-flight batch was not counted as delivered

  TcpReceiver second(port);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(WaitFor([&] { return exporter->position() == 600 && second.Count() >= 600; })) << second.Count();
  exporter->Stop();
  EXPECT_FALSE(second.framing_error());
  auto more = second.Frames();
  frames.insert(frames.end(), more.begin(), more.end());
  auto seqs = SyslogSeqs(frames, sink);
  std::map<std::int64_t, int> count;
  for (auto s : seqs) ++count[s];
  for (std::int64_t s = 0; s < 600; ++s) EXPECT_GE(count[s], 1) << "lost entry " << s;
  for (const auto& [s, n] : count) {
    if (n > 1) {
      EXPECT_LT(s, Exporter::kBatchSize) << "entry " << s << " repeated outside the in-flight batch";
    }
  }
  // The restarted receiver got the whole log, in order, from the resent batch on.
  EXPECT_THAT(SyslogSeqs(more, sink), ElementsAreArray(Range(0, 600)));
}

}  // namespace
}  // namespace kura::audit
