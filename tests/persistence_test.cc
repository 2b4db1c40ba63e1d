// What survives and what never lands on disk: a restart (clean or after
// SIGKILL) keeps every acknowledged record and the dev credentials; no file
// of the data directory holds a stored field value or a token in plain form;
// SIGTERM lets a request in flight finish and then exits 0; a second server
// on the same data directory is refused.
#include <curl/curl.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace kura::e2e {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class PersistenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server_ = KuraServer::Start({}, &error);
    ASSERT_NE(server_, nullptr) << error;
    auto tenant = CreateTestTenant(*server_, "persist-e2e", &error);
    ASSERT_TRUE(tenant) << error;
    tenant_ = *tenant;
  }

  // Writes `n` records (every third one updated to version 2); returns id → record.
  std::map<std::string, json> WriteRecords(int n) {
    std::map<std::string, json> written;
    auto& http = server_->http();
    for (int i = 0; i < n; ++i) {
      json data = {{"email", "person" + std::to_string(i) + "@example.com"},
                   {"phone", "+81-90-0000-" + std::to_string(1000 + i)},
                   {"note", "record " + std::to_string(i)}};
      HttpResponse r = http.Post(RecordsPath(tenant_.id, "customers"), {{"data", data}}, tenant_.admin_key);
      EXPECT_EQ(r.status, 201) << r.Describe();
      if (r.status != 201) continue;
      std::string id = r.json["id"];
      json record = {{"data", data}, {"version", 1}};
      if (i % 3 == 0) {
        data["note"] = "record " + std::to_string(i) + " updated";
        r = http.Put(RecordPath(tenant_.id, "customers", id), {{"data", data}}, tenant_.admin_key, {"If-Match: \"1\""});
        EXPECT_EQ(r.status, 200) << r.Describe();
        record = {{"data", data}, {"version", 2}};
      }
      written[id] = record;
    }
    return written;
  }

  void ExpectRecords(const std::map<std::string, json>& written) {
    auto& http = server_->http();
    for (const auto& [id, record] : written) {
      HttpResponse r = http.Get(RecordPath(tenant_.id, "customers", id), tenant_.admin_key);
      ASSERT_EQ(r.status, 200) << id << ": " << r.Describe();
      EXPECT_EQ(r.json["data"], record["data"]) << id;
      EXPECT_EQ(r.json["version"], record["version"]) << id;
    }
    auto ids = ListAllRecordIds(http, tenant_.admin_key, tenant_.id, "customers");
    ASSERT_TRUE(ids);
    EXPECT_EQ(ids->size(), written.size());
    // The blind index survives too.
    HttpResponse found = http.Get(RecordsPath(tenant_.id, "customers") + "?email=PERSON7%40example.com",
                                  tenant_.admin_key);
    ASSERT_EQ(found.status, 200) << found.Describe();
    EXPECT_EQ(found.json["items"].size(), 1u) << found.Describe();
  }

  std::unique_ptr<KuraServer> server_;
  TestTenant tenant_;
};

TEST_F(PersistenceTest, RestartKeepsEveryRecordAndTheDevCredentials) {
  const std::map<std::string, json> written = WriteRecords(30);
  ASSERT_EQ(written.size(), 30u);
  const std::string token_before = server_->root_token();
  const std::string data_dir = server_->data_dir();
  const std::string ca_before = ReadFile(server_->ca_file());

  EXPECT_EQ(server_->Stop(), 0) << Tail(server_->Log());
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;

  // dev.env is reused: the same root token, the same CA, and both still work.
  Env env = ParseEnvFile(data_dir + "/dev.env");
  EXPECT_EQ(env["KURA_TOKEN"], token_before);
  EXPECT_EQ(ReadFile(server_->ca_file()), ca_before);
  HttpResponse tenants = server_->http().Get("/v1/tenants", env["KURA_TOKEN"]);
  EXPECT_EQ(tenants.status, 200) << tenants.Describe();
  EXPECT_EQ(server_->http().Get("/v1/whoami", tenant_.admin_key).status, 200);
  ExpectRecords(written);

  // And through the CLI with the sourced dev.env.
  ProcessResult cli = server_->Cli({"tenant", "get", tenant_.id, "--format", "json"}, env["KURA_TOKEN"]);
  EXPECT_EQ(cli.exit_code, 0) << cli.Describe();
}

// Acknowledged writes survive a crash (SIGKILL: no shutdown code runs).
TEST_F(PersistenceTest, KillNineLosesNoAcknowledgedWrite) {
  const std::map<std::string, json> written = WriteRecords(20);
  ASSERT_EQ(written.size(), 20u);
  server_->Signal(SIGKILL);
  ASSERT_TRUE(server_->WaitExit(std::chrono::seconds(10)).has_value());
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  ExpectRecords(written);
}

// One process writes a data directory: kura keeps state beside the database
// (the audit chain's head, its cache of records), so a second server on the
// same directory is refused at start and the first serves on untouched.
TEST_F(PersistenceTest, ASecondServerOnTheSameDataDirectoryIsRefused) {
  const std::map<std::string, json> written = WriteRecords(8);
  ProcessResult second =
      RunProcess({KuraBinary(), "serve", "--dev", "--data", server_->data_dir(), "--listen", "127.0.0.1:0"}, {}, "",
                 std::chrono::seconds(30));
  EXPECT_FALSE(second.timed_out) << second.Describe();
  EXPECT_NE(second.exit_code, 0) << second.Describe();
  EXPECT_NE(second.err.find("is in use by another kura process"), std::string::npos) << second.Describe();
  ExpectRecords(written);
  EXPECT_EQ(server_->http().Get("/v1/whoami", tenant_.admin_key).status, 200);
}

// Every occurrence of `needle` in the files under `dir`, as "file@offset".
std::vector<std::string> FindInFiles(const std::string& dir, const std::string& needle,
                                     const std::vector<std::string>& skip_names = {}) {
  std::vector<std::string> hits;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (std::find(skip_names.begin(), skip_names.end(), name) != skip_names.end()) continue;
    const std::string content = ReadFile(entry.path().string());
    for (std::size_t pos = content.find(needle); pos != std::string::npos; pos = content.find(needle, pos + 1)) {
      hits.push_back(entry.path().string() + "@" + std::to_string(pos));
    }
  }
  return hits;
}

TEST_F(PersistenceTest, NoFieldValueOrTokenInAnyFileOfTheDataDirectory) {
  auto& http = server_->http();
  const std::map<std::string, std::string> values = {
      {"email", "Zq7.Canary.Hoshino@Example-Canary.com"},
      {"phone", "+81-3-9876-5432-77"},
      {"name", "Quokkabelle Hoshinozaki"},
      {"national_id", "JPN-NID-739158-284613"},
      {"note", "nebula-cartographer-wisteria"},
  };
  json data;
  for (const auto& [k, v] : values) data[k] = v;
  HttpResponse r = http.Post(RecordsPath(tenant_.id, "customers"), {{"data", data}, {"subject", "subject-canary-8812"}},
                             tenant_.admin_key);
  ASSERT_EQ(r.status, 201) << r.Describe();
  const std::string id = r.json["id"];
  json v2 = data;
  v2["note"] = "second-version-canary-lilac";
  r = http.Put(RecordPath(tenant_.id, "customers", id), {{"data", v2}}, tenant_.admin_key, {"If-Match: \"1\""});
  ASSERT_EQ(r.status, 200) << r.Describe();
  // A few more records, so the values sit among others and pages get written.
  for (int i = 0; i < 20; ++i) {
    json other = data;
    other["email"] = "bulk" + std::to_string(i) + "." + values.at("email");
    ASSERT_EQ(http.Post(RecordsPath(tenant_.id, "customers"), {{"data", other}}, tenant_.admin_key).status, 201);
  }
  r = http.Get(RecordsPath(tenant_.id, "customers") + "?email=" + UrlEncode(values.at("email")), tenant_.admin_key);
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_EQ(r.json["items"].size(), 1u) << r.Describe();

  std::string error;
  json reader = CreateApiKey(*server_, tenant_.admin_key, tenant_.id, "admin", &error);
  ASSERT_FALSE(reader.is_null()) << error;

  std::vector<std::string> needles;
  for (const auto& [k, v] : values) needles.push_back(v);
  std::string lower = values.at("email");
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  needles.push_back(lower);  // the normalised form the blind index is computed from
  needles.push_back("second-version-canary-lilac");
  needles.push_back("subject-canary-8812");
  auto key_secret = [](const std::string& key, const std::string& id) {
    return key.substr(std::string("kura_key_" + id + "_").size());
  };
  // API keys appear nowhere, not even in dev.env.
  const std::vector<std::string> api_keys = {tenant_.admin_key, key_secret(tenant_.admin_key, tenant_.admin_key_id),
                                             reader["key"].get<std::string>(),
                                             key_secret(reader["key"], reader["id"])};
  // The root token is in dev.env by design (that is what it is for); it must
  // not be anywhere else.
  const std::string root = server_->root_token();
  const std::string root_secret = root.substr(std::string("kura_root_").size());

  auto scan = [&](const std::string& when) {
    SCOPED_TRACE(when);
    const std::string dir = server_->data_dir();
    ASSERT_TRUE(fs::exists(dir + "/kura.db")) << "no kura.db in " << dir;
    for (const auto& needle : needles) EXPECT_EQ(FindInFiles(dir, needle), std::vector<std::string>{}) << needle;
    for (const auto& key : api_keys) EXPECT_EQ(FindInFiles(dir, key), std::vector<std::string>{}) << "an API key";
    EXPECT_EQ(FindInFiles(dir, root_secret, {"dev.env"}), std::vector<std::string>{}) << "the root token";
  };
  // While running (the WAL and its index hold the recent writes) …
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(server_->data_dir())) files.push_back(e.path().filename().string());
  std::cout << "data dir while running: ";
  for (const auto& f : files) std::cout << f << " ";
  std::cout << "\n";
  scan("server running");
  // … and after a clean stop (checkpointed into kura.db).
  EXPECT_EQ(server_->Stop(), 0);
  scan("server stopped");

  // Nor in the server's own output (access log, messages).
  const std::string log = server_->Log();
  for (const auto& needle : needles) EXPECT_EQ(log.find(needle), std::string::npos) << "log holds " << needle;
  for (const auto& key : api_keys) EXPECT_EQ(log.find(key), std::string::npos) << "log holds an API key";
}

// --- Graceful shutdown ---------------------------------------------------------

// A POST whose body arrives in two halves, the second only once released: the
// request is in flight on the server while we send SIGTERM.
struct SlowUpload {
  std::string body;
  std::size_t sent = 0;
  std::atomic<bool> first_half_sent{false};
  std::atomic<bool> release{false};
};

size_t ReadSlowly(char* buffer, size_t size, size_t nitems, void* user) {
  auto* up = static_cast<SlowUpload*>(user);
  const std::size_t half = up->body.size() / 2;
  if (up->sent >= half) {
    up->first_half_sent = true;
    while (!up->release) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::size_t limit = up->sent < half ? half : up->body.size();
  const std::size_t n = std::min(size * nitems, limit - up->sent);
  std::memcpy(buffer, up->body.data() + up->sent, n);
  up->sent += n;
  return n;
}

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

TEST_F(PersistenceTest, SigtermLetsTheRequestInFlightFinishThenExitsZero) {
  SlowUpload upload;
  upload.body = json({{"data", {{"email", "inflight@example.com"}, {"note", std::string(4000, 'x')}}}}).dump();
  long status = 0;
  std::string response;
  CURLcode rc = CURLE_OK;
  const std::string url = server_->base_url() + RecordsPath(tenant_.id, "customers");
  const std::string auth = "Authorization: Bearer " + tenant_.admin_key;
  std::thread client([&] {
    CURL* c = curl_easy_init();
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, auth.c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CAINFO, server_->ca_file().c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(upload.body.size()));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadSlowly);
    curl_easy_setopt(c, CURLOPT_READDATA, &upload);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
  });

  const auto wait_start = std::chrono::steady_clock::now();
  while (!upload.first_half_sent && std::chrono::steady_clock::now() - wait_start < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(upload.first_half_sent) << "the upload never started";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the headers and half the body reach the server

  server_->Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  // Still draining: the request has not finished.
  EXPECT_FALSE(server_->WaitExit(std::chrono::milliseconds(0)).has_value()) << "exited with a request in flight";
  // No new connections while draining.
  {
    HttpClient fresh(server_->base_url(), server_->ca_file());
    HttpResponse r = fresh.Send({.method = "GET", .path = "/v1/sys/health", .timeout_ms = 3000});
    EXPECT_NE(r.status, 200) << "a new request was served after SIGTERM";
  }

  const auto released = std::chrono::steady_clock::now();
  upload.release = true;
  client.join();
  EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  EXPECT_EQ(status, 201) << response;
  json created = json::parse(response, nullptr, false);
  ASSERT_TRUE(created.is_object() && created["id"].is_string()) << response;

  std::optional<int> code = server_->WaitExit(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "kura did not exit after SIGTERM";
  EXPECT_EQ(*code, 0) << Tail(server_->Log());
  std::cout << "exited " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - released).count()
            << " ms after the in-flight request was released\n";

  // The acknowledged write is there after a restart.
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  HttpResponse r = server_->http().Get(RecordPath(tenant_.id, "customers", created["id"]), tenant_.admin_key);
  EXPECT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json["data"]["email"], "inflight@example.com");
}

}  // namespace
}  // namespace kura::e2e
