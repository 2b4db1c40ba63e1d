// Secure memory, end to end: the real server's memory is read while it runs
// (every readable mapping of /proc/<pid>/maps through /proc/<pid>/mem, which
// also sees libsodium's guarded pages that a core file would leave out) and
// searched for key bytes the test knows: the seal key (the key file) and,
// unwrapped by the test itself from the key store along the hierarchy (seal
// key → KEK version → key), the KEK, the tenant's data and blind-index keys
// and the vault's secrets key and audit signing seed. Before `kura operator
// seal` they are found — the scan can fail — and after it none is. Also: the
// server runs with a core size limit of 0.
//
// Reading another process's memory takes root (CAP_SYS_PTRACE): the server
// makes itself non-dumpable, so even its own user may not. CI runs as root
// (scripts/test); anywhere else this test fails saying so, rather than
// passing without having looked.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/secret.h"
#include "crypto/envelope.h"
#include "crypto/random.h"
#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;

constexpr char kMemoryTenant[] = "memtest";

struct Needle {
  std::string name;
  Bytes bytes;
};

// --- The keys, from the server's files ------------------------------------------

// Runs one query with the sqlite3 shell (read-only) and returns its rows,
// columns separated by '|'.
std::vector<std::vector<std::string>> Query(const std::string& db, const std::string& sql) {
  ProcessResult r = RunProcess({"sqlite3", "-readonly", "-batch", db, sql});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> cols;
    std::size_t start = 0;
    for (;;) {
      std::size_t bar = line.find('|', start);
      cols.push_back(line.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    rows.push_back(std::move(cols));
  }
  return rows;
}

Bytes HexBytes(const std::string& text) {
  auto b = HexDecode(text);
  EXPECT_TRUE(b.has_value()) << text;
  return b.value_or(Bytes());
}

Bytes Unwrap(const SecretBytes& wrapping_key, const Bytes& wrapped, crypto::KeyPurpose purpose,
             const std::string& owner, std::int64_t version, const std::string& what) {
  auto key = crypto::UnwrapKey(wrapping_key, wrapped, purpose, owner, version);
  EXPECT_TRUE(key.ok()) << what << ": " << key.status().ToString();
  return key.ok() ? Bytes(key->view().begin(), key->view().end()) : Bytes();
}

// Every key of the key store <data>/keys.db that belongs to the tenant or to
// the vault, unwrapped along the hierarchy (docs/formats/keys.md): seal key →
// KEK versions → data keys, index key, secrets key, audit signing seed.
std::vector<Needle> VaultKeys(const std::string& data_dir, const SecretBytes& seal_key) {
  std::vector<Needle> out;
  const std::string keys_db = data_dir + "/keys.db";
  std::map<std::int64_t, SecretBytes> keks;
  for (const auto& row : Query(keys_db, "SELECT version, hex(wrapped) FROM key_kek_versions")) {
    const std::int64_t version = std::stoll(row.at(0));
    const std::string name = "KEK version " + row.at(0);
    Bytes kek = Unwrap(seal_key, HexBytes(row.at(1)), crypto::KeyPurpose::kKek, "", version, name);
    keks.emplace(version, SecretBytes::FromBytes(kek));
    out.push_back({name, std::move(kek)});
  }
  for (const auto& row : Query(keys_db,
                               "SELECT owner, purpose, version, kek_version, hex(wrapped) "
                               "FROM key_wrapped_keys WHERE owner IN ('', '" +
                                   std::string(kMemoryTenant) + "')")) {
    const std::string name = "key owner='" + row.at(0) + "' purpose=" + row.at(1) + " version=" + row.at(2);
    auto kek = keks.find(std::stoll(row.at(3)));
    if (kek == keks.end()) {
      ADD_FAILURE() << name << ": its KEK version is missing";
      continue;
    }
    out.push_back({name, Unwrap(kek->second, HexBytes(row.at(4)), static_cast<crypto::KeyPurpose>(std::stoi(row.at(1))),
                                row.at(0), std::stoll(row.at(2)), name)});
  }
  return out;
}

// --- The scan ---------------------------------------------------------------------

struct Mapping {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::string perms;
  std::string name;
};

std::vector<Mapping> ReadMaps(pid_t pid) {
  std::vector<Mapping> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, name;
    fields >> range >> perms >> offset >> dev >> inode;
    std::getline(fields, name);
    if (auto first = name.find_first_not_of(' '); first != std::string::npos) name = name.substr(first);
    Mapping m;
    m.begin = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    m.end = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    m.perms = perms;
    m.name = name;
    out.push_back(std::move(m));
  }
  return out;
}

// AddressSanitizer's shadow memory (x86-64, shadow offset 0x7fff8000): a
// reserved terabyte range holding one shadow byte per 8 bytes of memory,
// never a copy of the data, and far too large to read. A sanitized server
// has its low shadow mapped over 0x7fff8000 … 0x8fff6fff (the mapping starts
// at the page below), which is how it is recognised.
constexpr std::uint64_t kAsanLowShadow = 0x00007fff8000ULL;
constexpr std::uint64_t kAsanLowShadowEnd = 0x00008fff7000ULL;
constexpr std::uint64_t kAsanShadowBegin = 0x00007fff7000ULL;
constexpr std::uint64_t kAsanShadowEnd = 0x10007fff8000ULL;
// Anything else this large would be a mapping the scan does not understand.
constexpr std::uint64_t kMaxScannedMapping = std::uint64_t{64} << 30;

struct ScanResult {
  std::vector<std::string> found;  // "name at 0x… (mapping)"
  std::uint64_t bytes_read = 0;
  std::string error;               // set when the scan could not do its job
};

ScanResult Scan(pid_t pid, const std::vector<Needle>& needles) {
  ScanResult result;
  std::vector<Mapping> maps = ReadMaps(pid);
  if (maps.empty()) {
    result.error = "cannot read /proc/" + std::to_string(pid) + "/maps";
    return result;
  }
  bool asan = false;
  for (const Mapping& m : maps) asan = asan || (m.begin <= kAsanLowShadow && m.end == kAsanLowShadowEnd);
  const int fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    result.error = "cannot open /proc/" + std::to_string(pid) + "/mem: " + std::strerror(errno);
    return result;
  }
  std::size_t longest = 0;
  for (const Needle& n : needles) longest = std::max(longest, n.bytes.size());
  constexpr std::size_t kChunk = 1 << 20;
  std::vector<std::uint8_t> buf(kChunk + longest);
  for (const Mapping& m : maps) {
    if (m.perms.empty() || m.perms[0] != 'r') continue;
    if (m.name == "[vvar]" || m.name == "[vsyscall]") continue;  // kernel pages, not the process's data
    if (asan && m.begin >= kAsanShadowBegin && m.end <= kAsanShadowEnd) continue;
    if (m.end - m.begin > kMaxScannedMapping) {
      result.error = "mapping " + m.name + " is too large to scan";
      break;
    }
    // Chunks overlap by the longest needle, so a key across a boundary is seen.
    std::size_t carried = 0;
    for (std::uint64_t at = m.begin; at < m.end;) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, m.end - at));
      const ssize_t got = ::pread(fd, buf.data() + carried, want, static_cast<off_t>(at));
      if (got <= 0) {
        // A page that cannot be read (e.g. a device mapping): skip it.
        at += 4096;
        carried = 0;
        continue;
      }
      result.bytes_read += static_cast<std::uint64_t>(got);
      const std::size_t have = carried + static_cast<std::size_t>(got);
      for (const Needle& n : needles) {
        if (n.bytes.empty()) continue;
        const std::uint8_t* p = buf.data();
        const std::uint8_t* stop = buf.data() + have;
        while (p < stop) {
          void* hit = ::memmem(p, static_cast<std::size_t>(stop - p), n.bytes.data(), n.bytes.size());
          if (hit == nullptr) break;
          const auto* h = static_cast<const std::uint8_t*>(hit);
          const std::uint64_t address = at - carried + static_cast<std::uint64_t>(h - buf.data());
          std::ostringstream where;
          where << n.name << " at 0x" << std::hex << address << " (" << (m.name.empty() ? "anonymous" : m.name)
                << " " << m.perms << ")";
          result.found.push_back(where.str());
          p = h + 1;
        }
      }
      carried = std::min(longest > 0 ? longest - 1 : 0, have);
      std::memmove(buf.data(), buf.data() + have - carried, carried);
      at += static_cast<std::uint64_t>(got);
    }
  }
  ::close(fd);
  // Report a hit found twice in overlapping chunks once.
  std::sort(result.found.begin(), result.found.end());
  result.found.erase(std::unique(result.found.begin(), result.found.end()), result.found.end());
  return result;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += "\n  " + s;
  return out;
}

// The value of one line of /proc/<pid>/limits or /proc/<pid>/status.
std::string ProcLine(pid_t pid, const std::string& file, const std::string& prefix) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(prefix)) return line;
  }
  return "";
}

TEST(MemoryTest, NoKeyBytesInTheServerAfterSealAndNoCoreDumps) {
  ASSERT_EQ(::geteuid(), 0u) << "this test reads the server's memory through /proc/<pid>/mem, which needs root "
                                "(CAP_SYS_PTRACE: the server is not dumpable); run it as root, as scripts/test does";
  std::string error;
  auto server = KuraServer::Start(ServerOptions{}, &error);
  ASSERT_NE(server, nullptr) << error;
  const pid_t pid = server->pid();

  // Core dumps are off: a core size limit of 0.
  const std::string core = ProcLine(pid, "limits", "Max core file size");
  ASSERT_FALSE(core.empty());
  std::istringstream core_fields(core.substr(std::strlen("Max core file size")));
  std::string soft, hard;
  core_fields >> soft >> hard;
  EXPECT_EQ(soft, "0") << core;
  EXPECT_EQ(hard, "0") << core;
  // The same call also made the process non-dumpable (PR_SET_DUMPABLE 0;
  // core/secret_test.cc shows both effects of DisableCoreDumps). From the
  // outside that flag cannot be told apart here: every process of this test
  // runs as root with every capability.

  auto tenant = CreateTestTenant(*server, kMemoryTenant, &error);
  ASSERT_TRUE(tenant.has_value()) << error;
  // Use the keys: write and read a record (data key), look it up by an
  // indexed field (index key).
  auto created =
      server->http().Post(RecordsPath(kMemoryTenant, "customers"),
                          {{"data", {{"email", "memory@test.example"}, {"name", "Memory Test"}}}}, tenant->admin_key);
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string id = created.json["id"];
  ASSERT_EQ(server->http().Get(RecordPath(kMemoryTenant, "customers", id), tenant->admin_key).status, 200);
  ASSERT_EQ(server->http()
                .Get(RecordsPath(kMemoryTenant, "customers") + "?email=memory%40test.example", tenant->admin_key)
                .status,
            200);

  const std::string key_file = server->data_dir() + "/kek.key";
  const std::string seal_key_text = ReadFile(key_file);
  ASSERT_EQ(seal_key_text.size(), 32u) << key_file;
  std::vector<Needle> needles = {{"seal key", Bytes(seal_key_text.begin(), seal_key_text.end())}};
  for (Needle& n : VaultKeys(server->data_dir(), SecretBytes::FromBytes(AsBytes(seal_key_text)))) {
    ASSERT_EQ(n.bytes.size(), 32u) << n.name;
    needles.push_back(std::move(n));
  }
  bool has_data_key = false;
  const std::string data_key_name = "key owner='" + std::string(kMemoryTenant) + "' purpose=1 ";
  for (const Needle& n : needles) has_data_key = has_data_key || n.name.starts_with(data_key_name);
  ASSERT_TRUE(has_data_key) << "the tenant's data key is not in the key store";

  // Unsealed: the keys are in memory, and the scan sees them.
  ScanResult before = Scan(pid, needles);
  ASSERT_TRUE(before.error.empty()) << before.error;
  for (const Needle& n : needles) {
    bool seen = false;
    for (const auto& f : before.found) seen = seen || f.starts_with(n.name + " at ");
    EXPECT_TRUE(seen) << n.name << " not found while unsealed: the scan cannot see keys (" << before.bytes_read
                      << " bytes read)";
  }

  ProcessResult seal = server->Cli({"operator", "seal"}, server->root_token());
  ASSERT_EQ(seal.exit_code, 0) << seal.Describe();
  EXPECT_TRUE(
      IsError(server->http().Get(RecordPath(kMemoryTenant, "customers", id), tenant->admin_key), 503, "sealed"));

  ScanResult after = Scan(pid, needles);
  ASSERT_TRUE(after.error.empty()) << after.error;
  EXPECT_TRUE(after.found.empty()) << "key bytes left in the server's memory after seal (" << after.bytes_read
                                   << " bytes read):" << Join(after.found);
}

// The bytes of a request are wiped once it is answered: a header kura does
// not read (it is only ever in the connection's buffers and OpenSSL's
// decrypted record), a password sent in a JSON body (in the parsed body too)
// and the bearer token of a request.
TEST(MemoryTest, RequestBytesAreWipedOnceAnswered) {
  ASSERT_EQ(::geteuid(), 0u) << "reads the server's memory through /proc/<pid>/mem: run as root, as scripts/test does";
  std::string error;
  auto server = KuraServer::Start(ServerOptions{}, &error);
  ASSERT_NE(server, nullptr) << error;
  auto tenant = CreateTestTenant(*server, kMemoryTenant, &error);
  ASSERT_TRUE(tenant.has_value()) << error;

  const std::string marker = "x-memory-marker-" + HexEncode(crypto::RandomBytes(16));
  const std::string password = "Marker-Password-" + HexEncode(crypto::RandomBytes(16));
  // A key the test makes and uses: the server keeps only its hash, so the
  // token's bytes are only in the answer that made it and the request below.
  HttpResponse key = server->http().Post("/v1/t/" + std::string(kMemoryTenant) + "/apikeys",
                                         {{"name", "memory"}, {"role", "admin"}}, tenant->admin_key);
  ASSERT_EQ(key.status, 201) << key.Describe();
  const std::string token = key.json["key"];
  ASSERT_EQ(server->http().Get("/v1/whoami", token, {"X-Unread: " + marker}).status, 200);
  HttpResponse login = server->http().Post(
      "/v1/auth/login", {{"tenant", kMemoryTenant}, {"username", "nobody-here"}, {"password", password}});
  ASSERT_EQ(login.status, 401) << login.Describe();
  // A secret made by the server and shown once: gone with its answer too.
  HttpResponse lockbox = server->http().Put("/v1/t/" + std::string(kMemoryTenant) + "/lockbox",
                                            {{"webhook_url", "https://hooks.example/kura"}}, tenant->admin_key);
  ASSERT_EQ(lockbox.status, 200) << lockbox.Describe();
  const std::string webhook_secret = lockbox.json["webhook_secret"].get<std::string>().substr(6);  // after whsec_

  // The control: the seal key, in the server's memory while it is unsealed,
  // so a scan that does not see the server's memory fails here.
  const std::string seal_key = ReadFile(server->data_dir() + "/kek.key");
  ASSERT_EQ(seal_key.size(), 32u);
  std::vector<Needle> needles = {{"unread header", Bytes(marker.begin(), marker.end())},
                                 {"password", Bytes(password.begin(), password.end())},
                                 {"bearer token", Bytes(token.begin(), token.end())},
                                 {"webhook secret", Bytes(webhook_secret.begin(), webhook_secret.end())},
                                 {"seal key", Bytes(seal_key.begin(), seal_key.end())}};
  ScanResult scan = Scan(server->pid(), needles);
  ASSERT_TRUE(scan.error.empty()) << scan.error;
  std::vector<std::string> left;
  bool seal_key_seen = false;
  for (const auto& f : scan.found) {
    if (f.starts_with("seal key at ")) {
      seal_key_seen = true;
    } else {
      left.push_back(f);
    }
  }
  EXPECT_TRUE(seal_key_seen) << "the seal key was not found while unsealed: the scan cannot see the server's memory ("
                             << scan.bytes_read << " bytes read)";
  EXPECT_TRUE(left.empty()) << "request bytes left in the server's memory (" << scan.bytes_read
                            << " bytes read):" << Join(left);
}

}  // namespace
}  // namespace kura::e2e
