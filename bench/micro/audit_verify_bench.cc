// Offline verification of the audit log (`kura audit verify`): every entry's
// hash, the chain, the columns, the Merkle tree and the checkpoints, for logs
// of 100,000 and 1,000,000 entries held in memory, and for 1,000,000 entries
// read from an SQLite store as `kura audit verify --data` reads them. The
// issue's target is under 10 s for 1,000,000 entries on the 2-core machine.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/merkle.h"
#include "audit/verifier.h"
#include "crypto/signing.h"
#include "store/store.h"

namespace kura::audit {
namespace {

constexpr std::int64_t kCheckpointEvery = 100000;

// Built once, for the largest size; smaller runs read a prefix.
struct Fixture {
  crypto::SigningKey key = crypto::SigningKey::Generate();
  std::vector<store::AuditRow> rows;
  std::vector<store::AuditCheckpointRow> checkpoints;  // every kCheckpointEvery entries
};

Event BenchEvent(std::int64_t i) {
  Event e;
  e.at_ms = 1700000000000 + i;
  e.principal = "apikey:0f3c9a7b12d44e8a";
  e.tenant = "acme-" + std::to_string(i % 20);
  e.action = i % 4 == 0 ? "record.create" : "record.read";
  e.resource = "customers/01HZX3" + std::to_string(1000000 + i);
  e.outcome = "success";
  e.client = "10.1.2." + std::to_string(i % 250);
  e.request_id = "01HZX4" + std::to_string(9000000 + i);
  if (i % 10 == 0) e.lookup = "email:4c8f0e5d2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5";
  // One in a hundred needs the full decoder (non-ASCII text).
  if (i % 100 == 0) e.reason = "r\xC3\xA9vision annuelle";
  return e;
}

const Fixture& GetFixture(std::int64_t n) {
  static std::unique_ptr<Fixture> fixture;
  if (fixture && static_cast<std::int64_t>(fixture->rows.size()) >= n) return *fixture;
  fixture = std::make_unique<Fixture>();
  fixture->rows.reserve(static_cast<std::size_t>(n));
  CompactTree tree;
  Bytes prev;
  for (std::int64_t i = 0; i < n; ++i) {
    fixture->rows.push_back(PendingEntry(BenchEvent(i)).Link(i, prev));
    prev = fixture->rows.back().hash;
    tree.Append(prev);
    if (tree.size() % kCheckpointEvery == 0) {
      fixture->checkpoints.push_back(
          SignCheckpoint({.tree_size = tree.size(), .root = tree.Root(), .at_ms = 1700000000000 + i}, fixture->key));
    }
  }
  return *fixture;
}

void BM_VerifyLog(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Fixture& f = GetFixture(n);
  std::vector<store::AuditCheckpointRow> checkpoints;
  for (const auto& c : f.checkpoints) {
    if (c.tree_size <= n) checkpoints.push_back(c);
  }
  // Like the store: each page is a fresh copy of the rows.
  RowReader read = [&](std::int64_t from, int limit) -> Result<std::vector<store::AuditRow>> {
    const std::int64_t end = std::min<std::int64_t>(n, from + limit);
    if (from >= end) return std::vector<store::AuditRow>();
    return std::vector<store::AuditRow>(f.rows.begin() + from, f.rows.begin() + end);
  };
  for (auto _ : state) {
    auto report = VerifyLog(read, checkpoints, f.key.public_key());
    if (!report.ok() || report->problem || report->entries != n) {
      state.SkipWithError("the log did not verify");
      return;
    }
    benchmark::DoNotOptimize(report->root);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["checkpoints"] = static_cast<double>(checkpoints.size());
}
BENCHMARK(BM_VerifyLog)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same log appended to a real SQLite store (through AppendAudit, as the
// server does), checkpoints stored beside it, then verified by reading it back
// page by page: the whole of `kura audit verify --data` but the process start.
void BM_VerifyLogFromSqlite(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Fixture& f = GetFixture(n);
  const std::string dir = std::filesystem::temp_directory_path() / ("kura-verify-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  store::SqliteOptions options;
  options.path = dir + "/kura.db";
  options.durable = false;  // building the fixture; verification only reads
  auto opened = store::OpenSqliteStore(options);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  std::unique_ptr<store::Store> st = std::move(opened).value();
  // Appenders in parallel share group commits; the store gives the seqs, so
  // each thread appends the fixture's events and the chain is the store's.
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::atomic<std::int64_t> next{0};
  std::atomic<bool> failed{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (std::int64_t i = next++; i < n && !failed; i = next++) {
        if (!st->AppendAudit(PendingEntry(BenchEvent(i))).ok()) failed = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) {
    state.SkipWithError("appending the fixture failed");
    return;
  }
  // Checkpoints over the stored log, every kCheckpointEvery entries.
  std::vector<store::AuditCheckpointRow> stored_checkpoints;
  {
    CompactTree tree;
    for (std::int64_t from = 0; from < n; from += 4096) {
      auto rows = st->ReadAudit(from, 4096);
      if (!rows.ok()) return state.SkipWithError("reading the fixture failed");
      for (const auto& row : *rows) {
        tree.Append(row.hash);
        if (tree.size() % kCheckpointEvery == 0) {
          auto c = SignCheckpoint({.tree_size = tree.size(), .root = tree.Root(), .at_ms = row.at_ms}, f.key);
          if (!st->PutAuditCheckpoint(c).ok()) return state.SkipWithError("storing a checkpoint failed");
        }
      }
    }
  }
  for (auto _ : state) {
    std::vector<store::AuditCheckpointRow> checkpoints;
    for (std::int64_t after = 0;;) {
      auto page = st->ListAuditCheckpoints(after, 1000);
      if (!page.ok()) return state.SkipWithError("listing checkpoints failed");
      if (page->empty()) break;
      after = page->back().tree_size;
      for (auto& c : *page) checkpoints.push_back(std::move(c));
    }
    auto report = VerifyLog([&](std::int64_t from, int limit) { return st->ReadAudit(from, limit); }, checkpoints,
                            f.key.public_key());
    if (!report.ok() || report->problem || report->entries != n) {
      state.SkipWithError("the stored log did not verify");
      return;
    }
    benchmark::DoNotOptimize(report->root);
  }
  state.SetItemsProcessed(state.iterations() * n);
  st.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_VerifyLogFromSqlite)->Arg(1000000)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace kura::audit
