// The request-thread work of a record create that is not TLS, HTTP or the
// store: checking the record's data against its collection's schema (which
// also writes the compact JSON that gets sealed), beside the library's own
// dump() of the same data, and parsing the caller's API key.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "auth/token.h"
#include "vault/schema.h"

namespace kura::vault {
namespace {

using nlohmann::json;

// The data of bench/run.sh's 300-byte record body.
json BenchRecordData() {
  return {{"email", "bench.user@example.com"},
          {"phone", "+81-90-1234-5678"},
          {"name", "Bench User"},
          {"note", std::string(190, 'x')}};
}

CollectionSchema BenchSchema() {
  auto schema = ParseSchema(json::parse(R"({"fields":{
      "email":{"type":"string","class":"personal","index":true},
      "phone":{"type":"string","class":"personal"},
      "name":{"type":"string","class":"personal"},
      "note":{"type":"string","class":"internal"}}})"));
  if (!schema.ok()) throw std::runtime_error(schema.status().message());
  return *schema;
}

void BM_ValidateRecordData(benchmark::State& state) {
  const CollectionSchema schema = BenchSchema();
  const json data = BenchRecordData();
  for (auto _ : state) {
    auto text = ValidateRecordData(schema, data);
    if (!text.ok()) state.SkipWithError("ValidateRecordData failed");
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_ValidateRecordData);

// The reference: what writing the same text cost with the library's dump().
void BM_LibraryCompactDump(benchmark::State& state) {
  const json data = BenchRecordData();
  for (auto _ : state) {
    std::string text = data.dump();
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_LibraryCompactDump);

void BM_ParseApiKey(benchmark::State& state) {
  const std::string token = auth::GenerateApiKey().token;
  for (auto _ : state) {
    auto parsed = auth::ParseToken(token);
    if (!parsed.ok()) state.SkipWithError("ParseToken failed");
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_ParseApiKey);

}  // namespace
}  // namespace kura::vault
