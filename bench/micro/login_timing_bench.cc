// No user enumeration by timing (issue 4): a password sign-in for an unknown
// user must take as long as one for a known user with a wrong password (and
// as a successful one). The real vault on a real SQLite store, with kura's
// default Argon2id parameters; compare the three times side by side.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "crypto/seal.h"
#include "store/key_store.h"
#include "store/store.h"
#include "vault/vault.h"

namespace kura::vault {
namespace {

constexpr char kPassword[] = "Vermilion-Teapot-Harbour-42";

struct Fixture {
  std::string dir;
  std::unique_ptr<Vault> vault;
};

Fixture& Shared() {
  static Fixture* f = [] {
    auto* fx = new Fixture();
    char tmpl[] = "/tmp/kura-login-bench.XXXXXX";
    fx->dir = mkdtemp(tmpl);
    auto store = store::OpenSqliteStore({.path = fx->dir + "/kura.db", .durable = true});
    if (!store.ok()) std::abort();
    Options options;
    options.store = std::move(store).value();
    options.seal = crypto::MakeKeyfileSeal(fx->dir + "/kek.key");
    auto vault = Vault::Open(std::move(options));  // default IdentityOptions: 64 MiB, 3 passes
    if (!vault.ok()) std::abort();
    fx->vault = std::move(vault).value();
    auto init = fx->vault->Initialize(RequestContext{}, nlohmann::json::object());
    if (!init.ok()) std::abort();
    auto root = fx->vault->Authenticate(init->body["root_token"].get<std::string>());
    if (!root.ok()) std::abort();
    Caller caller{*root, RequestContext{}};
    if (!fx->vault->CreateTenant(caller, {{"id", "acme"}, {"name", "Acme"},
                                          {"admin", {{"username", "hana"}, {"password", kPassword}}}})
             .ok()) {
      std::abort();
    }
    return fx;
  }();
  return *f;
}

void Login(benchmark::State& state, const char* username, const char* password, bool expect_ok) {
  Vault& vault = *Shared().vault;
  nlohmann::json body = {{"username", username}, {"password", password}, {"tenant", "acme"}};
  for (auto _ : state) {
    auto reply = vault.Login(RequestContext{}, body);
    if (reply.ok() != expect_ok) {
      state.SkipWithError("unexpected sign-in outcome");
      break;
    }
  }
}

// Wrong passwords would lock the account after five: every third one is
// followed (untimed) by a right one, which resets the count.
void BM_LoginKnownUserWrongPassword(benchmark::State& state) {
  Vault& vault = *Shared().vault;
  nlohmann::json wrong = {{"username", "hana"}, {"password", "not-the-password-1"}, {"tenant", "acme"}};
  nlohmann::json right = {{"username", "hana"}, {"password", kPassword}, {"tenant", "acme"}};
  if (!vault.Login(RequestContext{}, right).ok()) {
    state.SkipWithError("reset sign-in failed");
    return;
  }
  int n = 0;
  for (auto _ : state) {
    if (vault.Login(RequestContext{}, wrong).ok()) {
      state.SkipWithError("a wrong password signed in");
      break;
    }
    if (++n % 3 == 0) {
      state.PauseTiming();
      bool reset = vault.Login(RequestContext{}, right).ok();
      state.ResumeTiming();
      if (!reset) {
        state.SkipWithError("reset sign-in failed");
        break;
      }
    }
  }
}
void BM_LoginUnknownUser(benchmark::State& state) { Login(state, "nobody", "not-the-password-1", false); }
void BM_LoginSuccess(benchmark::State& state) { Login(state, "hana", kPassword, true); }

BENCHMARK(BM_LoginKnownUserWrongPassword)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(BM_LoginUnknownUser)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(BM_LoginSuccess)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);

}  // namespace
}  // namespace kura::vault
