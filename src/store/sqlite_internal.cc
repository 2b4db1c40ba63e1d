#include "store/sqlite_internal.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "store/sqlite_wal_vfs.h"

namespace kura::store::sqlite {
namespace {

std::string_view BaseName(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string Describe(std::string_view what, std::string_view path, int rc) {
  std::string m = "database ";
  m += BaseName(path);
  m += " (";
  m += what;
  m += "): ";
  m += sqlite3_errstr(rc);
  return m;
}

}  // namespace

Status ErrorStatus(int rc, std::string_view what, std::string_view path, std::string_view detail) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
      return UnavailableError(Describe(what, path, rc));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError("database file " + std::string(BaseName(path)) +
                           " is damaged or not a kura database (" + std::string(what) +
                           "): " + sqlite3_errstr(rc));
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_UNIQUE:
          return AlreadyExistsError(std::string(what) + " already exists");
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return NotFoundError(std::string(what) + ": the tenant, collection or record it belongs to does not exist");
        default:
          return InvalidArgumentError(std::string(what) + ": a required value is missing or out of range");
      }
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return InvalidArgumentError(Describe(what, path, rc));
    default: {
      std::string m = Describe(what, path, rc);
      if (!detail.empty()) {
        m += ": ";
        m += detail;
      }
      return InternalError(std::move(m));
    }
  }
}

// --- Statement

Statement::Statement(Statement&& other) noexcept : conn_(other.conn_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement::~Statement() {
  if (stmt_ != nullptr) {
    // Resetting ends the statement's implicit read transaction, so the next
    // read on this connection takes a fresh WAL snapshot.
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void Statement::Bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

void Statement::Bind(int index, std::string_view value) {
  // A non-null pointer even for "": SQLite binds NULL for a null pointer.
  sqlite3_bind_text(stmt_, index, value.data() != nullptr ? value.data() : "", static_cast<int>(value.size()),
                    SQLITE_STATIC);
}

void Statement::Bind(int index, ByteView value) {
  static const std::uint8_t kEmpty = 0;
  sqlite3_bind_blob(stmt_, index, value.data() != nullptr ? value.data() : &kEmpty, static_cast<int>(value.size()),
                    SQLITE_STATIC);
}

void Statement::BindNull(int index) { sqlite3_bind_null(stmt_, index); }

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Result<bool> Statement::Step(std::string_view what) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->Error(rc, what);
}

Status Statement::Run(std::string_view what) {
  for (;;) {
    KURA_ASSIGN_OR_RETURN(bool row, Step(what));
    if (!row) return Status::Ok();
  }
}

std::int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Statement::ColumnText(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(n));
}

Bytes Statement::ColumnBytes(int col) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? Bytes() : Bytes(p, p + n);
}

bool Statement::ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

// --- Connection

namespace {

// Process-wide SQLite settings, applied once before the library initialises.
void ConfigureLibrary() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Memory statistics take a global mutex on every allocation; the store
    // never reads them, and every write and read would pay for it.
    // SQLITE_MISUSE here only means SQLite was initialised already: harmless.
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

// `file:PATH?immutable=1`, the path percent-encoded where a URI needs it.
std::string ImmutableUri(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (unsigned char c : path) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
                       c == '.' || c == '_' || c == '-' || c == '~';
    if (plain) {
      uri += static_cast<char>(c);
    } else {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 0xF];
    }
  }
  return uri + "?immutable=1";
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectionOptions& options) {
  ConfigureLibrary();
  if (options.create && options.file_read_only) return InvalidArgumentError("a read-only database is never created");
  if (options.immutable && !options.file_read_only) return InvalidArgumentError("an immutable database is read-only");
  // NOMUTEX: each connection is confined to one thread at a time by the store,
  // so SQLite's per-connection mutex would be pure overhead.
  int flags = (options.file_read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX |
              SQLITE_OPEN_PRIVATECACHE;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
#ifdef SQLITE_OPEN_EXRESCODE
  flags |= SQLITE_OPEN_EXRESCODE;
#endif
  const char* vfs = nullptr;  // SQLite's default
  if (options.gather_wal_writes) {
    if (!options.durable) return InvalidArgumentError("gathered WAL writes need synchronous = FULL");
    vfs = WalBatchingVfsName();
    if (vfs == nullptr) return InternalError("cannot register the WAL-gathering SQLite VFS");
  }
  std::string name = options.path;
  if (options.immutable) {
    flags |= SQLITE_OPEN_URI;
    name = ImmutableUri(options.path);
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &db, flags, vfs);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);  // SQLite allocates a handle even when opening fails.
    return ErrorStatus(rc, "open", options.path);
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<Connection> conn(new Connection(db, options.path));
  sqlite3_busy_timeout(db, options.busy_timeout_ms);

  // foreign_keys is per connection and off by default in SQLite.
  KURA_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON", "enable foreign keys"));
  // Statement journals of the per-operation savepoints stay in memory.
  KURA_RETURN_IF_ERROR(conn->Exec("PRAGMA temp_store = MEMORY", "configure"));
  // In WAL mode FULL syncs the log on every commit: an acknowledged write
  // survives power loss. NORMAL may lose the last commits (tests only).
  KURA_RETURN_IF_ERROR(conn->Exec(options.durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                                  "configure"));
  if (options.cache_kib > 0) {
    KURA_RETURN_IF_ERROR(conn->Exec("PRAGMA cache_size = -" + std::to_string(options.cache_kib), "configure"));
  }
  if (options.read_only) {
    // Readers never write; query_only turns a bug into an error, not a
    // write that bypasses the group commit.
    KURA_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = ON", "configure"));
  }
  // Reading the schema is the cheapest check that the file is an SQLite
  // database at all (NOTADB / CORRUPT → DataLoss).
  KURA_RETURN_IF_ERROR(conn->QueryInt("SELECT count(*) FROM sqlite_master", "read schema").status());
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Connection::Error(int rc, std::string_view what) const {
  return ErrorStatus(rc, what, path_, sqlite3_errmsg(db_));
}

Result<Statement> Connection::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Statement(this, it->second);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, "prepare statement");
  }
  cache_.emplace(sql, stmt);
  return Statement(this, stmt);
}

Status Connection::Exec(std::string_view sql, std::string_view what) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, what);
  return Status::Ok();
}

Result<std::int64_t> Connection::QueryInt(std::string_view sql, std::string_view what) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, what);
  }
  rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    Status s = rc == SQLITE_DONE ? InternalError(std::string(what) + ": query returned no row") : Error(rc, what);
    sqlite3_finalize(stmt);
    return s;
  }
  std::int64_t v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return v;
}

std::int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

bool Connection::InAutocommit() const { return sqlite3_get_autocommit(db_) != 0; }

// Creates missing directories of `dir` with mode 0700: the data directory
// holds the database and is nobody else's business. Existing directories are
// left as the operator set them.
Status MakeDirectories(const std::filesystem::path& dir) {
  if (dir.empty()) return Status::Ok();
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::Ok();
  KURA_RETURN_IF_ERROR(MakeDirectories(dir.parent_path()));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return UnavailableError("cannot create database directory " + dir.string() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Creates the database file (and fixes leftover WAL/SHM files) with mode 0600
// before SQLite opens it: SQLite would create it 0644 minus umask, and it
// copies the database file's mode to the -wal and -shm files it creates.
Status PrepareDatabaseFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return UnavailableError("cannot open database file " + path + ": " + std::strerror(errno));
  int rc = ::fchmod(fd, 0600);
  int err = errno;
  ::close(fd);
  if (rc != 0) return UnavailableError("cannot set mode 0600 on " + path + ": " + std::strerror(err));
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string side = path + suffix;
    if (::chmod(side.c_str(), 0600) != 0 && errno != ENOENT) {
      return UnavailableError("cannot set mode 0600 on " + side + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

Result<DatabaseLock> DatabaseLock::Acquire(const std::string& db_path) {
  const std::string path = db_path + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return UnavailableError("cannot open lock file " + path + ": " + std::strerror(errno));
  DatabaseLock lock(fd);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return FailedPreconditionError("database " + db_path + " is in use by another kura process (it holds " + path +
                                     ")");
    }
    return UnavailableError("cannot lock " + path + ": " + std::strerror(errno));
  }
  return lock;
}

DatabaseLock& DatabaseLock::operator=(DatabaseLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DatabaseLock::~DatabaseLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace kura::store::sqlite
