// The audit log's CPU per entry outside the database: an audited request's
// thread encoding its event (PendingEntry), and the store's writer linking it
// into the chain (PendingEntry::Link: sequence number, previous hash, leaf
// hash, the row's filter columns) and destroying it after the commit. The
// writer runs one batch at a time, so its part is on every audited request's
// critical path (docs/performance.md).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "audit/entry.h"

namespace kura::audit {
namespace {

// What an audited GET of bench/run.sh's record puts in its entry.
Event BenchReadEvent() {
  Event e;
  e.at_ms = 1764288000123;
  e.principal = "apikey:4f1c2a9b8e7d6c5b";
  e.tenant = "bench";
  e.action = "record.read";
  e.resource = "customers/01KB2M3N4P5Q6R7S8T9V0WXYZA";
  e.outcome = "success";
  e.client = "127.0.0.1";
  e.request_id = "9c4e1f7a2b3d5e6f";
  return e;
}

// The request thread's part: the event encoded, the entry made.
void BM_AuditEntryEncode(benchmark::State& state) {
  const Event event = BenchReadEvent();
  for (auto _ : state) {
    Event copy = event;  // the request builds its own event each time
    PendingEntry entry(std::move(copy));
    benchmark::DoNotOptimize(&entry);
  }
}
BENCHMARK(BM_AuditEntryEncode);

// The writer's part: linked into the chain, then destroyed after the commit
// (entries made in batches outside the timing, as the request threads do).
void BM_AuditEntryLink(benchmark::State& state) {
  constexpr int kBatch = 256;
  const Event event = BenchReadEvent();
  std::vector<std::unique_ptr<PendingEntry>> entries;
  Bytes prev(32, 0xab);
  std::int64_t seq = 1000000;
  while (state.KeepRunningBatch(kBatch)) {
    state.PauseTiming();
    entries.clear();
    for (int i = 0; i < kBatch; ++i) entries.push_back(std::make_unique<PendingEntry>(event));
    state.ResumeTiming();
    for (auto& entry : entries) {
      store::AuditRow row = entry->Link(seq++, prev);
      entry.reset();
      prev = std::move(row.hash);
      benchmark::DoNotOptimize(row);
    }
  }
}
BENCHMARK(BM_AuditEntryLink);

}  // namespace
}  // namespace kura::audit
