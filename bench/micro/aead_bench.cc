// AES-256-GCM seal/open of record-sized payloads: the per-request crypto of a
// record read (open) and write (seal).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/secret.h"
#include "crypto/aead.h"
#include "crypto/envelope.h"
#include "crypto/random.h"

namespace kura::crypto {
namespace {

void BM_AeadSeal(benchmark::State& state) {
  const SecretBytes key = RandomSecret(kAeadKeySize);
  const Bytes plaintext = RandomBytes(static_cast<std::size_t>(state.range(0)));
  const Bytes aad = RecordAssociatedData("acme", "customers", "rec-0001", 1);
  for (auto _ : state) {
    auto sealed = AeadSeal(key, plaintext, aad);
    if (!sealed.ok()) state.SkipWithError("AeadSeal failed");
    benchmark::DoNotOptimize(sealed);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_AeadSeal)->Arg(300)->Arg(4096)->Arg(64 * 1024);

void BM_AeadOpen(benchmark::State& state) {
  const SecretBytes key = RandomSecret(kAeadKeySize);
  const Bytes plaintext = RandomBytes(static_cast<std::size_t>(state.range(0)));
  const Bytes aad = RecordAssociatedData("acme", "customers", "rec-0001", 1);
  auto sealed = AeadSeal(key, plaintext, aad);
  if (!sealed.ok()) {
    state.SkipWithError("AeadSeal failed");
    return;
  }
  for (auto _ : state) {
    auto opened = AeadOpen(key, *sealed, aad);
    if (!opened.ok()) state.SkipWithError("AeadOpen failed");
    benchmark::DoNotOptimize(opened);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_AeadOpen)->Arg(300)->Arg(4096)->Arg(64 * 1024);

// Unwrapping a tenant key: what a cache miss of the key ring costs.
void BM_UnwrapKey(benchmark::State& state) {
  const SecretBytes kek = RandomSecret(kAeadKeySize);
  const SecretBytes dek = RandomSecret(kAeadKeySize);
  auto wrapped = WrapKey(kek, dek, KeyPurpose::kDataKey, "acme", 1);
  if (!wrapped.ok()) {
    state.SkipWithError("WrapKey failed");
    return;
  }
  for (auto _ : state) {
    auto key = UnwrapKey(kek, *wrapped, KeyPurpose::kDataKey, "acme", 1);
    if (!key.ok()) state.SkipWithError("UnwrapKey failed");
    benchmark::DoNotOptimize(key);
  }
}
BENCHMARK(BM_UnwrapKey);

}  // namespace
}  // namespace kura::crypto
