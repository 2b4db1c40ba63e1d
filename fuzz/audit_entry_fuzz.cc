// libFuzzer target: the decoder of audit entries, which `kura audit verify`
// runs over a data directory or a backup it has no reason to trust.
// Checked beyond "no crash, no sanitizer report": the decoder accepts only
// canonical bytes, so whatever it accepts encodes back to exactly the same
// bytes (two encodings of one entry would let an altered log verify); what
// it refuses is DataLoss with a message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "audit/entry.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const kura::Result<kura::audit::Entry> entry = kura::audit::DecodeEntry(bytes);
  if (!entry.ok()) {
    if (entry.status().code() != kura::StatusCode::kDataLoss || entry.status().message().empty()) std::abort();
    return 0;
  }
  if (kura::audit::EncodeEntry(entry->seq, entry->prev_hash, entry->event) != bytes) std::abort();
  return 0;
}
