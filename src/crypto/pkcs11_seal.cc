// PKCS#11 seal: the KEK stored encrypted by a non-extractable AES-256 key on
// a token (an HSM; SoftHSM2 in tests). See seal.h and
// docs/formats/pkcs11-seal.md.
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/random.h"
#include "crypto/seal.h"
#include "crypto/seal_internal.h"

// p11-kit's header (the PKCS#11 standard API; no p11-kit library is linked:
// the module itself is dlopen()ed). Its compatibility mode #defines generic
// lowercase words (value, count, params, …) to the standard field names;
// they are undefined again so they cannot rewrite code below.
#include <p11-kit/pkcs11.h>
#undef value
#undef value_len
#undef count
#undef params
#undef parameter
#undef parameter_len
#undef reserved
#undef slot_id

namespace kura::crypto {
namespace {

constexpr std::size_t kIvSize = 12;
constexpr std::size_t kTagBits = 128;
constexpr int kFileFormat = 1;
constexpr char kAad[] = "kura-kek-v1";  // binds the ciphertext to its purpose and format
constexpr char kWrappedKekWhat[] = "PKCS#11 wrapped-KEK file";

std::string Hex(CK_RV rv) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%lx", static_cast<unsigned long>(rv));
  return buf;
}

// Names of the return values an operator is likely to meet.
std::string RvText(CK_RV rv) {
  switch (rv) {
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
    case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
    case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
    case CKR_USER_PIN_NOT_INITIALIZED: return "CKR_USER_PIN_NOT_INITIALIZED";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
    default: return "CKR " + Hex(rv);
  }
}

Status P11Error(std::string_view what, CK_RV rv) {
  return UnavailableError("PKCS#11: " + std::string(what) + " failed (" + RvText(rv) + ")");
}

// A loaded and initialised module; C_Finalize and dlclose on destruction.
class Module {
 public:
  static Result<std::unique_ptr<Module>> Load(const std::string& path) {
    if (path.empty()) return InvalidArgumentError("PKCS#11 seal: no module configured ([seal] module)");
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      return UnavailableError("PKCS#11 module " + path + " cannot be loaded: " + (why ? why : "unknown error"));
    }
    auto module = std::unique_ptr<Module>(new Module(handle));
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
    if (get_list == nullptr) {
      return UnavailableError("PKCS#11 module " + path + " cannot be loaded: it has no C_GetFunctionList");
    }
    CK_FUNCTION_LIST_PTR functions = nullptr;
    if (CK_RV rv = get_list(&functions); rv != CKR_OK || functions == nullptr) {
      return UnavailableError("PKCS#11 module " + path + " cannot be loaded: C_GetFunctionList failed (" +
                              RvText(rv) + ")");
    }
    module->f_ = functions;
    // The module may be called from more than one thread of the server; let
    // it use the operating system's locking.
    CK_C_INITIALIZE_ARGS args;
    std::memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = functions->C_Initialize(&args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      rv = CKR_OK;  // someone else in the process initialised it; not ours to finalise
    } else if (rv == CKR_OK) {
      module->finalize_ = true;
    }
    if (rv != CKR_OK) {
      return UnavailableError("PKCS#11 module " + path + ": C_Initialize failed (" + RvText(rv) + ")");
    }
    return module;
  }

  ~Module() {
    if (finalize_) f_->C_Finalize(nullptr);
    ::dlclose(handle_);
  }
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  CK_FUNCTION_LIST_PTR f() const { return f_; }

 private:
  explicit Module(void* handle) : handle_(handle) {}
  void* handle_;
  CK_FUNCTION_LIST_PTR f_ = nullptr;
  bool finalize_ = false;
};

// An open, logged-in session; logs out and closes on destruction.
class Session {
 public:
  Session(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE h) : f_(f), h_(h) {}
  ~Session() {
    if (logged_in_) f_->C_Logout(h_);
    f_->C_CloseSession(h_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  CK_SESSION_HANDLE get() const { return h_; }
  void set_logged_in() { logged_in_ = true; }

 private:
  CK_FUNCTION_LIST_PTR f_;
  CK_SESSION_HANDLE h_;
  bool logged_in_ = false;
};

// Token labels are 32 bytes, blank-padded, not NUL-terminated.
std::string TokenLabel(const CK_TOKEN_INFO& info) {
  std::string label(reinterpret_cast<const char*>(info.label), sizeof(info.label));
  while (!label.empty() && (label.back() == ' ' || label.back() == '\0')) label.pop_back();
  return label;
}

struct WrappedKek {
  Bytes iv;
  Bytes ciphertext;  // ciphertext || 16-byte tag
};

class Pkcs11Seal final : public Seal {
 public:
  explicit Pkcs11Seal(Pkcs11SealOptions options) : options_(std::move(options)) {}

  std::string_view Type() const override { return "pkcs11"; }

  Result<SealInitResult> Initialize(const SealInitOptions& /*options*/) override {
    // Never replace an existing wrapped KEK: it may be the only way to the data.
    if (auto existing = internal::ReadSmallFile(options_.wrapped_kek_path, 4096, kWrappedKekWhat); existing.ok()) {
      return AlreadyExistsError(std::string(kWrappedKekWhat) + " " + options_.wrapped_kek_path +
                                " already exists; refusing to overwrite it");
    } else if (existing.status().code() != StatusCode::kNotFound) {
      return existing.status();
    }
    KURA_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, OpenSession());
    KURA_ASSIGN_OR_RETURN(std::optional<CK_OBJECT_HANDLE> key, FindKey(*session));
    if (!key) {
      KURA_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE created, GenerateKey(*session));
      key = created;
    }
    SealInitResult result;
    result.kek = RandomSecret(internal::kKekSize);
    WrappedKek wrapped;
    wrapped.iv = RandomBytes(kIvSize);
    wrapped.ciphertext.resize(internal::kKekSize + kTagBits / 8 + 16);  // room for tag (+ slack)
    CK_GCM_PARAMS gcm = GcmParams(wrapped.iv);
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_FUNCTION_LIST_PTR f = module_->f();
    if (CK_RV rv = f->C_EncryptInit(session->get(), &mech, *key); rv != CKR_OK) {
      return P11Error("C_EncryptInit (CKM_AES_GCM) with key '" + options_.key_label + "'", rv);
    }
    CK_ULONG out_len = wrapped.ciphertext.size();
    if (CK_RV rv = f->C_Encrypt(session->get(), result.kek.data(), result.kek.size(), wrapped.ciphertext.data(),
                                &out_len);
        rv != CKR_OK) {
      return P11Error("C_Encrypt with key '" + options_.key_label + "'", rv);
    }
    if (out_len != internal::kKekSize + kTagBits / 8) {
      return UnavailableError("PKCS#11: C_Encrypt (CKM_AES_GCM) returned " + std::to_string(out_len) +
                              " bytes; expected 48");
    }
    wrapped.ciphertext.resize(out_len);
    nlohmann::json doc = {{"format", kFileFormat},
                          {"mechanism", "CKM_AES_GCM"},
                          {"aad", kAad},
                          {"token_label", options_.token_label},
                          {"key_label", options_.key_label},
                          {"iv", Base64UrlEncode(wrapped.iv)},
                          {"ciphertext", Base64UrlEncode(wrapped.ciphertext)}};
    KURA_RETURN_IF_ERROR(internal::WriteNewFile(options_.wrapped_kek_path, doc.dump() + "\n", kWrappedKekWhat));
    return result;
  }

  Result<std::optional<SecretBytes>> AutoUnseal() override {
    KURA_ASSIGN_OR_RETURN(WrappedKek wrapped, LoadWrapped());
    KURA_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, OpenSession());
    KURA_ASSIGN_OR_RETURN(std::optional<CK_OBJECT_HANDLE> key, FindKey(*session));
    if (!key) {
      return InvalidArgumentError("PKCS#11: key label '" + options_.key_label + "' not found on token '" +
                                  options_.token_label + "'");
    }
    CK_GCM_PARAMS gcm = GcmParams(wrapped.iv);
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_FUNCTION_LIST_PTR f = module_->f();
    if (CK_RV rv = f->C_DecryptInit(session->get(), &mech, *key); rv != CKR_OK) {
      return P11Error("C_DecryptInit (CKM_AES_GCM) with key '" + options_.key_label + "'", rv);
    }
    SecretBytes out(wrapped.ciphertext.size());
    CK_ULONG out_len = out.size();
    CK_RV rv = f->C_Decrypt(session->get(), wrapped.ciphertext.data(), wrapped.ciphertext.size(), out.data(), &out_len);
    // Any failure is a rejection: SoftHSM reports a bad GCM tag as
    // CKR_GENERAL_ERROR rather than CKR_ENCRYPTED_DATA_INVALID.
    if (rv != CKR_OK || out_len != internal::kKekSize) {
      return InvalidArgumentError("PKCS#11: decrypt failed: the wrapped KEK in " + options_.wrapped_kek_path +
                                  " cannot be decrypted with key '" + options_.key_label + "' on token '" +
                                  options_.token_label + "' (" + (rv != CKR_OK ? RvText(rv) : "wrong length") +
                                  "; another key with that label, or the file was altered)");
    }
    SecretBytes kek = SecretBytes::FromBytes(ByteView(out.data(), internal::kKekSize));
    return std::optional<SecretBytes>(std::move(kek));
  }

  Result<UnsealProgress> Submit(std::string_view /*input*/) override {
    return InvalidArgumentError("the PKCS#11 seal takes no unseal input: it unseals from the token");
  }

  void Reset() override {}

 private:
  static CK_GCM_PARAMS GcmParams(Bytes& iv) {
    CK_GCM_PARAMS gcm;
    std::memset(&gcm, 0, sizeof(gcm));
    gcm.pIv = iv.data();
    gcm.ulIvLen = iv.size();
    gcm.ulIvBits = iv.size() * 8;
    gcm.pAAD = reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(kAad));
    gcm.ulAADLen = sizeof(kAad) - 1;
    gcm.ulTagBits = kTagBits;
    return gcm;
  }

  Result<SecretBytes> Pin() const {
    if (!options_.pin_file.empty()) return internal::ReadSecretFile(options_.pin_file, "PKCS#11 PIN file");
    if (!options_.pin_env.empty()) return internal::ReadSecretEnv(options_.pin_env, "PKCS#11 PIN");
    return InvalidArgumentError("PKCS#11 seal: no PIN configured ([seal] pin_file or pin_env)");
  }

  // Loads the module (once), finds the token by label (slot ids change when a
  // token is re-initialised), opens a read-write session and logs in.
  Result<std::unique_ptr<Session>> OpenSession() {
    if (!module_) {
      KURA_ASSIGN_OR_RETURN(module_, Module::Load(options_.module));
    }
    CK_FUNCTION_LIST_PTR f = module_->f();
    CK_ULONG n = 0;
    if (CK_RV rv = f->C_GetSlotList(CK_TRUE, nullptr, &n); rv != CKR_OK) return P11Error("C_GetSlotList", rv);
    std::vector<CK_SLOT_ID> slots(n);
    if (n > 0) {
      if (CK_RV rv = f->C_GetSlotList(CK_TRUE, slots.data(), &n); rv != CKR_OK) return P11Error("C_GetSlotList", rv);
      slots.resize(n);
    }
    std::optional<CK_SLOT_ID> slot;
    for (CK_SLOT_ID s : slots) {
      CK_TOKEN_INFO info;
      if (f->C_GetTokenInfo(s, &info) != CKR_OK) continue;
      if (TokenLabel(info) == options_.token_label) {
        slot = s;
        break;
      }
    }
    if (!slot) {
      return UnavailableError("PKCS#11: token label '" + options_.token_label + "' not found (module " +
                              options_.module + ", " + std::to_string(slots.size()) + " token(s) present)");
    }
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    if (CK_RV rv = f->C_OpenSession(*slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h); rv != CKR_OK) {
      return P11Error("C_OpenSession on token '" + options_.token_label + "'", rv);
    }
    auto session = std::make_unique<Session>(f, h);
    KURA_ASSIGN_OR_RETURN(SecretBytes pin, Pin());
    CK_RV rv = f->C_Login(h, CKU_USER, pin.data(), pin.size());
    // The PIN is needed for nothing else: wipe it now rather than at scope end.
    pin.Wipe();
    if (rv == CKR_USER_ALREADY_LOGGED_IN) rv = CKR_OK;  // login state is per token, shared by sessions
    if (rv == CKR_PIN_INCORRECT) {
      return InvalidArgumentError("PKCS#11: wrong PIN for token '" + options_.token_label +
                                  "' (CKR_PIN_INCORRECT); check [seal] " +
                                  (options_.pin_file.empty() ? "pin_env" : "pin_file"));
    }
    if (rv != CKR_OK) return P11Error("C_Login to token '" + options_.token_label + "'", rv);
    session->set_logged_in();
    return session;
  }

  // The AES secret key labelled key_label; nullopt when there is none.
  // InvalidArgument when the label is ambiguous or names a key of another type.
  Result<std::optional<CK_OBJECT_HANDLE>> FindKey(const Session& session) {
    CK_FUNCTION_LIST_PTR f = module_->f();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    std::string label = options_.key_label;
    CK_ATTRIBUTE want[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, label.data(), label.size()}};
    if (CK_RV rv = f->C_FindObjectsInit(session.get(), want, 2); rv != CKR_OK) return P11Error("C_FindObjectsInit", rv);
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv = f->C_FindObjects(session.get(), found, 2, &n);
    f->C_FindObjectsFinal(session.get());
    if (rv != CKR_OK) return P11Error("C_FindObjects", rv);
    if (n == 0) return std::optional<CK_OBJECT_HANDLE>();
    if (n > 1) {
      return InvalidArgumentError("PKCS#11: more than one secret key is labelled '" + options_.key_label +
                                  "' on token '" + options_.token_label + "'");
    }
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE attr = {CKA_KEY_TYPE, &type, sizeof(type)};
    if (CK_RV r = f->C_GetAttributeValue(session.get(), found[0], &attr, 1); r != CKR_OK) {
      return P11Error("C_GetAttributeValue(CKA_KEY_TYPE)", r);
    }
    if (type != CKK_AES) {
      return InvalidArgumentError("PKCS#11: key '" + options_.key_label + "' is not an AES key");
    }
    return std::optional<CK_OBJECT_HANDLE>(found[0]);
  }

  Result<CK_OBJECT_HANDLE> GenerateKey(const Session& session) {
    CK_FUNCTION_LIST_PTR f = module_->f();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    std::string label = options_.key_label;
    // Never extractable and sensitive: the key value can never leave the
    // token, wrapped or not. Private: invisible without login. Token: it
    // survives the session (it is the only way to the KEK).
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)},   {CKA_LABEL, label.data(), label.size()},
        {CKA_TOKEN, &yes, sizeof(yes)},       {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},   {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},     {CKA_DECRYPT, &yes, sizeof(yes)},
        {CKA_WRAP, &no, sizeof(no)},          {CKA_UNWRAP, &no, sizeof(no)},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    if (CK_RV rv = f->C_GenerateKey(session.get(), &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &key); rv != CKR_OK) {
      return P11Error("C_GenerateKey (AES-256 '" + options_.key_label + "')", rv);
    }
    return key;
  }

  Result<WrappedKek> LoadWrapped() const {
    auto text = internal::ReadSmallFile(options_.wrapped_kek_path, 4096, kWrappedKekWhat);
    if (!text.ok()) {
      if (text.status().code() == StatusCode::kNotFound) {
        return FailedPreconditionError(text.status().message() + " (the vault was not initialised with this seal)");
      }
      return text.status();
    }
    const std::string where = std::string(kWrappedKekWhat) + " " + options_.wrapped_kek_path;
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("format") || !doc["format"].is_number_integer()) {
      return DataLossError(where + " is malformed");
    }
    if (doc["format"].get<int>() != kFileFormat) {
      return DataLossError(where + " has format " + doc["format"].dump() + "; this kura reads format 1");
    }
    auto text_of = [&doc](const char* k) -> std::string {
      return doc.contains(k) && doc[k].is_string() ? doc[k].get<std::string>() : std::string();
    };
    if (text_of("mechanism") != "CKM_AES_GCM" || text_of("aad") != kAad) return DataLossError(where + " is malformed");
    auto iv = Base64UrlDecode(text_of("iv"));
    auto ct = Base64UrlDecode(text_of("ciphertext"));
    if (!iv || iv->size() != kIvSize || !ct || ct->size() != internal::kKekSize + kTagBits / 8) {
      return DataLossError(where + " is malformed");
    }
    return WrappedKek{std::move(*iv), std::move(*ct)};
  }

  Pkcs11SealOptions options_;
  std::unique_ptr<Module> module_;
};

}  // namespace

std::unique_ptr<Seal> MakePkcs11Seal(Pkcs11SealOptions options) {
  return std::make_unique<Pkcs11Seal>(std::move(options));
}

}  // namespace kura::crypto
