// Durable record writes into the SQLite store (synchronous=FULL): one writer,
// and many concurrent writers sharing each sync through the group commit.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "core/bytes.h"
#include "crypto/random.h"
#include "store/store.h"

namespace kura::store {
namespace {

// One store per benchmark run, in a fresh temp dir, shared by its threads.
struct Fixture {
  std::string dir;
  std::unique_ptr<Store> store;
  std::atomic<long> next_id{0};
};
Fixture* g_fixture = nullptr;

void SetUpStore(const benchmark::State&) {
  auto* f = new Fixture();
  char tmpl[] = "/tmp/kura-store-bench.XXXXXX";
  f->dir = mkdtemp(tmpl);
  auto store = OpenSqliteStore({.path = f->dir + "/kura.db", .durable = true});
  if (!store.ok()) std::abort();
  f->store = std::move(*store);
  TenantRow tenant{.id = "bench", .name = "Bench", .region = "jp", .created_at = 1,
                   .data_key_version = 1};
  if (!f->store->CreateTenant(tenant, nullptr).ok()) std::abort();
  if (!f->store->PutCollection({.tenant_id = "bench", .name = "customers", .schema_json = "{}", .created_at = 1,
                                .updated_at = 1},
                               nullptr)
           .ok()) {
    std::abort();
  }
  g_fixture = f;
}

void TearDownStore(const benchmark::State&) {
  std::string dir = g_fixture->dir;
  delete g_fixture;
  g_fixture = nullptr;
  std::filesystem::remove_all(dir);
}

void BM_InsertRecordDurable(benchmark::State& state) {
  const Bytes ciphertext = crypto::RandomBytes(300 + 29);  // a 300-byte record, sealed
  const Bytes hmac = crypto::RandomBytes(32);
  for (auto _ : state) {
    RecordWrite w;
    w.tenant_id = "bench";
    w.collection = "customers";
    w.id = "r" + std::to_string(g_fixture->next_id.fetch_add(1));
    w.version = 1;
    w.ciphertext = ciphertext;
    w.index = {{"email", hmac}};
    w.at = 1;
    if (!g_fixture->store->InsertRecord(w, nullptr).ok()) state.SkipWithError("InsertRecord failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InsertRecordDurable)
    ->Setup(SetUpStore)
    ->Teardown(TearDownStore)
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime();

}  // namespace
}  // namespace kura::store
