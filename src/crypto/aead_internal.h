// Module-only: AES-256-GCM through a chosen implementation, so the tests run
// the published vectors through both (aead.cc picks one per call).
#ifndef KURA_CRYPTO_AEAD_INTERNAL_H_
#define KURA_CRYPTO_AEAD_INTERNAL_H_

#include "core/bytes.h"
#include "core/status.h"

namespace kura::crypto::internal {

enum class GcmImpl {
  kLibsodium,  // AES-NI and CLMUL, 96-bit IVs only
  kOpenSsl,    // EVP: any IV length, any CPU
};

// Whether libsodium's implementation can run on this CPU.
bool LibsodiumGcmAvailable();

// Aes256GcmEncrypt/Decrypt through `impl`; InvalidArgument when libsodium is
// asked for an IV other than 96 bits or on a CPU without AES-NI.
Status Aes256GcmEncryptWith(GcmImpl impl, ByteView key, ByteView iv, ByteView aad, ByteView plaintext,
                            Bytes* ciphertext, Bytes* tag);
Status Aes256GcmDecryptWith(GcmImpl impl, ByteView key, ByteView iv, ByteView aad, ByteView ciphertext, ByteView tag,
                            Bytes* plaintext);

}  // namespace kura::crypto::internal

#endif  // KURA_CRYPTO_AEAD_INTERNAL_H_
