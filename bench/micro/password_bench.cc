// Sign-in cost: Argon2id with kura's default parameters (64 MiB, 3 passes),
// the work every password sign-in does once (and an unknown user's too, so
// both take as long). sign-ins/s per core = 1 / the time of BM_VerifyPassword;
// each one in flight holds its memory cost.
#include <benchmark/benchmark.h>

#include "auth/password.h"

namespace {

using kura::auth::Argon2Params;

void BM_HashPassword(benchmark::State& state) {
  Argon2Params params;
  params.memory_bytes = static_cast<std::size_t>(state.range(0)) * 1024 * 1024;
  for (auto _ : state) {
    auto hash = kura::auth::HashPassword("Correct-Horse-Battery-Staple-7", params);
    benchmark::DoNotOptimize(hash);
  }
  state.counters["memory_MiB"] = static_cast<double>(state.range(0));
  state.counters["per_second"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_HashPassword)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_VerifyPassword(benchmark::State& state) {
  Argon2Params params;
  params.memory_bytes = static_cast<std::size_t>(state.range(0)) * 1024 * 1024;
  std::string hash = kura::auth::HashPassword("Correct-Horse-Battery-Staple-7", params).value();
  for (auto _ : state) {
    bool ok = kura::auth::VerifyPassword(hash, "Correct-Horse-Battery-Staple-7");
    benchmark::DoNotOptimize(ok);
  }
  state.counters["memory_MiB"] = static_cast<double>(state.range(0));
  state.counters["per_second"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
// Two threads: both cores of the benchmark machine, as two concurrent sign-ins.
BENCHMARK(BM_VerifyPassword)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->Threads(1)->Threads(2);

}  // namespace
