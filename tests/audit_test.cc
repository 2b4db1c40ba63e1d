// The audit log end to end (SPEC §4): tamper evidence on a real data
// directory (one test per way of tampering, found and named by `kura audit
// verify`), a forked history caught by `kura audit proof` and the client's
// saved checkpoint, an independent verifier (Python's hashlib and the openssl
// command line, sharing no code with kura), fail-closed on a full file system,
// and a kill -9 under load that loses no entry.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr const char* kAuditTenant = "audit-e2e";

// dev mode with checkpoints every second, so a short test sees several.
std::string WriteFastCheckpointConfig(const TempDir& dir) {
  std::string path = dir.Sub("kura.toml");
  WriteFile(path, "[audit]\ncheckpoint_interval = \"1s\"\n");
  return path;
}

// Every entry of the system trail (root), in order.
std::vector<json> AllEntries(KuraServer& server) {
  std::vector<json> out;
  std::string after;
  for (int page = 0; page < 10000; ++page) {
    HttpResponse r = server.http().Get("/v1/sys/audit?limit=1000" + (after.empty() ? "" : "&after=" + after),
                                       server.root_token());
    EXPECT_EQ(r.status, 200) << r.Describe();
    if (r.status != 200) break;
    for (const json& item : r.json["items"]) out.push_back(item);
    if (!r.json["next"].is_string()) break;
    after = r.json["next"];
  }
  return out;
}

// Waits until a signed checkpoint covers every entry made before the call,
// so what the test checks next is under a signature. The signer runs every
// second (WriteFastCheckpointConfig); on a slow machine it lags behind.
::testing::AssertionResult CheckpointCoversTheLog(KuraServer& server) {
  HttpResponse newest = server.http().Get("/v1/sys/audit?last=1", server.root_token());
  if (newest.status != 200 || newest.json["items"].size() != 1) {
    return ::testing::AssertionFailure() << "newest entry: " << newest.Describe();
  }
  const std::int64_t seq = newest.json["items"][0]["seq"];
  std::int64_t signed_size = 0;
  const bool covered = WaitUntil(
      [&] {
        HttpResponse r = server.http().Get("/v1/sys/audit/checkpoints", server.root_token());
        if (r.status == 200 && r.json["latest"].is_object()) {
          signed_size = r.json["latest"].value("tree_size", std::int64_t{0});
        }
        return signed_size > seq;
      },
      std::chrono::seconds(20), milliseconds(250));
  if (covered) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no checkpoint covers entry " << seq << " after 20 s; the latest signs "
                                       << signed_size << " entries";
}

// Some traffic of every kind: writes, reads, lookups, denials.
void MakeTraffic(KuraServer& server, const TestTenant& tenant, int rounds) {
  auto& http = server.http();
  for (int i = 0; i < rounds; ++i) {
    HttpResponse r = http.Post(RecordsPath(tenant.id, "customers"),
                               {{"data", {{"email", "p" + std::to_string(i) + "@example.com"}}}}, tenant.admin_key);
    ASSERT_EQ(r.status, 201) << r.Describe();
    std::string id = r.json["id"];
    EXPECT_EQ(http.Get(RecordPath(tenant.id, "customers", id), tenant.admin_key).status, 200);
    EXPECT_EQ(http.Get(RecordsPath(tenant.id, "customers") + "?email=p" + std::to_string(i) + "%40example.com",
                       tenant.admin_key)
                  .status,
              200);
    EXPECT_EQ(http.Get(RecordPath(tenant.id, "customers", id), "kura_key_nobody_AAAA").status, 401);
  }
}

// A tmpfs mounted at `path` while this lives (mounting needs root).
class Tmpfs {
 public:
  Tmpfs(std::string path, const char* options) : path_(std::move(path)) {
    fs::create_directories(path_);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

class AuditTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& data_dir = "") {
    ServerOptions options;
    options.config_file = WriteFastCheckpointConfig(config_dir_);
    options.data_dir = data_dir;
    std::string error;
    server_ = KuraServer::Start(options, &error);
    ASSERT_NE(server_, nullptr) << error;
  }

  // Runs `kura audit verify --data DIR --pubkey PEM --format json`.
  ProcessResult VerifyOffline(const std::string& data_dir) {
    return RunProcess({KuraBinary(), "audit", "verify", "--data", data_dir, "--pubkey", pubkey_, "--format", "json"});
  }

  // Stops the server and copies its data directory to `name` under scratch_.
  std::string CopyData(const std::string& name) {
    std::string to = scratch_.Sub(name);
    fs::copy(server_->data_dir(), to, fs::copy_options::recursive);
    return to;
  }

  // Starts a server with the test tenant and saves its audit key as pubkey_.
  void StartServerWithTenant(std::optional<TestTenant>* tenant) {
    ASSERT_NO_FATAL_FAILURE(StartServer());
    std::string error;
    *tenant = CreateTestTenant(*server_, kAuditTenant, &error);
    ASSERT_TRUE(*tenant) << error;
    pubkey_ = scratch_.Sub("audit.pem");
    ProcessResult key = server_->Cli({"audit", "pubkey", "--out", pubkey_}, server_->root_token());
    ASSERT_EQ(key.exit_code, 0) << key.Describe();
  }

  // The same, then traffic and a kill (SIGKILL): the data directory keeps
  // its last commits in the WAL.
  void RunAndKillServer() {
    std::optional<TestTenant> tenant;
    ASSERT_NO_FATAL_FAILURE(StartServerWithTenant(&tenant));
    ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 3));
    server_->Signal(SIGKILL);
    ASSERT_TRUE(server_->WaitExit(std::chrono::seconds(10)));
  }

  static void Sql(const std::string& data_dir, const std::string& sql) {
    ProcessResult r = RunProcess({"sqlite3", data_dir + "/kura.db", sql});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }

  static std::int64_t Count(const std::string& data_dir, const std::string& sql) {
    ProcessResult r = RunProcess({"sqlite3", data_dir + "/kura.db", sql});
    return std::stoll(r.out.empty() ? "-1" : r.out);
  }

  TempDir config_dir_{"kura-audit-cfg"};
  TempDir scratch_{"kura-audit"};
  std::unique_ptr<KuraServer> server_;
  std::string pubkey_;
};

// --- Tamper evidence on a real data directory ----------------------------------

class AuditTamperTest : public AuditTest {
 protected:
  void SetUp() override {
    std::optional<TestTenant> tenant;
    ASSERT_NO_FATAL_FAILURE(StartServerWithTenant(&tenant));
    // Three phases a checkpoint interval apart: several checkpoints.
    for (int phase = 0; phase < 3; ++phase) {
      ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 5));
      std::this_thread::sleep_for(milliseconds(1300));
    }
    ASSERT_EQ(server_->Stop(), 0) << server_->Log();  // shutdown signs the last checkpoint
    untouched_ = CopyData("untouched");
  }

  // A fresh copy of the data directory for one way of tampering.
  std::string Fresh(const std::string& name) {
    std::string to = scratch_.Sub(name);
    fs::copy(untouched_, to, fs::copy_options::recursive);
    return to;
  }

  // Asserts verification fails with `kinds` naming `seq`.
  // `seq` < 0: only the message must name `place`.
  void ExpectCaught(const std::string& data_dir, const std::set<std::string>& kinds, std::int64_t seq,
                    const std::string& place = "") {
    ProcessResult r = VerifyOffline(data_dir);
    EXPECT_EQ(r.exit_code, 10) << r.Describe();
    ASSERT_TRUE(r.json.is_object()) << r.Describe();
    EXPECT_FALSE(r.json.value("verified", true));
    const json& problem = r.json["problem"];
    EXPECT_TRUE(kinds.count(problem.value("kind", ""))) << r.json.dump();
    if (seq >= 0) {
      EXPECT_EQ(problem.value("seq", std::int64_t{-2}), seq) << r.json.dump();
    }
    EXPECT_FALSE(problem.value("message", "").empty());
    if (!place.empty()) {
      EXPECT_NE(problem.value("message", "").find(place), std::string::npos) << r.json.dump();
    }
  }

  // Changes the client of entry `seq` and stores the leaf hash that goes with
  // the new bytes (SHA-256(0x00 || entry), computed by Python's hashlib).
  static void RewriteClientWithItsHash(const std::string& dir, std::int64_t seq) {
    const std::string where = " FROM audit_log WHERE seq = " + std::to_string(seq);
    std::string entry_hex = RunProcess({"sqlite3", dir + "/kura.db",
                                        "SELECT hex(CAST(replace(CAST(entry AS TEXT), '\"client\":\"', "
                                        "'\"client\":\"10.6.6.6') AS BLOB))" +
                                            where})
                                .out;
    entry_hex.erase(entry_hex.find_last_not_of("\n") + 1);
    ASSERT_FALSE(entry_hex.empty());
    ProcessResult hash = RunProcess(
        {"python3", "-c", "import hashlib,sys; print(hashlib.sha256(b'\\x00'+bytes.fromhex(sys.argv[1])).hexdigest())",
         entry_hex});
    ASSERT_EQ(hash.exit_code, 0) << hash.Describe();
    Sql(dir, "UPDATE audit_log SET entry = X'" + entry_hex + "', hash = X'" + hash.out.substr(0, 64) +
                 "' WHERE seq = " + std::to_string(seq));
  }

  std::string untouched_;
};

TEST_F(AuditTamperTest, UntouchedLogVerifies) {
  ProcessResult r = VerifyOffline(untouched_);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(r.json.value("verified", false));
  EXPECT_GE(r.json.value("checkpoints", 0), 3) << r.json.dump();
  EXPECT_EQ(r.json.value("entries", 0), Count(untouched_, "SELECT count(*) FROM audit_log"));
  // The server signed a checkpoint over the whole log as it stopped.
  EXPECT_EQ(r.json.value("signed_entries", -1), r.json.value("entries", 0)) << r.json.dump();
}

TEST_F(AuditTamperTest, AlteredFieldIsNamed) {
  std::string dir = Fresh("altered");
  // Change who did it in entry 12, leaving its stored hash as it was.
  Sql(dir, "UPDATE audit_log SET entry = CAST(replace(CAST(entry AS TEXT), '\"client\":\"', "
           "'\"client\":\"10.6.6.6') AS BLOB) WHERE seq = 12");
  ExpectCaught(dir, {"altered"}, 12);
}

TEST_F(AuditTamperTest, AlteredFieldWithRecomputedHashIsNamed) {
  std::string dir = Fresh("altered-rehashed");
  // A careful forger also fixes the row's hash column (SHA-256(0x00 || entry)):
  // the next entry's link to it breaks.
  ASSERT_NO_FATAL_FAILURE(RewriteClientWithItsHash(dir, 12));
  // Found by whichever check reaches it first: entry 13 no longer links to
  // it, or a checkpoint covering 12 (when one ends right at 13) no longer
  // matches the entries.
  ProcessResult r = VerifyOffline(dir);
  EXPECT_EQ(r.exit_code, 10) << r.Describe();
  ASSERT_TRUE(r.json.is_object()) << r.Describe();
  const json& problem = r.json["problem"];
  const std::string kind = problem.value("kind", "");
  if (kind == "checkpoint_mismatch") {
    std::int64_t size = problem.value("seq", std::int64_t{-1});
    EXPECT_GT(size, 12) << r.json.dump();
    EXPECT_NE(problem.value("message", "").find(") was changed"), std::string::npos) << r.json.dump();
  } else {
    EXPECT_EQ(kind, "chain_broken") << r.json.dump();
    EXPECT_EQ(problem.value("seq", std::int64_t{-1}), 13) << r.json.dump();
  }
}

TEST_F(AuditTamperTest, DeletedEntryIsNamed) {
  std::string dir = Fresh("deleted");
  Sql(dir, "DELETE FROM audit_log WHERE seq = 20");
  ExpectCaught(dir, {"removed"}, 20);
}

TEST_F(AuditTamperTest, InsertedEntryIsNamed) {
  std::string dir = Fresh("inserted");
  // Make room at 20 and put a copy of another entry there.
  Sql(dir,
      "UPDATE audit_log SET seq = -seq - 1 WHERE seq >= 20;"
      "UPDATE audit_log SET seq = -seq WHERE seq < 0;"
      "INSERT INTO audit_log SELECT 20, at_ms, tenant_id, principal, action, resource, outcome, entry, hash "
      "FROM audit_log WHERE seq = 5;");
  // Named either as the entry found out of place or by where it sits.
  ExpectCaught(dir, {"inserted", "reordered", "chain_broken"}, -1, "seq 20");
}

// A copy of a real entry stored outside the log — before entry 0, or far past
// the end — where reading entries 0, 1, 2, … never meets it but a trail
// query would list it.
TEST_F(AuditTamperTest, EntryInsertedOutsideTheLogIsNamed) {
  for (const char* seq : {"-1", "4611686018427387904"}) {
    std::string dir = Fresh(std::string("outside") + seq);
    Sql(dir, std::string("INSERT INTO audit_log SELECT ") + seq +
                 ", at_ms, tenant_id, principal, action, resource, outcome, entry, hash FROM audit_log WHERE seq = 5;");
    ExpectCaught(dir, {"inserted"}, -1, std::string("at seq ") + seq);
  }
}

TEST_F(AuditTamperTest, SwappedEntriesAreNamed) {
  std::string dir = Fresh("swapped");
  Sql(dir,
      "CREATE TEMP TABLE a AS SELECT * FROM audit_log WHERE seq IN (30, 31);"
      "UPDATE audit_log SET entry = (SELECT entry FROM a WHERE a.seq = 61 - audit_log.seq), "
      "hash = (SELECT hash FROM a WHERE a.seq = 61 - audit_log.seq), "
      "principal = (SELECT principal FROM a WHERE a.seq = 61 - audit_log.seq), "
      "action = (SELECT action FROM a WHERE a.seq = 61 - audit_log.seq), "
      "resource = (SELECT resource FROM a WHERE a.seq = 61 - audit_log.seq), "
      "outcome = (SELECT outcome FROM a WHERE a.seq = 61 - audit_log.seq), "
      "at_ms = (SELECT at_ms FROM a WHERE a.seq = 61 - audit_log.seq), "
      "tenant_id = (SELECT tenant_id FROM a WHERE a.seq = 61 - audit_log.seq) "
      "WHERE seq IN (30, 31);");
  ExpectCaught(dir, {"reordered"}, 30);
}

TEST_F(AuditTamperTest, TruncatedTailIsFound) {
  std::string dir = Fresh("truncated");
  std::int64_t size = Count(dir, "SELECT count(*) FROM audit_log");
  Sql(dir, "DELETE FROM audit_log WHERE seq >= " + std::to_string(size - 5));
  ExpectCaught(dir, {"truncated"}, -1);
}

// A forger who also drops the checkpoints that covered the removed entries
// still leaves the head row, rewritten by every append, counting them.
TEST_F(AuditTamperTest, TailAndItsCheckpointsRemovedIsFound) {
  std::string dir = Fresh("truncated-unsigned");
  const std::int64_t size = Count(dir, "SELECT count(*) FROM audit_log");
  Sql(dir, "DELETE FROM audit_log WHERE seq >= " + std::to_string(size - 5) +
               "; DELETE FROM audit_checkpoints WHERE tree_size > " + std::to_string(size - 5));
  ASSERT_GT(Count(dir, "SELECT count(*) FROM audit_checkpoints"), 0);
  ExpectCaught(dir, {"truncated"}, size - 5, "head row counts " + std::to_string(size));
}

// The newest entry has no successor linking to it: rewritten with its hash
// recomputed and the checkpoint over it dropped, only the head row, which
// names the last entry's hash, tells.
TEST_F(AuditTamperTest, LastEntryRewrittenWithItsCheckpointDroppedIsNamed) {
  std::string dir = Fresh("last-rewritten");
  const std::int64_t last = Count(dir, "SELECT max(seq) FROM audit_log");
  ASSERT_NO_FATAL_FAILURE(RewriteClientWithItsHash(dir, last));
  Sql(dir, "DELETE FROM audit_checkpoints WHERE tree_size > " + std::to_string(last));
  ASSERT_GT(Count(dir, "SELECT count(*) FROM audit_checkpoints"), 0);
  ExpectCaught(dir, {"altered"}, last, "head row names");
}

TEST_F(AuditTamperTest, ForgedCheckpointIsNamed) {
  std::string dir = Fresh("forged");
  std::int64_t latest = Count(dir, "SELECT max(tree_size) FROM audit_checkpoints");
  // A checkpoint claiming a different root, signed by someone without the key.
  Sql(dir, "UPDATE audit_checkpoints SET signature = randomblob(64) WHERE tree_size = " + std::to_string(latest));
  ExpectCaught(dir, {"forged_checkpoint"}, latest);
}

// A checkpoint row moved below every real tree size is reported, not passed
// over (the listing once started at size 0 and never read it).
TEST_F(AuditTamperTest, CheckpointMovedToANegativeSizeIsNamed) {
  std::string dir = Fresh("negative-checkpoint");
  Sql(dir,
      "UPDATE audit_checkpoints SET tree_size = -5 WHERE tree_size = (SELECT max(tree_size) FROM "
      "audit_checkpoints)");
  ExpectCaught(dir, {"forged_checkpoint"}, -1, "tree size -5");
}

// An entry moved to the last sequence number there is: named where it is
// missing — and neither the verifier nor the store it opens overflows the
// number after it (UBSan aborts this Debug binary if one does).
TEST_F(AuditTamperTest, EntryMovedToTheEndOfTheRangeIsNamed) {
  std::string dir = Fresh("end-of-range");
  Sql(dir, "UPDATE audit_log SET seq = 9223372036854775807 WHERE seq = 20");
  ExpectCaught(dir, {"removed"}, 20);
}

// --- A forked history: consistent on its own, caught by the client's state -------

TEST_F(AuditTest, ForkedHistoryIsCaughtByTheSavedCheckpoint) {
  std::optional<TestTenant> tenant;
  ASSERT_NO_FATAL_FAILURE(StartServerWithTenant(&tenant));
  ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 3));
  ASSERT_EQ(server_->Stop(), 0) << server_->Log();
  // The operator keeps a copy of the database as it is now...
  std::string fork = CopyData("fork");

  // ...the real history goes on, and a client checks it.
  std::string restart_error;
  ASSERT_TRUE(server_->Restart(&restart_error)) << restart_error;
  ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 3));
  // The checkpoint the client saves must cover entries the fork lacks.
  ASSERT_TRUE(CheckpointCoversTheLog(*server_));
  const std::string state = scratch_.Sub("client-state.json");
  ProcessResult first = server_->Cli({"audit", "proof", "--pubkey", pubkey_, "--state", state}, tenant->admin_key);
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  ProcessResult again = server_->Cli({"audit", "proof", "--pubkey", pubkey_, "--state", state}, tenant->admin_key);
  ASSERT_EQ(again.exit_code, 0) << again.Describe();
  ASSERT_EQ(server_->Stop(), 0);

  // The operator serves the old copy instead and writes a different,
  // internally consistent history on it, signed with the same key.
  ServerOptions options;
  options.config_file = WriteFastCheckpointConfig(config_dir_);
  options.data_dir = fork;
  std::string error;
  auto forked = KuraServer::Start(options, &error);
  ASSERT_NE(forked, nullptr) << error;
  ASSERT_NO_FATAL_FAILURE(MakeTraffic(*forked, *tenant, 8));
  // The fork's new history under a checkpoint of its own.
  ASSERT_TRUE(CheckpointCoversTheLog(*forked));
  ProcessResult verify = forked->Cli({"audit", "verify", "--pubkey", pubkey_, "--format", "json"},
                                     forked->root_token());
  EXPECT_EQ(verify.exit_code, 0) << "the forked log is consistent on its own: " << verify.Describe();

  ProcessResult caught = forked->Cli({"audit", "proof", "--pubkey", pubkey_, "--state", state}, tenant->admin_key);
  EXPECT_EQ(caught.exit_code, 10) << caught.Describe();
  EXPECT_NE(caught.out.find("history was rewritten"), std::string::npos) << caught.Describe();
}

// --- An independent verifier: Python's hashlib and the openssl command line ------

constexpr const char* kIndependentVerifier = R"py(
import hashlib, json, subprocess, sys, base64

def h(b): return hashlib.sha256(b).digest()

checkpoint = json.load(open(sys.argv[1]))
proof = json.load(open(sys.argv[2]))
entry = open(sys.argv[3], 'rb').read()
pubkey = sys.argv[4]
workdir = sys.argv[5]

# 1. The checkpoint's signature, with the openssl command line.
note = checkpoint['note'].encode()
open(workdir + '/note', 'wb').write(note)
open(workdir + '/sig', 'wb').write(bytes.fromhex(checkpoint['signature']))
r = subprocess.run(['openssl', 'pkeyutl', '-verify', '-pubin', '-inkey', pubkey, '-rawin',
                    '-in', workdir + '/note', '-sigfile', workdir + '/sig'], capture_output=True)
if r.returncode != 0:
    sys.exit('signature does not verify: ' + r.stdout.decode() + r.stderr.decode())
lines = note.decode().split('\n')
size = int(lines[2])
root = base64.b64decode(lines[3])
if size != proof['tree_size'] or root.hex() != checkpoint['root']:
    sys.exit('note and checkpoint disagree')

# 2. The entry's inclusion (RFC 9162 section 2.1.3.2).
fn, sn = proof['seq'], size - 1
r = h(b'\x00' + entry)
for p in proof['proof']:
    p = bytes.fromhex(p)
    if sn == 0:
        sys.exit('proof too long')
    if fn & 1 or fn == sn:
        r = h(b'\x01' + p + r)
        while not fn & 1 and fn != 0:
            fn >>= 1
            sn >>= 1
    else:
        r = h(b'\x01' + r + p)
    fn >>= 1
    sn >>= 1
if sn != 0 or r != root:
    sys.exit('entry is not included under the signed root')
print('ok')
)py";

TEST_F(AuditTest, IndependentVerifierChecksProofAndSignature) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string error;
  auto tenant = CreateTestTenant(*server_, kAuditTenant, &error);
  ASSERT_TRUE(tenant) << error;
  ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 4));
  ASSERT_TRUE(CheckpointCoversTheLog(*server_));
  auto& http = server_->http();

  pubkey_ = scratch_.Sub("audit.pem");
  ASSERT_EQ(server_->Cli({"audit", "pubkey", "--out", pubkey_}, tenant->admin_key).exit_code, 0);
  HttpResponse checkpoints = http.Get("/v1/sys/audit/checkpoints", tenant->admin_key);
  ASSERT_EQ(checkpoints.status, 200) << checkpoints.Describe();
  const json checkpoint = checkpoints.json["latest"];
  ASSERT_TRUE(checkpoint.is_object()) << checkpoints.Describe();
  const std::int64_t size = checkpoint["tree_size"];

  // An entry of the tenant's own trail (a record read) covered by that checkpoint.
  HttpResponse trail = http.Get("/v1/t/" + std::string(kAuditTenant) + "/audit?action=record.read", tenant->admin_key);
  ASSERT_EQ(trail.status, 200) << trail.Describe();
  ASSERT_FALSE(trail.json["items"].empty());
  const json item = trail.json["items"][0];
  ASSERT_LT(item["seq"].get<std::int64_t>(), size);
  HttpResponse proof = http.Get("/v1/sys/audit/proof/" + std::to_string(item["seq"].get<std::int64_t>()) +
                                    "?tree_size=" + std::to_string(size),
                                tenant->admin_key);
  ASSERT_EQ(proof.status, 200) << proof.Describe();

  WriteFile(scratch_.Sub("verify.py"), kIndependentVerifier);
  WriteFile(scratch_.Sub("checkpoint.json"), checkpoint.dump());
  WriteFile(scratch_.Sub("proof.json"), proof.json.dump());
  WriteFile(scratch_.Sub("entry"), item["entry"].get<std::string>());
  auto run = [&] {
    return RunProcess({"python3", scratch_.Sub("verify.py"), scratch_.Sub("checkpoint.json"), scratch_.Sub("proof.json"),
                       scratch_.Sub("entry"), pubkey_, scratch_.path()});
  };
  ProcessResult ok = run();
  EXPECT_EQ(ok.exit_code, 0) << ok.Describe();
  EXPECT_EQ(ok.out, "ok\n");

  // The same script refuses an altered entry and a forged note.
  std::string altered = item["entry"].get<std::string>();
  altered[altered.find("record.read")] = 'R';
  WriteFile(scratch_.Sub("entry"), altered);
  EXPECT_NE(run().exit_code, 0);
  WriteFile(scratch_.Sub("entry"), item["entry"].get<std::string>());
  json forged = checkpoint;
  std::string note = forged["note"];
  note[note.size() - 2] = note[note.size() - 2] == '1' ? '2' : '1';  // the time line
  forged["note"] = note;
  WriteFile(scratch_.Sub("checkpoint.json"), forged.dump());
  EXPECT_NE(run().exit_code, 0);
}

// --- Fail closed on a full file system -----------------------------------------------

TEST_F(AuditTest, FullDiskFailsClosedAndRecovers) {
  const std::string mount_point = scratch_.Sub("small-fs");
  Tmpfs tmpfs(mount_point, "size=24m");
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << tmpfs.error();

  ASSERT_NO_FATAL_FAILURE(StartServer(mount_point + "/data"));
  std::string error;
  auto tenant = CreateTestTenant(*server_, kAuditTenant, &error);
  ASSERT_TRUE(tenant) << error;
  auto& http = server_->http();
  HttpResponse first =
      http.Post(RecordsPath(kAuditTenant, "customers"), {{"data", {{"email", "a@example.com"}}}}, tenant->admin_key);
  ASSERT_EQ(first.status, 201) << first.Describe();
  const std::string record = first.json["id"];
  std::int64_t created = 1;

  // Fill the file system to the last byte.
  const std::string filler = mount_point + "/filler";
  RunProcess({"dd", "if=/dev/zero", "of=" + filler, "bs=64k"}, {}, "", std::chrono::seconds(60));

  // Until the database needs a page it does not have, requests may still
  // succeed; from the first refusal on, every request is refused at once.
  bool refused = false;
  for (int i = 0; i < 400 && !refused; ++i) {
    auto start = steady_clock::now();
    HttpResponse r = http.Post(RecordsPath(kAuditTenant, "customers"),
                               {{"data", {{"email", "fill" + std::to_string(i) + "@example.com"}}}}, tenant->admin_key);
    auto took = steady_clock::now() - start;
    if (r.status == 201) {
      ++created;
      continue;
    }
    EXPECT_TRUE(IsError(r, 503, "unavailable")) << r.Describe();
    EXPECT_LT(took, std::chrono::seconds(1));
    refused = true;
  }
  ASSERT_TRUE(refused) << "the full file system never refused a write";
  for (int i = 0; i < 5; ++i) {
    auto start = steady_clock::now();
    HttpResponse read = http.Get(RecordPath(kAuditTenant, "customers", record), tenant->admin_key);
    EXPECT_TRUE(IsError(read, 503, "unavailable")) << "a read whose entry cannot be made durable: " << read.Describe();
    // A session's read looks the session up on the way (and may queue the
    // record of its use): refused all the same.
    HttpResponse session_read = http.Get(RecordPath(kAuditTenant, "customers", record), tenant->admin_session);
    EXPECT_TRUE(IsError(session_read, 503, "unavailable")) << session_read.Describe();
    HttpResponse write =
        http.Post(RecordsPath(kAuditTenant, "customers"), {{"data", {{"email", "no@example.com"}}}}, tenant->admin_key);
    EXPECT_TRUE(IsError(write, 503, "unavailable")) << write.Describe();
    EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(1));
  }

  // Space returns: the next requests succeed, with no restart.
  fs::remove(filler);
  HttpResponse read;
  for (int i = 0; i < 50; ++i) {
    read = http.Get(RecordPath(kAuditTenant, "customers", record), tenant->admin_key);
    if (read.status == 200) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(read.status, 200) << read.Describe();
  HttpResponse session_read = http.Get(RecordPath(kAuditTenant, "customers", record), tenant->admin_session);
  EXPECT_EQ(session_read.status, 200) << session_read.Describe();
  HttpResponse write =
      http.Post(RecordsPath(kAuditTenant, "customers"), {{"data", {{"email", "back@example.com"}}}}, tenant->admin_key);
  EXPECT_EQ(write.status, 201) << write.Describe();
  ++created;
  // Nothing the refused requests tried is there.
  auto ids = ListAllRecordIds(http, tenant->admin_key, kAuditTenant, "customers");
  ASSERT_TRUE(ids);
  EXPECT_EQ(static_cast<std::int64_t>(ids->size()), created);

  ASSERT_EQ(server_->Stop(), 0) << server_->Log();
  pubkey_.clear();
  ProcessResult verify = RunProcess({KuraBinary(), "audit", "verify", "--data", mount_point + "/data", "--format", "json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();
}

// --- kill -9 under load ----------------------------------------------------------------

TEST_F(AuditTest, KillUnderLoadLosesNoEntry) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string error;
  auto tenant = CreateTestTenant(*server_, kAuditTenant, &error);
  ASSERT_TRUE(tenant) << error;

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acknowledged;  // request ids answered 2xx
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      HttpClient http(server_->base_url(), server_->ca_file());
      std::string last_id;
      for (int i = 0; !stop; ++i) {
        const std::string request_id = "load-" + std::to_string(t) + "-" + std::to_string(i);
        HttpRequest request;
        request.headers = {"X-Request-Id: " + request_id};
        request.token = tenant->admin_key;
        request.timeout_ms = 5000;
        if (i % 2 == 0 || last_id.empty()) {
          request.method = "POST";
          request.path = RecordsPath(kAuditTenant, "customers");
          request.body = json{{"data", {{"email", request_id + "@example.com"}}}}.dump();
        } else {
          request.path = RecordPath(kAuditTenant, "customers", last_id);
        }
        HttpResponse r = http.Send(request);
        if (r.status == 0) break;  // the server is gone
        if (r.status >= 200 && r.status < 300) {
          std::lock_guard lock(mu);
          acknowledged.insert(request_id);
          if (request.method == "POST") last_id = r.json["id"];
        }
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(2500));
  server_->Signal(SIGKILL);
  server_->WaitExit(std::chrono::seconds(10));
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_GT(acknowledged.size(), 20u);

  std::string restart_error;
  ASSERT_TRUE(server_->Restart(&restart_error)) << restart_error;
  std::set<std::string> audited;
  std::set<std::string> created_resources;
  for (const json& item : AllEntries(*server_)) {
    json entry = json::parse(item["entry"].get<std::string>());
    audited.insert(entry["request_id"].get<std::string>());
    if (entry["action"] == "record.create" && entry["outcome"] == "success") {
      created_resources.insert(entry["resource"].get<std::string>());
    }
  }
  for (const std::string& id : acknowledged) EXPECT_TRUE(audited.count(id)) << "no entry for acknowledged " << id;
  // No change without its entry: every stored record has its creation entry.
  auto ids = ListAllRecordIds(server_->http(), tenant->admin_key, kAuditTenant, "customers");
  ASSERT_TRUE(ids);
  for (const std::string& id : *ids) {
    EXPECT_TRUE(created_resources.count("collections/customers/records/" + id)) << "record " << id << " has no entry";
  }
  ASSERT_EQ(server_->Stop(), 0) << server_->Log();
  ProcessResult verify = RunProcess({KuraBinary(), "audit", "verify", "--data", server_->data_dir(), "--format", "json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();
}

// An auditor's verify reads the evidence and changes none of it. A copy of a
// directory whose server was killed holds commits still in its WAL: verifying
// it must not copy them into the database (SQLite does so when the last
// read-write connection closes) or migrate anything.
TEST_F(AuditTest, VerifyChangesNothingInWhatItReads) {
  ASSERT_NO_FATAL_FAILURE(RunAndKillServer());
  const std::string copy = CopyData("killed");
  const std::string db = ReadFile(copy + "/kura.db");
  const std::string wal = ReadFile(copy + "/kura.db-wal");
  ASSERT_FALSE(db.empty());
  ASSERT_FALSE(wal.empty()) << "the killed server left no WAL to keep";

  ProcessResult r = VerifyOffline(copy);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_GT(r.json.value("entries", 0), 20) << r.json.dump();
  EXPECT_TRUE(ReadFile(copy + "/kura.db") == db) << "verify changed kura.db";
  EXPECT_TRUE(ReadFile(copy + "/kura.db-wal") == wal) << "verify changed kura.db-wal";

  // A database without kura's schema, or with a newer one, is refused, and
  // is not given one.
  const std::string foreign = scratch_.Sub("foreign");
  fs::create_directories(foreign);
  ASSERT_NO_FATAL_FAILURE(Sql(foreign, "CREATE TABLE notes (body TEXT)"));
  ProcessResult refused = VerifyOffline(foreign);
  EXPECT_EQ(refused.exit_code, 2) << refused.Describe();
  EXPECT_NE(refused.err.find("not a kura database"), std::string::npos) << refused.Describe();
  EXPECT_EQ(Count(foreign, "SELECT count(*) FROM sqlite_master"), 1);
  ASSERT_NO_FATAL_FAILURE(Sql(copy, "INSERT INTO schema_migrations VALUES (999, 'future', 0)"));
  ProcessResult newer = VerifyOffline(copy);
  EXPECT_EQ(newer.exit_code, 2) << newer.Describe();
  EXPECT_NE(newer.err.find("schema version 999 is newer"), std::string::npos) << newer.Describe();
}

// A backup kept on read-only media: SQLite cannot add the `-shm` index it
// reads a WAL database through. A copy without WAL content is read as the
// file alone; one whose `-wal` holds commits is refused with the reason, not
// read without them.
TEST_F(AuditTest, VerifyReadsACopyOnReadOnlyMedia) {
  const std::string mount_point = scratch_.Sub("read-only-fs");
  Tmpfs tmpfs(mount_point, "size=24m");
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << tmpfs.error();

  ASSERT_NO_FATAL_FAILURE(RunAndKillServer());
  const std::string killed = mount_point + "/killed", without_index = mount_point + "/killed-without-index";
  fs::copy(server_->data_dir(), killed, fs::copy_options::recursive);
  fs::copy(server_->data_dir(), without_index, fs::copy_options::recursive);
  fs::remove(without_index + "/kura.db-shm");
  ASSERT_GT(fs::file_size(killed + "/kura.db-wal"), 0u);
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  ASSERT_EQ(server_->Stop(), 0) << server_->Log();
  const std::string stopped = mount_point + "/stopped";
  fs::copy(server_->data_dir(), stopped, fs::copy_options::recursive);
  ASSERT_FALSE(fs::exists(stopped + "/kura.db-wal"));
  ASSERT_EQ(::mount(nullptr, mount_point.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0) << std::strerror(errno);

  for (const std::string& dir : {stopped, killed}) {
    ProcessResult r = VerifyOffline(dir);
    ASSERT_EQ(r.exit_code, 0) << dir << "\n" << r.Describe();
    EXPECT_GT(r.json.value("entries", 0), 20) << r.json.dump();
  }
  ProcessResult refused = VerifyOffline(without_index);
  EXPECT_EQ(refused.exit_code, 2) << refused.Describe();
  EXPECT_NE(refused.err.find("-wal file holds commits"), std::string::npos) << refused.Describe();
}

// --- kura audit tail ---------------------------------------------------------------

TEST_F(AuditTest, TailShowsTheNewestEntriesAndFollows) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string error;
  auto tenant = CreateTestTenant(*server_, kAuditTenant, &error);
  ASSERT_TRUE(tenant) << error;
  ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 3));

  ProcessResult newest = server_->Cli({"audit", "tail", "-n", "3", "--format", "json"}, server_->root_token());
  ASSERT_EQ(newest.exit_code, 0) << newest.Describe();
  std::istringstream lines(newest.out);
  std::string line;
  std::vector<std::int64_t> seqs;
  while (std::getline(lines, line)) seqs.push_back(json::parse(line)["seq"].get<std::int64_t>());
  ASSERT_EQ(seqs.size(), 3u) << newest.out;
  EXPECT_EQ(seqs[1], seqs[0] + 1);
  EXPECT_EQ(seqs[2], seqs[1] + 1);

  // A tenant's own trail, filtered; its key needs audit.read (admin has it).
  ProcessResult reads = server_->Cli({"audit", "tail", "--tenant", kAuditTenant, "--action", "record.read", "--outcome",
                                      "success", "-n", "100", "--format", "json"},
                                     tenant->admin_key);
  ASSERT_EQ(reads.exit_code, 0) << reads.Describe();
  std::istringstream read_lines(reads.out);
  int count = 0;
  while (std::getline(read_lines, line)) {
    json item = json::parse(line);
    EXPECT_EQ(item["action"], "record.read");
    EXPECT_EQ(item["outcome"], "success");
    EXPECT_EQ(item["tenant"], kAuditTenant);
    ++count;
  }
  EXPECT_EQ(count, 3);  // MakeTraffic read the tenant's records 3 times (and was refused 3 times)

  // What tail asks the server for: ?last=N, the newest N matches, oldest
  // first, no next page — the same entries as the end of a full walk.
  const std::string reads_path = "/v1/t/" + std::string(kAuditTenant) + "/audit?action=record.read&outcome=success";
  HttpResponse all = server_->http().Get(reads_path + "&limit=1000", tenant->admin_key);
  ASSERT_EQ(all.status, 200) << all.Describe();
  HttpResponse last2 = server_->http().Get(reads_path + "&last=2", tenant->admin_key);
  ASSERT_EQ(last2.status, 200) << last2.Describe();
  json all_items = json::parse(all.body)["items"];
  json last_body = json::parse(last2.body);
  ASSERT_EQ(all_items.size(), 3u) << all.body;
  ASSERT_EQ(last_body["items"].size(), 2u) << last2.body;
  EXPECT_EQ(last_body["items"][0]["seq"], all_items[1]["seq"]);
  EXPECT_EQ(last_body["items"][1]["seq"], all_items[2]["seq"]);
  EXPECT_TRUE(last_body["next"].is_null()) << last2.body;
  for (const std::string bad : {"&last=0", "&last=1001", "&last=x", "&last=2&limit=2"}) {
    HttpResponse refused = server_->http().Get(reads_path + bad, tenant->admin_key);
    EXPECT_EQ(refused.status, 400) << bad << ": " << refused.Describe();
    EXPECT_NE(refused.body.find("last"), std::string::npos) << refused.body;
  }
  // Every tenant's trail at once is the operator's: a tenant key is refused (exit 4).
  ProcessResult other = server_->Cli({"audit", "tail"}, tenant->admin_key);
  EXPECT_EQ(other.exit_code, 4) << other.Describe();

  // --follow prints entries appended after it started. It starts on the
  // newest entry (-n 1), a marker request; once it has printed that, an
  // entry made afterwards can only reach its output by following.
  auto whoami = [&](const std::string& request_id) {
    return server_->http().Send({.method = "GET",
                                 .path = "/v1/whoami",
                                 .token = tenant->admin_key,
                                 .headers = {"X-Request-Id: " + request_id}});
  };
  ASSERT_EQ(whoami("follow-marker-41").status, 200);
  const std::string log = scratch_.Sub("tail.log");
  auto follower = BackgroundProcess::Spawn({KuraBinary(), "audit", "tail", "-f", "-n", "1", "--format", "json", "--addr",
                                            server_->base_url(), "--cacert", server_->ca_file(), "--token",
                                            server_->root_token()},
                                           log, &error);
  ASSERT_NE(follower, nullptr) << error;
  // Where the entry of `request_id` is among those the follower printed
  // (0: the first); nullopt until it is printed.
  auto printed_at = [&](const std::string& request_id) -> std::optional<std::size_t> {
    std::istringstream printed(ReadFile(log));
    std::string printed_line;
    std::size_t position = 0;
    while (std::getline(printed, printed_line)) {
      json item = json::parse(printed_line, nullptr, false);
      if (!item.is_object() || !item["entry"].is_string()) continue;  // stderr, or a line still being written
      if (json::parse(item["entry"].get<std::string>())["request_id"] == request_id) return position;
      ++position;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(WaitUntil([&] { return printed_at("follow-marker-41").has_value(); }, std::chrono::seconds(20)))
      << "the follower never printed the newest entry: " << ReadFile(log);
  EXPECT_EQ(printed_at("follow-marker-41"), 0u) << ReadFile(log);

  ASSERT_EQ(whoami("follow-me-42").status, 200);
  EXPECT_TRUE(WaitUntil([&] { return printed_at("follow-me-42").has_value(); }, std::chrono::seconds(20)))
      << "an entry made after the follower started was not printed: " << ReadFile(log);
  EXPECT_GT(printed_at("follow-me-42"), printed_at("follow-marker-41")) << ReadFile(log);
}

// --- SIEM export: a file sink and a syslog sink, across a rotation and a restart ---

// A syslog receiver on 127.0.0.1 (UDP): collects the seq of every message.
class SyslogReceiver {
 public:
  SyslogReceiver() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    timeval tv{0, 200000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int size = 8 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    thread_ = std::thread([this] {
      char buf[65536];
      while (!stop_) {
        ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) continue;
        std::string msg(buf, static_cast<std::size_t>(n));
        std::lock_guard lock(mu_);
        messages_.push_back(std::move(msg));
      }
    });
  }
  ~SyslogReceiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> messages_;
  std::thread thread_;
};

TEST_F(AuditTest, SiemSinksReceiveEveryEntryOnceAcrossRotationAndRestart) {
  SyslogReceiver syslog;
  const std::string export_file = scratch_.Sub("siem/audit.jsonl");
  fs::create_directories(scratch_.Sub("siem"));
  std::string config = config_dir_.Sub("siem.toml");
  WriteFile(config, "[audit]\ncheckpoint_interval = \"1s\"\n\n"
                    "[[audit.sink]]\nname = \"file\"\ntype = \"file\"\npath = \"" + export_file +
                        "\"\nmax_bytes = 8192\nkeep_files = 1000\n\n"
                        "[[audit.sink]]\nname = \"syslog\"\ntype = \"syslog\"\naddress = \"udp://127.0.0.1:" +
                        std::to_string(syslog.port()) + "\"\n");
  ServerOptions options;
  options.config_file = config;
  std::string error;
  server_ = KuraServer::Start(options, &error);
  ASSERT_NE(server_, nullptr) << error;
  auto tenant = CreateTestTenant(*server_, kAuditTenant, &error);
  ASSERT_TRUE(tenant) << error;
  ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 6));
  ASSERT_EQ(server_->Stop(), 0) << server_->Log();
  ASSERT_TRUE(server_->Restart(&error)) << error;
  ASSERT_NO_FATAL_FAILURE(MakeTraffic(*server_, *tenant, 6));
  ASSERT_EQ(server_->Stop(), 0) << server_->Log();

  ProcessResult count = RunProcess({"sqlite3", server_->data_dir() + "/kura.db", "SELECT count(*) FROM audit_log"});
  ASSERT_EQ(count.exit_code, 0) << count.Describe();
  const std::int64_t entries = std::stoll(count.out);
  ASSERT_GT(entries, 40);

  // The file sink: the current file and its rotations hold every seq once.
  std::map<std::int64_t, int> in_files;
  int files = 0;
  for (const auto& f : fs::directory_iterator(scratch_.Sub("siem"))) {
    if (f.path().filename().string().rfind("audit.jsonl", 0) != 0) continue;
    ++files;
    std::istringstream lines(ReadFile(f.path().string()));
    std::string line;
    while (std::getline(lines, line)) {
      json j = json::parse(line, nullptr, false);
      ASSERT_TRUE(j.is_object()) << line;
      ++in_files[j["seq"].get<std::int64_t>()];
      EXPECT_EQ(j["hash"].get<std::string>().size(), 64u);
    }
  }
  EXPECT_GT(files, 1) << "the file was never rotated";
  EXPECT_EQ(static_cast<std::int64_t>(in_files.size()), entries);
  for (const auto& [seq, n] : in_files) {
    EXPECT_EQ(n, 1) << "seq " << seq;
    EXPECT_LT(seq, entries);
  }

  // The syslog sink: RFC 5424 messages, every seq once. The receiver may
  // still be draining its socket: collect until every seq is in (or the
  // deadline, and the count below fails).
  std::map<std::int64_t, int> in_syslog;
  std::vector<std::string> malformed;
  WaitUntil(
      [&] {
        in_syslog.clear();
        malformed.clear();
        for (const std::string& m : syslog.messages()) {
          std::size_t brace = m.find("{\"v\":");
          json j = brace == std::string::npos ? json() : json::parse(m.substr(brace), nullptr, false);
          if (m.rfind("<", 0) != 0 || m.find(">1 ") == std::string::npos || !j.is_object() ||
              !j["seq"].is_number_integer()) {
            malformed.push_back(m);
            continue;
          }
          ++in_syslog[j["seq"].get<std::int64_t>()];
        }
        return static_cast<std::int64_t>(in_syslog.size()) >= entries;
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(malformed.empty()) << malformed.size() << " malformed, the first: " << malformed.front();
  EXPECT_EQ(static_cast<std::int64_t>(in_syslog.size()), entries);
  for (const auto& [seq, n] : in_syslog) EXPECT_EQ(n, 1) << "seq " << seq;
}

}  // namespace
}  // namespace kura::e2e
