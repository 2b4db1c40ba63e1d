// libFuzzer target: the decoder of audit entries, which `kura audit verify`
// runs over a data directory or a backup it has no reason to trust.
// Checked beyond "no crash, no sanitizer report": the decoder accepts only
// canonical bytes, so whatever it accepts encodes back to exactly the same
// bytes (two encodings of one entry would let an altered log verify); what
// it refuses is DataLoss with a message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "audit/entry.h"
#include "require.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const kura::Result<kura::audit::Entry> entry = kura::audit::DecodeEntry(bytes);
  if (!entry.ok()) {
    FUZZ_REQUIRE(entry.status().code() == kura::StatusCode::kDataLoss && !entry.status().message().empty());
    return 0;
  }
  FUZZ_REQUIRE(kura::audit::EncodeEntry(entry->seq, entry->prev_hash, entry->event) == bytes);
  return 0;
}
