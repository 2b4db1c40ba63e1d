#include "store/sqlite_wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <mutex>

namespace kura::store::sqlite {
namespace {

constexpr const char* kVfsName = "kura-wal-batching";
// Large enough for the commits of a busy group commit (tens of frames of
// 4 KiB); a larger transaction is written in pieces of this size.
constexpr sqlite3_int64 kMaxGathered = 2 * 1024 * 1024;

// The unix VFS writes at most 0x1ffff bytes per call and masks larger
// amounts with that value (a write of exactly 128 KiB would write nothing and
// fail as SQLITE_FULL), so gathered data goes out in pieces of at most this.
constexpr sqlite3_int64 kMaxWrite = 0x1f000;

sqlite3_vfs* g_base = nullptr;  // the default VFS every call ends in

// Our file object; the base VFS's own file object follows it in the same
// allocation (SQLite allocates szOsFile bytes for us).
struct File {
  sqlite3_file base;
  sqlite3_file* real;
  bool gathering;           // a WAL on a power-safe-overwrite file system
  char* data;               // sqlite3_malloc'd; kMaxGathered bytes once used
  sqlite3_int64 data_start;  // file offset of data[0]
  sqlite3_int64 data_len;    // bytes gathered
};

constexpr std::size_t RealOffset() { return (sizeof(File) + 7) & ~std::size_t{7}; }

File* AsFile(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return AsFile(f)->real; }

// Writes what was gathered, in one call. The buffer is empty afterwards
// either way: after a failed write SQLite abandons the transaction, and the
// frames it wrote are beyond what the wal-index will ever publish.
int Flush(File* f) {
  int rc = SQLITE_OK;
  for (sqlite3_int64 done = 0; done < f->data_len && rc == SQLITE_OK; done += kMaxWrite) {
    const sqlite3_int64 piece = std::min(kMaxWrite, f->data_len - done);
    rc = f->real->pMethods->xWrite(f->real, f->data + done, static_cast<int>(piece), f->data_start + done);
  }
  f->data_len = 0;
  return rc;
}

int Close(sqlite3_file* file) {
  File* f = AsFile(file);
  int flushed = Flush(f);
  int rc = f->real->pMethods != nullptr ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  sqlite3_free(f->data);
  f->data = nullptr;
  return flushed != SQLITE_OK ? flushed : rc;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  File* f = AsFile(file);
  if (f->data_len > 0 && offset < f->data_start + f->data_len && offset + amount > f->data_start) {
    int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
  }
  return f->real->pMethods->xRead(f->real, out, amount, offset);
}

int Write(sqlite3_file* file, const void* in, int amount, sqlite3_int64 offset) {
  File* f = AsFile(file);
  if (!f->gathering) return f->real->pMethods->xWrite(f->real, in, amount, offset);
  // A write that neither continues nor overwrites the gathered range (or
  // would not fit) sends the range first and starts a new one.
  const bool joins = f->data_len > 0 && offset >= f->data_start && offset <= f->data_start + f->data_len;
  if (f->data_len > 0 && (!joins || offset + amount - f->data_start > kMaxGathered)) {
    int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
  }
  if (amount > kMaxWrite) return f->real->pMethods->xWrite(f->real, in, amount, offset);
  if (f->data == nullptr) {
    f->data = static_cast<char*>(sqlite3_malloc64(kMaxGathered));
    if (f->data == nullptr) return f->real->pMethods->xWrite(f->real, in, amount, offset);
  }
  if (f->data_len == 0) f->data_start = offset;
  const sqlite3_int64 at = offset - f->data_start;
  std::memcpy(f->data + at, in, static_cast<std::size_t>(amount));
  f->data_len = std::max(f->data_len, at + amount);
  return SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  int rc = Flush(AsFile(file));
  if (rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xTruncate(Real(file), size);
}

int Sync(sqlite3_file* file, int flags) {
  int rc = Flush(AsFile(file));
  if (rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xSync(Real(file), flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  int rc = Flush(AsFile(file));
  if (rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xFileSize(Real(file), size);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  int rc = Flush(AsFile(file));
  if (rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}

int Lock(sqlite3_file* file, int level) { return Real(file)->pMethods->xLock(Real(file), level); }
int Unlock(sqlite3_file* file, int level) { return Real(file)->pMethods->xUnlock(Real(file), level); }
int CheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
}
int SectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }
int DeviceCharacteristics(sqlite3_file* file) { return Real(file)->pMethods->xDeviceCharacteristics(Real(file)); }
int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
}
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return Real(file)->pMethods->xShmLock(Real(file), offset, n, flags);
}
void ShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }
int ShmUnmap(sqlite3_file* file, int delete_flag) { return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag); }
int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
}
int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return Real(file)->pMethods->xUnfetch(Real(file), offset, page);
}

// One method table per io_methods version: SQLite looks at iVersion to know
// which methods exist, so ours must not claim more than the base file has.
sqlite3_io_methods g_methods[3];

void InitMethods() {
  for (int v = 1; v <= 3; ++v) {
    sqlite3_io_methods& m = g_methods[v - 1];
    m = sqlite3_io_methods{};
    m.iVersion = v;
    m.xClose = Close;
    m.xRead = Read;
    m.xWrite = Write;
    m.xTruncate = Truncate;
    m.xSync = Sync;
    m.xFileSize = FileSize;
    m.xLock = Lock;
    m.xUnlock = Unlock;
    m.xCheckReservedLock = CheckReservedLock;
    m.xFileControl = FileControl;
    m.xSectorSize = SectorSize;
    m.xDeviceCharacteristics = DeviceCharacteristics;
    if (v >= 2) {
      m.xShmMap = ShmMap;
      m.xShmLock = ShmLock;
      m.xShmBarrier = ShmBarrier;
      m.xShmUnmap = ShmUnmap;
    }
    if (v >= 3) {
      m.xFetch = Fetch;
      m.xUnfetch = Unfetch;
    }
  }
}

int Open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = AsFile(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + RealOffset());
  f->real->pMethods = nullptr;
  f->gathering = false;
  f->data = nullptr;
  f->data_start = 0;
  f->data_len = 0;
  int rc = g_base->xOpen(g_base, name, f->real, flags, out_flags);
  // SQLite calls xClose whenever pMethods is set, even after a failed open.
  if (f->real->pMethods != nullptr) {
    const int version = std::clamp(f->real->pMethods->iVersion, 1, 3);
    f->base.pMethods = &g_methods[version - 1];
  }
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) != 0) {
    const int dc = f->real->pMethods->xDeviceCharacteristics(f->real);
    f->gathering = (dc & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0;
  }
  return rc;
}

// The rest of the VFS is the base VFS's, called with the base VFS itself
// (the unix VFS keeps state in its own pAppData).
int Delete(sqlite3_vfs*, const char* name, int sync_dir) { return g_base->xDelete(g_base, name, sync_dir); }
int Access(sqlite3_vfs*, const char* name, int flags, int* out) { return g_base->xAccess(g_base, name, flags, out); }
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_base->xFullPathname(g_base, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_base->xDlOpen(g_base, name); }
void DlError(sqlite3_vfs*, int n, char* out) { g_base->xDlError(g_base, n, out); }
void (*DlSym(sqlite3_vfs*, void* handle, const char* symbol))(void) { return g_base->xDlSym(g_base, handle, symbol); }
void DlClose(sqlite3_vfs*, void* handle) { g_base->xDlClose(g_base, handle); }
int Randomness(sqlite3_vfs*, int n, char* out) { return g_base->xRandomness(g_base, n, out); }
int Sleep(sqlite3_vfs*, int micros) { return g_base->xSleep(g_base, micros); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_base->xCurrentTime(g_base, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) { return g_base->xGetLastError(g_base, n, out); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) { return g_base->xCurrentTimeInt64(g_base, out); }

sqlite3_vfs g_vfs;

bool Register() {
  g_base = sqlite3_vfs_find(nullptr);
  if (g_base == nullptr || g_base->iVersion < 2) return false;
  InitMethods();
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(RealOffset()) + g_base->szOsFile;
  g_vfs.mxPathname = g_base->mxPathname;
  g_vfs.zName = kVfsName;
  g_vfs.xOpen = Open;
  g_vfs.xDelete = Delete;
  g_vfs.xAccess = Access;
  g_vfs.xFullPathname = FullPathname;
  g_vfs.xDlOpen = DlOpen;
  g_vfs.xDlError = DlError;
  g_vfs.xDlSym = DlSym;
  g_vfs.xDlClose = DlClose;
  g_vfs.xRandomness = Randomness;
  g_vfs.xSleep = Sleep;
  g_vfs.xCurrentTime = CurrentTime;
  g_vfs.xGetLastError = GetLastError;
  g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  return sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0) == SQLITE_OK;
}

}  // namespace

const char* WalBatchingVfsName() {
  static std::once_flag once;
  static bool registered = false;
  std::call_once(once, [] { registered = Register(); });
  return registered ? kVfsName : nullptr;
}

}  // namespace kura::store::sqlite
