#include "core/secret.h"

#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace kura {
namespace {

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();  // no safe way to run without it
  });
}

}  // namespace

SecretBytes::SecretBytes(std::size_t size) {
  EnsureSodium();
  if (size == 0) return;
  // sodium_malloc locks the pages and surrounds them with guard pages.
  data_ = static_cast<std::uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) std::abort();
  std::memset(data_, 0, size);
  size_ = size;
}

SecretBytes SecretBytes::FromBytes(ByteView data) {
  SecretBytes s(data.size());
  if (!data.empty()) std::memcpy(s.data_, data.data(), data.size());
  return s;
}

SecretBytes SecretBytes::Transient(std::size_t size) {
  EnsureSodium();
  SecretBytes s;
  s.guarded_ = false;
  if (size == 0) return s;
  s.data_ = new std::uint8_t[size]();
  s.size_ = size;
  return s;
}

SecretBytes::~SecretBytes() { Wipe(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(other.data_), size_(other.size_), guarded_(other.guarded_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = other.data_;
    size_ = other.size_;
    guarded_ = other.guarded_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void SecretBytes::Wipe() {
  if (data_ != nullptr) {
    sodium_memzero(data_, size_);
    if (guarded_) {
      sodium_free(data_);
    } else {
      delete[] data_;
    }
  }
  data_ = nullptr;
  size_ = 0;
}

bool SecretBytes::Equals(ByteView other) const { return ConstantTimeEquals(view(), other); }

bool ConstantTimeEquals(ByteView a, ByteView b) {
  EnsureSodium();
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void WipeMemory(void* data, std::size_t size) {
  if (data != nullptr && size > 0) sodium_memzero(data, size);
}

bool DisableCoreDumps() {
  struct rlimit zero = {0, 0};
  bool ok = setrlimit(RLIMIT_CORE, &zero) == 0;
  ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && ok;
  return ok;
}

}  // namespace kura
