#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "ops/fake_vault_for_test.h"

namespace kura::http {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

// --- Test PKI: root CA → intermediate → leaf (ECDSA P-256 or a given key; SHA-256) ---

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Cert MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, bool ca, long serial) {
  Cert cert(X509_new());
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : x;
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  if (ca) {
    AddExt(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(x, signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(x, signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    AddExt(x, signer, NID_ext_key_usage, "serverAuth");
  }
  X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

void WritePem(const fs::path& path, std::initializer_list<X509*> certs, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  for (X509* c : certs) PEM_write_X509(f, c);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

struct Pki {
  fs::path dir;
  std::string ca, chain, key;
};

// Writes ca.pem, chain.pem (leaf + intermediate) and key.pem into `dir`;
// the leaf's CN is `leaf_cn`, its key `leaf_key` (the CAs stay P-256).
Pki MakePki(const fs::path& dir, const std::string& leaf_cn, Key leaf_key = Key(EVP_EC_gen("P-256"))) {
  fs::create_directories(dir);
  Key root_key(EVP_EC_gen("P-256"));
  Key inter_key(EVP_EC_gen("P-256"));
  Cert root = MakeCert(root_key.get(), "kura test root", nullptr, nullptr, true, 1);
  Cert inter = MakeCert(inter_key.get(), "kura test intermediate", root.get(), root_key.get(), true, 2);
  Cert leaf = MakeCert(leaf_key.get(), leaf_cn, inter.get(), inter_key.get(), false, 3);
  Pki pki{dir, (dir / "ca.pem").string(), (dir / "chain.pem").string(), (dir / "key.pem").string()};
  WritePem(pki.ca, {root.get()}, nullptr);
  WritePem(pki.chain, {leaf.get(), inter.get()}, nullptr);
  WritePem(pki.key, {}, leaf_key.get());
  return pki;
}

// --- A small blocking HTTP/1.1 client over OpenSSL or plain TCP ---------------

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  json Json() const { return json::parse(body); }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct ClientOptions {
  bool tls = true;
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string cipher_list;  // TLS 1.2 suites; empty = OpenSSL default
  std::string ca_file;      // verify the server against this root
  bool legacy = false;      // allow what OpenSSL 3 refuses by default (TLS 1.1)
};

// A client of one protocol version that may offer what OpenSSL 3 refuses by
// default (`legacy`): to show the server refuses it, not our own client.
ClientOptions LegacyClient(int version, std::string cipher_list = "") {
  ClientOptions options;
  options.legacy = true;
  options.min_version = options.max_version = version;
  options.cipher_list = std::move(cipher_list);
  return options;
}

class Client {
 public:
  ~Client() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }

  // nullptr on failure; *tls_reason gets the OpenSSL reason code of a failed
  // handshake (e.g. the alert the server sent).
  static std::unique_ptr<Client> Connect(std::uint16_t port, const ClientOptions& options = {},
                                         int* tls_reason = nullptr) {
    auto c = std::unique_ptr<Client>(new Client());
    c->fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return nullptr;
    if (!options.tls) return c;

    ERR_clear_error();
    c->ctx_ = SSL_CTX_new(TLS_client_method());
    if (options.legacy) {
      SSL_CTX_set_security_level(c->ctx_, 0);
      SSL_CTX_set_cipher_list(c->ctx_, "DEFAULT:@SECLEVEL=0");
    }
    SSL_CTX_set_min_proto_version(c->ctx_, options.min_version);
    SSL_CTX_set_max_proto_version(c->ctx_, options.max_version);
    if (!options.cipher_list.empty()) SSL_CTX_set_cipher_list(c->ctx_, options.cipher_list.c_str());
    if (!options.ca_file.empty()) {
      SSL_CTX_load_verify_locations(c->ctx_, options.ca_file.c_str(), nullptr);
      SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
    }
    c->ssl_ = SSL_new(c->ctx_);
    if (!options.ca_file.empty()) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl_), "127.0.0.1");
    SSL_set_fd(c->ssl_, c->fd_);
    if (SSL_connect(c->ssl_) != 1) {
      if (tls_reason) *tls_reason = ERR_GET_REASON(ERR_peek_last_error());
      ERR_clear_error();
      return nullptr;
    }
    return c;
  }

  SSL* ssl() { return ssl_; }

  bool Write(std::string_view data) {
    while (!data.empty()) {
      int n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                   : static_cast<int>(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // `headers_only`: the answer to a HEAD request, which has no content.
  std::optional<Reply> Read(bool headers_only = false) {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Reply reply;
    std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    std::size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12) return std::nullopt;
    reply.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      reply.headers[name] = value;
      pos = next + 2;
    }
    if (reply.status == 100 || headers_only) return reply;
    std::size_t length = reply.headers.count("content-length") ? std::stoul(reply.headers["content-length"]) : 0;
    while (buffer_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return reply;
  }

  // Sends one request and reads its reply.
  std::optional<Reply> Request(const std::string& method, const std::string& target, const std::string& body = "",
                               const std::string& extra_headers = "Authorization: Bearer key-token\r\n") {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
    if (!body.empty() || method == "POST" || method == "PUT") {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "\r\n" + body;
    if (!Write(req)) return std::nullopt;
    return Read();
  }

  // True when the server closed the connection (EOF or reset) within the
  // receive timeout.
  bool Closed() {
    char ch;
    int n = ssl_ ? SSL_read(ssl_, &ch, 1) : static_cast<int>(::recv(fd_, &ch, 1, 0));
    if (n > 0) return false;
    if (ssl_) {
      int err = SSL_get_error(ssl_, n);
      ERR_clear_error();
      if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
      return true;
    }
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

 private:
  Client() = default;
  bool Fill() {
    char buf[16384];
    int n = ssl_ ? SSL_read(ssl_, buf, sizeof(buf)) : static_cast<int>(::recv(fd_, buf, sizeof(buf), 0));
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buffer_;
};

// --- Fixture --------------------------------------------------------------------

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("kura-http-test-" + std::to_string(::getpid())));
    pki_ = new Pki(MakePki(*dir_ / "a", "kura-a"));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete pki_;
    delete dir_;
  }

  Config MakeConfig() {
    Config c;
    c.listener.address = "127.0.0.1:0";
    c.listener.tls_cert = pki_->chain;
    c.listener.tls_key = pki_->key;
    c.listener.threads = 2;
    c.listener.drain_timeout = std::chrono::seconds(10);
    return c;
  }

  void Start(const Config& config) {
    Result<std::unique_ptr<Server>> server = Server::Create(config, &vault_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    thread_ = std::thread([this] { run_status_ = server_->Run(); });
  }
  void Start() { Start(MakeConfig()); }

  void Stop() {
    if (!thread_.joinable()) return;
    server_->Shutdown();
    thread_.join();
  }
  void TearDown() override { Stop(); }

  // The request is in the vault (not just in a socket buffer) before a test
  // starts the drain.
  void WaitForWriteToStart() {
    for (int i = 0; i < 1000 && vault_.writes_started == 0; ++i) std::this_thread::sleep_for(milliseconds(10));
    ASSERT_EQ(vault_.writes_started, 1);
  }

  std::unique_ptr<Client> Connect(const ClientOptions& options = {}) {
    return Client::Connect(server_->port(), options);
  }

  static fs::path* dir_;
  static Pki* pki_;
  ops::testing::FakeVault vault_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  Status run_status_ = InternalError("Run() has not returned");
};

fs::path* ServerTest::dir_ = nullptr;
Pki* ServerTest::pki_ = nullptr;

TEST_F(ServerTest, HttpsRoundTripWithFullChainAndHsts) {
  Start();
  EXPECT_EQ(server_->url(), "https://127.0.0.1:" + std::to_string(server_->port()));
  ClientOptions options;
  options.ca_file = pki_->ca;  // the client trusts only the root: the server must send the intermediate
  auto client = Connect(options);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(SSL_get_verify_result(client->ssl()), X509_V_OK);
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(client->ssl());
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(sk_X509_num(chain), 2);

  auto reply = client->Request("GET", "/v1/sys/health", "", "");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->Json(), json::parse(R"({"live":true,"ready":true,"sealed":false,"initialized":true})"));
  EXPECT_EQ(reply->Header("strict-transport-security"), "max-age=63072000; includeSubDomains");
  EXPECT_EQ(reply->Header("content-type"), "application/json");
  EXPECT_EQ(reply->Header("x-request-id").size(), 15u);

  reply = client->Request("GET", "/v1/t/acme/collections/customers/records/r1");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->Header("etag"), "\"3\"");
  EXPECT_EQ(reply->Json()["call"], "GetRecord");
  EXPECT_EQ(reply->Header("strict-transport-security"), "max-age=63072000; includeSubDomains");
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 5; ++i) {
    auto reply = client->Request("GET", "/v1/t/acme/collections/c/records/r" + std::to_string(i));
    ASSERT_TRUE(reply) << i;
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->Json()["id"], "r" + std::to_string(i));
    EXPECT_EQ(reply->Header("connection"), "");
  }
  // A write goes through the blocking pool and comes back to the same connection.
  auto reply = client->Request("POST", "/v1/t/acme/collections/c/records", R"({"data":{"x":1}})");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 201);
  reply = client->Request("GET", "/v1/t/acme/collections/c/records/after-write");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(vault_.writes_done, 1);
  EXPECT_EQ(vault_.reads_done, 6);
}

// A busy TLS connection keeps its record buffers; one idle between requests
// gives them back within a couple of sweeps and then serves its next
// requests with new ones.
TEST_F(ServerTest, IdleTlsConnectionGivesItsBuffersBackAndServesOn) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client->Request("GET", "/v1/t/acme/collections/c/records/r")->status, 200);
  EXPECT_EQ(server_->idle_tls_buffers_released(), 0);
  for (int i = 0; i < 400 && server_->idle_tls_buffers_released() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(server_->idle_tls_buffers_released(), 1);
  std::this_thread::sleep_for(milliseconds(1200));
  EXPECT_EQ(server_->idle_tls_buffers_released(), 1) << "released once, not again while still idle";
  for (int i = 0; i < 3; ++i) {
    auto reply = client->Request("POST", "/v1/t/acme/collections/c/records", R"({"data":{"x":1}})");
    ASSERT_TRUE(reply) << i;
    EXPECT_EQ(reply->status, 201);
  }
  auto reply = client->Request("GET", "/v1/t/acme/collections/c/records/again");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->Json()["id"], "again");
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  std::string two;
  for (const char* id : {"p1", "p2"}) {
    two += std::string("GET /v1/t/acme/collections/c/records/") + id +
           " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-token\r\n\r\n";
  }
  ASSERT_TRUE(client->Write(two));
  auto first = client->Read();
  auto second = client->Read();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->Json()["id"], "p1");
  EXPECT_EQ(second->Json()["id"], "p2");
}

// HEAD on a probe's route is its GET without the content; on any other
// route it is a 405 with the headers an error has and no content. Either
// way the next answer on the connection starts where the client expects it.
TEST_F(ServerTest, HeadIsAnsweredWithoutContent) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(
      client->Write("HEAD /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n"
                    "HEAD /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n"
                    "HEAD /v1/tenants HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto health = client->Read(/*headers_only=*/true);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto seal_status = client->Read(/*headers_only=*/true);
  ASSERT_TRUE(seal_status);
  EXPECT_EQ(seal_status->status, 200);
  EXPECT_NE(seal_status->Header("content-length"), "0");
  auto tenants = client->Read(/*headers_only=*/true);
  ASSERT_TRUE(tenants);
  EXPECT_EQ(tenants->status, 405);
  EXPECT_EQ(tenants->Header("allow"), "POST, GET");
  EXPECT_NE(tenants->Header("content-length"), "0");
  auto get = client->Read();
  ASSERT_TRUE(get) << "a HEAD answer's content was sent and read as the next answer";
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->Json()["live"], true);
  // The HEAD's headers describe the GET's content.
  EXPECT_EQ(health->Header("content-length"), std::to_string(get->body.size()));
  EXPECT_EQ(health->Header("content-type"), get->Header("content-type"));
}

TEST_F(ServerTest, OversizeBodyIs413BeforeTheBodyIsRead) {
  Config config = MakeConfig();
  config.listener.max_body_bytes = 1024;
  Start(config);
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(
      client->Write("POST /v1/t/acme/collections/c/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-token\r\n"
                    "Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"data\":"));
  auto reply = client->Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413);
  EXPECT_EQ(reply->Json()["error"]["code"], "payload_too_large");
  EXPECT_EQ(reply->Json()["error"]["request_id"], reply->Header("x-request-id"));
  EXPECT_EQ(reply->Header("connection"), "close");
  EXPECT_EQ(vault_.writes_done, 0);

  // A body within the limit is fine.
  auto ok = Connect();
  ASSERT_NE(ok, nullptr);
  reply = ok->Request("POST", "/v1/t/acme/collections/c/records", R"({"data":{"a":"b"}})");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 201);
}

TEST_F(ServerTest, ExpectContinueGetsAnInterimResponse) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  const std::string body = R"({"data":{"a":1}})";
  ASSERT_TRUE(
      client->Write("POST /v1/t/acme/collections/c/records HTTP/1.1\r\nHost: x\r\n"
                    "Authorization: Bearer key-token\r\nContent-Type: application/json\r\n"
                    "Expect: 100-continue\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n"));
  auto interim = client->Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client->Write(body));
  auto reply = client->Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 201);
}

TEST_F(ServerTest, OversizeHeaderIs431) {
  Config config = MakeConfig();
  config.listener.max_header_bytes = 2048;
  Start(config);
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("GET", "/v1/sys/health", "", "X-Pad: " + std::string(4000, 'a') + "\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 431);
  EXPECT_EQ(reply->Json()["error"]["code"], "payload_too_large");
}

TEST_F(ServerTest, MalformedJsonIs400) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("POST", "/v1/t/acme/collections/c/records", R"({"data":)");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);
  EXPECT_EQ(reply->Json()["error"]["code"], "invalid_argument");
  EXPECT_EQ(reply->Json()["error"]["message"].get<std::string>().rfind("malformed JSON", 0), 0u);
  // The connection stays usable after a 400 from a handler.
  reply = client->Request("GET", "/v1/sys/health", "", "");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
}

TEST_F(ServerTest, MissingTokenIs401WithChallenge) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("GET", "/v1/t/acme/collections/c/records/r1", "", "");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 401);
  EXPECT_EQ(reply->Json()["error"]["code"], "unauthenticated");
  EXPECT_EQ(reply->Header("www-authenticate"), R"(Bearer realm="kura")");
  EXPECT_FALSE(reply->Header("strict-transport-security").empty());
}

TEST_F(ServerTest, RouteErrorsOverTheWire) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("GET", "/nope");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 404);
  EXPECT_EQ(reply->Json()["error"]["code"], "not_found");
  reply = client->Request("PATCH", "/v1/t/acme/collections/c/records/r1");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 405);
  EXPECT_EQ(reply->Header("allow"), "GET, PUT, DELETE");
  reply = client->Request("GET", "/v1/tenants/a%2Fb");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);
  reply = client->Request("GET", "/v1/sys/health", "", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);
}

TEST_F(ServerTest, RequestIdsAreEchoedOrGenerated) {
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("GET", "/v1/t/acme/collections/c/records/r1", "",
                               "Authorization: Bearer key-token\r\nX-Request-Id: trace-42\r\nX-Kura-Reason: app\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->Header("x-request-id"), "trace-42");
  vault::RequestContext ctx = vault_.LastContext();
  EXPECT_EQ(ctx.request_id, "trace-42");
  EXPECT_EQ(ctx.client_address, "127.0.0.1");
  EXPECT_EQ(ctx.reason, "app");

  reply = client->Request("GET", "/v1/nope", "", "X-Request-Id: bad id with spaces\r\n");
  ASSERT_TRUE(reply);
  const std::string id = reply->Header("x-request-id");
  EXPECT_EQ(id.size(), 15u);
  EXPECT_EQ(reply->Json()["error"]["request_id"], id);
}

TEST_F(ServerTest, OldTlsVersionsAndCbcSuitesAreRefused) {
  Start();
  // Control: the same legacy-capable client gets in with TLS 1.2 + GCM and TLS 1.3.
  ASSERT_NE(Connect(LegacyClient(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256")), nullptr);
  ClientOptions tls13;
  tls13.min_version = TLS1_3_VERSION;
  ASSERT_NE(Connect(tls13), nullptr);

  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    int reason = 0;
    EXPECT_EQ(Client::Connect(server_->port(), LegacyClient(version), &reason), nullptr) << version;
    // The server said no (a protocol_version alert), not our own client.
    EXPECT_EQ(reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) << version;
  }

  ClientOptions cbc =
      LegacyClient(TLS1_2_VERSION,
                   "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:"
                   "AES128-SHA256:AES128-SHA:AES256-SHA");
  int reason = 0;
  EXPECT_EQ(Client::Connect(server_->port(), cbc, &reason), nullptr);
  EXPECT_EQ(reason, SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
}

// Suites that need an RSA certificate can only be negotiated (or refused)
// by a server that has one.
TEST_F(ServerTest, RsaKeyExchangeAndRsaCbcSuitesAreRefused) {
  Pki rsa = MakePki(*dir_ / "rsa", "kura-rsa", Key(EVP_RSA_gen(2048)));
  Config config = MakeConfig();
  config.listener.tls_cert = rsa.chain;
  config.listener.tls_key = rsa.key;
  Start(config);
  // Control: the RSA certificate serves ECDHE-RSA with GCM.
  auto client = Connect(LegacyClient(TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256"));
  ASSERT_NE(client, nullptr);
  EXPECT_STREQ(SSL_get_cipher_name(client->ssl()), "ECDHE-RSA-AES128-GCM-SHA256");

  // RSA key exchange (no forward secrecy), and CBC under ECDHE-RSA.
  for (const char* suite : {"AES128-GCM-SHA256", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"}) {
    int reason = 0;
    EXPECT_EQ(Client::Connect(server_->port(), LegacyClient(TLS1_2_VERSION, suite), &reason), nullptr) << suite;
    EXPECT_EQ(reason, SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE) << suite;
  }
}

TEST_F(ServerTest, CompatibilityProfileAcceptsEcdheCbc) {
  Config config = MakeConfig();
  config.listener.tls_profile = "compatibility";
  Start(config);
  auto client = Connect(LegacyClient(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256"));
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("GET", "/v1/sys/health", "", "");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  // Still no TLS 1.1.
  EXPECT_EQ(Connect(LegacyClient(TLS1_1_VERSION)), nullptr);
}

TEST_F(ServerTest, GracefulShutdownLetsInFlightRequestsFinish) {
  Start();
  auto idle = Connect();
  ASSERT_NE(idle, nullptr);
  ASSERT_TRUE(idle->Request("GET", "/v1/sys/health", "", ""));

  vault_.write_delay_ms = 1500;
  auto busy = Connect();
  ASSERT_NE(busy, nullptr);
  ASSERT_TRUE(
      busy->Write("POST /v1/t/acme/collections/c/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-token\r\n"
                  "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"data\":{}}"));
  WaitForWriteToStart();
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown();

  // The idle keep-alive connection is closed at once.
  EXPECT_TRUE(idle->Closed());
  // The slow write completes and is answered, with Connection: close.
  auto reply = busy->Read();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 201);
  EXPECT_EQ(reply->Header("connection"), "close");
  thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(vault_.writes_done, 1);
  // Nothing listens any more.
  EXPECT_EQ(Connect(), nullptr);
}

TEST_F(ServerTest, DrainTimeoutBoundsShutdown) {
  Config config = MakeConfig();
  config.listener.drain_timeout = std::chrono::seconds(1);
  Start(config);
  vault_.write_delay_ms = 2500;
  auto busy = Connect();
  ASSERT_NE(busy, nullptr);
  ASSERT_TRUE(
      busy->Write("POST /v1/t/acme/collections/c/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-token\r\n"
                  "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"data\":{}}"));
  WaitForWriteToStart();
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  thread_.join();
  EXPECT_TRUE(run_status_.ok());
  // Run() waits for the vault call already running (it is never abandoned
  // half-way) but not for the connection.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  EXPECT_EQ(vault_.writes_done, 1);
  EXPECT_FALSE(busy->Read());
}

TEST_F(ServerTest, ConnectionsBeyondTheLimitGet503) {
  Config config = MakeConfig();
  config.listener.max_connections = 1;
  Start(config);
  auto first = Connect();
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(first->Request("GET", "/v1/sys/health", "", "")->status, 200);

  auto second = Connect();
  ASSERT_NE(second, nullptr);
  auto reply = second->Request("GET", "/v1/sys/health", "", "");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(reply->Header("retry-after"), "1");
  EXPECT_EQ(reply->Header("connection"), "close");
  EXPECT_EQ(reply->Json()["error"]["code"], "unavailable");

  first.reset();
  // Once the first is gone a new connection is served again.
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    auto next = Connect();
    if (next == nullptr) continue;
    auto r = next->Request("GET", "/v1/sys/health", "", "");
    served = r && r->status == 200;
  }
  EXPECT_TRUE(served);
}

TEST_F(ServerTest, IdleConnectionsTimeOut) {
  Config config = MakeConfig();
  config.listener.idle_timeout = std::chrono::seconds(1);
  Start(config);
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_EQ(client->Request("GET", "/v1/sys/health", "", "")->status, 200);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client->Closed());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST_F(ServerTest, SealedVaultAnswers503) {
  vault_.sealed = true;
  Start();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("GET", "/v1/t/acme/collections/c/records/r1");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(reply->Json()["error"]["code"], "sealed");
  EXPECT_FALSE(reply->Header("retry-after").empty());
  reply = client->Request("GET", "/v1/sys/health", "", "");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(reply->Json()["sealed"], true);
}

TEST_F(ServerTest, PlainHttpWhenConfigured) {
  Config config = MakeConfig();
  config.listener.plain_http = true;
  config.listener.tls_cert.clear();
  config.listener.tls_key.clear();
  config.listener.threads = 1;
  Start(config);
  EXPECT_EQ(server_->url().rfind("http://127.0.0.1:", 0), 0u);
  ClientOptions plain;
  plain.tls = false;
  auto client = Connect(plain);
  ASSERT_NE(client, nullptr);
  auto reply = client->Request("GET", "/v1/t/acme/collections/c/records/r1");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(reply->Header("strict-transport-security").empty());
}

TEST_F(ServerTest, SighupReloadsTheCertificate) {
  const fs::path live = *dir_ / "live";
  fs::create_directories(live);
  fs::copy_file(pki_->chain, live / "chain.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(pki_->key, live / "key.pem", fs::copy_options::overwrite_existing);
  Config config = MakeConfig();
  config.listener.tls_cert = (live / "chain.pem").string();
  config.listener.tls_key = (live / "key.pem").string();
  Start(config);

  auto leaf_cn = [](Client* c) {
    X509* cert = SSL_get0_peer_certificate(c->ssl());
    char cn[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    return std::string(cn);
  };
  auto before = Connect();
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(leaf_cn(before.get()), "kura-a");
  ASSERT_TRUE(before->Request("GET", "/v1/sys/health", "", ""));  // Run() is up: signals are handled

  Pki b = MakePki(*dir_ / "b", "kura-b");
  fs::copy_file(b.chain, live / "chain.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(b.key, live / "key.pem", fs::copy_options::overwrite_existing);
  ASSERT_EQ(std::raise(SIGHUP), 0);

  std::string seen;
  for (int i = 0; i < 50 && seen != "kura-b"; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    auto after = Connect();
    ASSERT_NE(after, nullptr);
    seen = leaf_cn(after.get());
  }
  EXPECT_EQ(seen, "kura-b");
  // The connection opened before the reload keeps working.
  auto reply = before->Request("GET", "/v1/sys/health", "", "");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
}

TEST_F(ServerTest, CreateRefusesBadConfiguration) {
  Config config = MakeConfig();
  config.listener.tls_cert = (*dir_ / "missing.pem").string();
  auto r = Server::Create(config, &vault_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  config = MakeConfig();
  config.listener.address = "127.0.0.1";
  EXPECT_EQ(Server::Create(config, &vault_).status().code(), StatusCode::kInvalidArgument);

  config = MakeConfig();
  config.listener.tls_profile = "legacy";
  EXPECT_EQ(Server::Create(config, &vault_).status().code(), StatusCode::kInvalidArgument);

  // A port someone else listens on is refused, even with SO_REUSEPORT.
  Start();
  config = MakeConfig();
  config.listener.address = "127.0.0.1:" + std::to_string(server_->port());
  EXPECT_EQ(Server::Create(config, &vault_).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace kura::http
