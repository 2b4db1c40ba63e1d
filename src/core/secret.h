// SecretBytes: key material and other secrets held in locked, guarded memory.
//
// Backed by libsodium's sodium_malloc (guard pages, mlock, canary) and wiped
// with sodium_memzero on destruction or Wipe(). Move-only, so a secret is never
// silently duplicated; Clone() makes an explicit copy. Never log or format the
// contents; there is deliberately no conversion to std::string.
//
// Thread safety: like a std::vector; const access from many threads is safe.
#ifndef KURA_CORE_SECRET_H_
#define KURA_CORE_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/bytes.h"

namespace kura {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size);  // zero-filled, guarded and locked
  static SecretBytes FromBytes(ByteView data);
  // Short-lived secrets on a request path (a decrypted record): ordinary heap
  // memory, still wiped on release. Guarded allocations cost an mmap, four
  // mprotect calls and TLB shootdowns on every core, which is right for keys
  // that live for hours and wrong for a buffer that lives for microseconds.
  static SecretBytes Transient(std::size_t size);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const { return FromBytes(view()); }

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  ByteView view() const { return {data_, size_}; }

  // Wipes and frees the memory now; the object becomes empty.
  void Wipe();

  // Constant-time comparison.
  bool Equals(ByteView other) const;

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool guarded_ = true;  // sodium_malloc'd (else new[])
};

// Constant-time equality of two byte strings of equal length (false otherwise).
bool ConstantTimeEquals(ByteView a, ByteView b);

// Process hardening for a server that holds keys: no core dumps
// (RLIMIT_CORE = 0, PR_SET_DUMPABLE = 0). Returns false if it could not be applied.
bool DisableCoreDumps();

// Overwrites `size` bytes at `data` with zeros in a way the compiler keeps.
void WipeMemory(void* data, std::size_t size);

// An allocator that wipes memory before it gives it back: for buffers that
// hold request and response bytes (bearer tokens, passwords, shares, record
// data), so that neither a release nor a reallocation while growing leaves a
// copy in freed heap memory.
template <typename T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() noexcept = default;
  template <typename U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}  // NOLINT: converting, as allocators are
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    WipeMemory(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const WipingAllocator<U>&) const noexcept {
    return true;
  }
};

// A string whose buffers are wiped when released; Wipe() also wipes what it
// holds now (a string that is cleared keeps its buffer).
using WipedString = std::basic_string<char, std::char_traits<char>, WipingAllocator<char>>;
inline void Wipe(WipedString& s) {
  WipeMemory(s.data(), s.size());
  s.clear();
}
inline void Wipe(std::string& s) {
  WipeMemory(s.data(), s.size());
  s.clear();
}

}  // namespace kura

#endif  // KURA_CORE_SECRET_H_
