// Test support for the command tests: a fake transport that records requests
// and answers from a queue, and a fixture that runs one command line the way
// a fresh `kura` process would.
#ifndef KURA_CLI_COMMANDS_TEST_UTIL_H_
#define KURA_CLI_COMMANDS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/server_commands.h"

namespace kura::cli::test_support {

struct Recorded {
  ClientOptions options;
  Request request;
};

// Records requests; answers from a queue (default: 200 {}).
class FakeServer {
 public:
  void Answer(long status, std::string body, std::map<std::string, std::string> headers = {}) {
    answers_.push_back(Response{status, std::move(body), std::move(headers)});
  }
  void FailTransport() { fail_transport_ = true; }

  Connector connector() {
    return [this](const ClientOptions& options) -> Result<std::unique_ptr<Transport>> {
      return std::unique_ptr<Transport>(std::make_unique<Fake>(this, options));
    };
  }

  std::vector<Recorded> requests;

 private:
  class Fake : public Transport {
   public:
    Fake(FakeServer* server, ClientOptions options) : server_(server), options_(std::move(options)) {}
    Result<Response> Send(const Request& request) override {
      server_->requests.push_back({options_, request});
      if (server_->fail_transport_) return UnavailableError("cannot reach x: Connection refused");
      if (server_->answers_.empty()) return Response{200, "{}", {}};
      Response r = server_->answers_.front();
      server_->answers_.pop_front();
      return r;
    }

   private:
    FakeServer* server_;
    ClientOptions options_;
  };

  std::deque<Response> answers_;
  bool fail_transport_ = false;
};

class CommandsTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    in_.str(stdin_text);
    in_.clear();
    out_.str("");
    err_.str("");
    // A fresh app and context per run, as in a real process.
    app_ = std::make_unique<CLI::App>("", "kura");
    ctx_ = std::make_unique<Context>();
    ctx_->connect = server_.connector();
    ctx_->in = &in_;
    ctx_->out = &out_;
    ctx_->err = &err_;
    ConfigureRootApp(app_.get());
    AddClientCommands(app_.get(), ctx_.get());
    // `kura audit` reads the server's trail over the same transport.
    AddAuditCommands(app_.get(), ctx_.get());
    return cli::Run(app_.get(), ctx_.get(), std::move(args));
  }

  const Request& Last() {
    EXPECT_FALSE(server_.requests.empty());
    return server_.requests.back().request;
  }

  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

  FakeServer server_;
  std::istringstream in_;
  std::ostringstream out_, err_;
  std::unique_ptr<CLI::App> app_;
  std::unique_ptr<Context> ctx_;
};

}  // namespace kura::cli::test_support

#endif  // KURA_CLI_COMMANDS_TEST_UTIL_H_
