#include "store/postgres_internal.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "core/log.h"

namespace kura::store::pg {
namespace {

// Type OIDs of the integer columns we read (pg_type.dat; stable since 7.x).
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kInt2Oid = 21;
constexpr unsigned kInt4Oid = 23;

// A non-null pointer for zero-length binary parameters: libpq sends NULL for
// a null pointer, and an empty byte string is not NULL.
constexpr char kEmpty[] = "";

std::string TrimmedError(PGconn* conn) {
  std::string m = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  // libpq joins the attempts on several hosts with newlines.
  for (char& c : m) {
    if (c == '\n') c = ';';
  }
  return m;
}

std::atomic<std::int64_t> round_trips{0};

std::uint64_t BigEndian(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

// --- Errors

Status ErrorStatus(std::string_view sqlstate, std::string_view what, std::string_view server_message) {
  std::string where(what);
  auto tagged = [&](std::string text) {
    text += " (SQLSTATE ";
    text += sqlstate;
    text += ")";
    return text;
  };
  if (sqlstate.size() != 5) return UnavailableError("database (" + where + "): no answer from the server");
  std::string_view cls = sqlstate.substr(0, 2);
  if (sqlstate == "23505") return AlreadyExistsError(where + " already exists");
  if (sqlstate == "23503") {
    return NotFoundError(where + ": the tenant, collection or record it belongs to does not exist");
  }
  if (cls == "23") return InvalidArgumentError(tagged(where + ": a required value is missing or out of range"));
  if (cls == "22") return InvalidArgumentError(tagged(where + ": a value is not valid for its column"));
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return UnavailableError(tagged("database (" + where + "): too many concurrent conflicting writes, try again"));
  }
  if (sqlstate == "57014") return UnavailableError(tagged("database (" + where + "): statement timed out"));
  if (IsConnectionFatal(sqlstate) || cls == "53" || sqlstate == "55P03") {
    return UnavailableError(tagged("database (" + where + "): server unavailable"));
  }
  if (sqlstate == "XX001" || sqlstate == "XX002") {
    return DataLossError(tagged("database (" + where + "): the server reports damaged data"));
  }
  std::string m = tagged("database (" + where + "): unexpected error");
  if (cls == "42" && !server_message.empty()) {
    m += ": ";
    m += server_message;
  }
  return InternalError(std::move(m));
}

std::int64_t RoundTripsForTest() { return round_trips.load(std::memory_order_relaxed); }

bool IsRetryable(std::string_view sqlstate) { return sqlstate == "40001" || sqlstate == "40P01"; }

bool IsConnectionFatal(std::string_view sqlstate) {
  return sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" ||
         sqlstate == "25006";  // read-only transaction: we are talking to a standby
}

// --- Params

Params& Params::Add(std::int64_t value) {
  auto buf = std::make_unique<char[]>(24);
  auto r = std::to_chars(buf.get(), buf.get() + 23, value);
  *r.ptr = '\0';
  values_.push_back(buf.get());
  lengths_.push_back(0);
  formats_.push_back(0);
  numbers_.push_back(std::move(buf));
  return *this;
}

Params& Params::Add(std::string_view text) {
  values_.push_back(text.empty() ? kEmpty : text.data());
  lengths_.push_back(static_cast<int>(text.size()));
  formats_.push_back(1);
  return *this;
}

Params& Params::Add(ByteView bytes) {
  values_.push_back(bytes.empty() ? kEmpty : reinterpret_cast<const char*>(bytes.data()));
  lengths_.push_back(static_cast<int>(bytes.size()));
  formats_.push_back(1);
  return *this;
}

Params& Params::AddTextForm(const std::string& text) {
  values_.push_back(text.c_str());  // text format: NUL-terminated, no length
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::AddNull() {
  values_.push_back(nullptr);
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::AddOrNull(ByteView bytes) { return bytes.empty() ? AddNull() : Add(bytes); }

Params& Params::AddOrNull(const std::optional<std::int64_t>& value) {
  return value.has_value() ? Add(*value) : AddNull();
}

// --- Rows

Rows::Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

Rows::~Rows() {
  if (result_ != nullptr) PQclear(result_);
}

int Rows::size() const { return result_ == nullptr ? 0 : PQntuples(result_); }

std::int64_t Rows::affected() const {
  const char* n = result_ == nullptr ? "" : PQcmdTuples(result_);
  std::int64_t v = 0;
  std::from_chars(n, n + std::strlen(n), v);
  return v;
}

bool Rows::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }

std::string Rows::Text(int row, int col) const {
  return std::string(PQgetvalue(result_, row, col), static_cast<std::size_t>(PQgetlength(result_, row, col)));
}

Bytes Rows::GetBytes(int row, int col) const {
  const auto* p = reinterpret_cast<const std::uint8_t*>(PQgetvalue(result_, row, col));
  return Bytes(p, p + PQgetlength(result_, row, col));
}

std::int64_t Rows::Int(int row, int col) const {
  const char* p = PQgetvalue(result_, row, col);
  int n = PQgetlength(result_, row, col);
  if (PQfformat(result_, col) == 0) {
    // Text format (results of ExecSimple/QueryInt).
    std::int64_t v = 0;
    std::from_chars(p, p + n, v);
    return v;
  }
  switch (PQftype(result_, col)) {
    case kInt8Oid:
      return static_cast<std::int64_t>(BigEndian(p, 8));
    case kInt4Oid:
      return static_cast<std::int32_t>(BigEndian(p, 4));
    case kInt2Oid:
      return static_cast<std::int16_t>(BigEndian(p, 2));
    default:
      // Only integer columns are read as integers; anything else is a bug
      // in the SQL text next to the call.
      return 0;
  }
}

std::optional<std::int64_t> Rows::OptionalInt(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Int(row, col);
}

// --- Connection

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectOptions& options) {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [k, v] : options.defaults) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  // With expand_dbname, this `dbname` is parsed as the whole DSN; later
  // keywords win over earlier ones, so the DSN overrides `defaults` and
  // `overrides` override the DSN.
  keys.push_back("dbname");
  values.push_back(options.dsn.c_str());
  for (const auto& [k, v] : options.overrides) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  // Blocking connect, bounded by connect_timeout (per host) from `defaults`
  // or the DSN.
  PGconn* raw = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (raw == nullptr || PQstatus(raw) != CONNECTION_OK) {
    std::string why = TrimmedError(raw);
    if (raw != nullptr) PQfinish(raw);
    return UnavailableError("cannot connect to the database: " + why);
  }
  std::unique_ptr<Connection> conn(new Connection(raw, options.round_trip_timeout));
  PQsetNoticeReceiver(raw, &Connection::OnNotice, conn.get());
  // Non-blocking sends: a full socket buffer (dead peer) must not block past
  // the round-trip bound either.
  if (PQsetnonblocking(raw, 1) != 0) return UnavailableError("cannot configure the database connection");
  if (!options.session_setup.empty()) {
    KURA_RETURN_IF_ERROR(conn->ExecSimple(options.session_setup, "session setup"));
  }
  return conn;
}

Connection::~Connection() { PQfinish(conn_); }

int Connection::backend_pid() const { return PQbackendPID(conn_); }

bool Connection::Idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

bool Connection::ProbeIdle() {
  if (broken_ || PQstatus(conn_) != CONNECTION_OK) return false;
  pollfd p{PQsocket(conn_), POLLIN, 0};
  int n = ::poll(&p, 1, 0);
  if (n == 0) return true;  // nothing pending: the usual case
  // An idle session receives nothing unasked but a termination notice (or
  // EOF), which libpq may not yet report as a closed connection after
  // reading it; kura sends no LISTEN and no SET between its commands. So
  // anything pending means the session is ending: drop it rather than send
  // a command that may be half carried out when the socket closes.
  PQconsumeInput(conn_);
  broken_ = true;
  return false;
}

// libpq prints notices to stderr by default; route warnings to our log (by
// SQLSTATE only: their text may quote values) and drop the chatty NOTICE
// level (e.g. "relation already exists, skipping").
void Connection::OnNotice(void* self, const PGresult* result) {
  const char* severity = PQresultErrorField(result, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity != nullptr && std::strcmp(severity, "WARNING") == 0) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    std::string_view code = state != nullptr ? state : "";
    if (code == "01000" || code == "57P01") static_cast<Connection*>(self)->sync_rep_cancelled_ = true;
    log::Warn("store: PostgreSQL warning, SQLSTATE " + std::string(code.empty() ? "?" : code));
  }
}

Status Connection::Lost(std::string_view what, std::string_view why) {
  broken_ = true;
  last_sqlstate_.clear();
  return UnavailableError("database (" + std::string(what) + "): " + std::string(why));
}

Status Connection::Fail(std::string_view sqlstate, std::string_view what, std::string_view server_message) {
  last_sqlstate_ = std::string(sqlstate);
  if (IsConnectionFatal(sqlstate) || PQstatus(conn_) != CONNECTION_OK) broken_ = true;
  return ErrorStatus(sqlstate, what, server_message);
}

template <typename Send>
Result<Rows> Connection::RoundTrip(Send&& send, std::string_view what) {
  last_sqlstate_.clear();
  sync_rep_cancelled_ = false;
  if (broken_) return Lost(what, "connection lost");
  round_trips.fetch_add(1, std::memory_order_relaxed);
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  // Waits until the socket is ready for `events`; false on timeout or error.
  auto wait = [&](short events) -> bool {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{PQsocket(conn_), events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    return n > 0;
  };
  if (!send()) return Lost(what, "connection lost: " + TrimmedError(conn_));
  // Flush what the non-blocking send left in libpq's buffer.
  for (;;) {
    int f = PQflush(conn_);
    if (f == 0) break;
    if (f < 0) return Lost(what, "connection lost: " + TrimmedError(conn_));
    if (!wait(POLLOUT | POLLIN)) return Lost(what, "the server did not accept the request in time");
    if (PQconsumeInput(conn_) == 0) return Lost(what, "connection lost: " + TrimmedError(conn_));
  }
  // Collect every result; keep the last (one command → one result). A
  // timeout leaves the connection in an unknown state, so it is dropped
  // (closing the socket also makes the server abort the transaction).
  PGresult* last = nullptr;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (!wait(POLLIN)) {
        if (last != nullptr) PQclear(last);
        return Lost(what, "no answer from the server in time");
      }
      if (PQconsumeInput(conn_) == 0) {
        if (last != nullptr) PQclear(last);
        return Lost(what, "connection lost: " + TrimmedError(conn_));
      }
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    if (last != nullptr) {
      // Keep the first error if several results came back.
      if (PQresultStatus(last) == PGRES_FATAL_ERROR) {
        PQclear(r);
        continue;
      }
      PQclear(last);
    }
    last = r;
  }
  if (last == nullptr) return Lost(what, "connection lost: " + TrimmedError(conn_));
  Rows rows(last);
  switch (PQresultStatus(last)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
      return rows;
    default: {
      const char* state = PQresultErrorField(last, PG_DIAG_SQLSTATE);
      const char* primary = PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY);
      if (state == nullptr) return Lost(what, "connection lost: " + TrimmedError(conn_));
      return Fail(state, what, primary != nullptr ? primary : "");
    }
  }
}

Result<Rows> Connection::Exec(const char* sql, const Params& params, std::string_view what) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "k" + std::to_string(prepared_.size());
    // Parameter types are left to the server to infer from the columns.
    auto prepared = RoundTrip([&] { return PQsendPrepare(conn_, name.c_str(), sql, 0, nullptr) != 0; }, what);
    if (!prepared.ok()) return prepared.status();
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  const char* name = it->second.c_str();
  return RoundTrip(
      [&] {
        return PQsendQueryPrepared(conn_, name, params.size(), params.values(), params.lengths(), params.formats(),
                                   /*resultFormat=binary*/ 1) != 0;
      },
      what);
}

bool Connection::WaitSocket(std::chrono::steady_clock::time_point deadline, short events) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{PQsocket(conn_), events, 0};
  return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
}

bool Connection::Flush(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int f = PQflush(conn_);
    if (f == 0) return true;
    if (f < 0 || !WaitSocket(deadline, POLLOUT | POLLIN) || PQconsumeInput(conn_) == 0) return false;
  }
}

PGresult* Connection::NextResult(std::chrono::steady_clock::time_point deadline, bool& lost) {
  while (PQisBusy(conn_)) {
    if (!WaitSocket(deadline, POLLIN) || PQconsumeInput(conn_) == 0) {
      lost = true;
      return nullptr;
    }
  }
  return PQgetResult(conn_);
}

Result<std::vector<Rows>> Connection::Pipeline(const std::vector<Step>& steps, std::size_t* failed_step) {
  last_sqlstate_.clear();
  sync_rep_cancelled_ = false;
  std::string_view what = steps.empty() ? std::string_view("pipeline") : steps.front().what;
  if (broken_) return Lost(what, "connection lost");
  round_trips.fetch_add(1, std::memory_order_relaxed);
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  if (PQenterPipelineMode(conn_) != 1) return Lost(what, "cannot enter pipeline mode: " + TrimmedError(conn_));
  // What was sent, in order: each step, and before a statement's first use
  // its Parse (named `name`), whose result is read like any other.
  struct Sent {
    std::size_t step;
    const char* prepare_sql = nullptr;  // non-null: a Parse of this statement
    std::string name;
  };
  std::vector<Sent> sent;
  std::unordered_map<const char*, std::string> preparing;
  bool send_ok = true;
  for (std::size_t i = 0; i < steps.size() && send_ok; ++i) {
    const Step& st = steps[i];
    if (st.params == nullptr) {
      send_ok = PQsendQueryParams(conn_, st.sql, 0, nullptr, nullptr, nullptr, nullptr, 1) != 0;
      sent.push_back({i});
      continue;
    }
    std::string name;
    if (auto it = prepared_.find(st.sql); it != prepared_.end()) {
      name = it->second;
    } else if (auto p = preparing.find(st.sql); p != preparing.end()) {
      name = p->second;
    } else {
      name = "k" + std::to_string(prepared_.size() + preparing.size());
      send_ok = PQsendPrepare(conn_, name.c_str(), st.sql, 0, nullptr) != 0;
      preparing.emplace(st.sql, name);
      sent.push_back({i, st.sql, name});
    }
    send_ok = send_ok && PQsendQueryPrepared(conn_, name.c_str(), st.params->size(), st.params->values(),
                                             st.params->lengths(), st.params->formats(), 1) != 0;
    sent.push_back({i});
  }
  if (!send_ok || PQpipelineSync(conn_) != 1 || !Flush(deadline)) {
    return Lost(what, "connection lost: " + TrimmedError(conn_));
  }
  std::vector<Rows> out;
  out.reserve(steps.size());
  std::string error_state;
  std::string error_message;
  std::size_t error_step = 0;
  bool failed = false;
  bool lost = false;
  for (const Sent& s : sent) {
    PGresult* r = NextResult(deadline, lost);
    if (lost || r == nullptr) return Lost(steps[s.step].what, "no answer from the server in time");
    const ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_FATAL_ERROR && !failed) {
      failed = true;
      error_step = s.step;
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      error_state = state != nullptr ? state : "";
      error_message = primary != nullptr ? primary : "";
    }
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY;
    if (s.prepare_sql != nullptr) {
      // Prepared for good only if the server parsed it (the rest of a
      // failed pipeline is skipped, Parse included).
      if (ok) prepared_.emplace(s.prepare_sql, s.name);
      PQclear(r);
    } else {
      out.emplace_back(r);
    }
    // The end of this command's results.
    PGresult* end = NextResult(deadline, lost);
    if (lost) return Lost(steps[s.step].what, "no answer from the server in time");
    if (end != nullptr) {
      PQclear(end);
      return Lost(steps[s.step].what, "unexpected results in a pipeline");
    }
  }
  PGresult* sync = NextResult(deadline, lost);
  if (lost || sync == nullptr) return Lost(what, "no answer from the server in time");
  const bool synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced || PQexitPipelineMode(conn_) != 1) return Lost(what, "pipeline out of step");
  if (failed) {
    if (failed_step != nullptr) *failed_step = error_step;
    if (error_state.empty()) return Lost(steps[error_step].what, "connection lost: " + TrimmedError(conn_));
    return Fail(error_state, steps[error_step].what, error_message);
  }
  return out;
}

Status Connection::ExecSimple(std::string_view sql, std::string_view what) {
  std::string text(sql);
  return RoundTrip([&] { return PQsendQuery(conn_, text.c_str()) != 0; }, what).status();
}

Result<std::int64_t> Connection::QueryInt(std::string_view sql, std::string_view what) {
  std::string text(sql);
  KURA_ASSIGN_OR_RETURN(Rows rows, RoundTrip([&] { return PQsendQuery(conn_, text.c_str()) != 0; }, what));
  if (rows.size() != 1 || rows.IsNull(0, 0)) return InternalError("database (" + std::string(what) + "): no value");
  return rows.Int(0, 0);
}

// --- Migrations

namespace {
const std::string& LockSql() {
  static const std::string sql = "SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")";
  return sql;
}
}  // namespace

Status PostgresMigrationTarget::Execute(const std::string& sql) {
  if (in_transaction_) return conn_.ExecSimple(sql, "schema migration");
  // A statement outside BeginExclusive (the runner's CREATE TABLE IF NOT
  // EXISTS) still runs under the lock: two sessions creating the same table
  // at once can otherwise fail on a unique violation in the catalog.
  KURA_RETURN_IF_ERROR(BeginExclusive());
  Status s = conn_.ExecSimple(sql, "schema migration");
  if (s.ok()) return Commit();
  Rollback();
  return s;
}

Status PostgresMigrationTarget::BeginExclusive() {
  KURA_RETURN_IF_ERROR(conn_.ExecSimple("BEGIN", "schema migration"));
  in_transaction_ = true;
  Status s = conn_.ExecSimple(LockSql(), "schema migration lock");
  if (!s.ok()) Rollback();
  return s;
}

Status PostgresMigrationTarget::Commit() {
  in_transaction_ = false;
  return conn_.ExecSimple("COMMIT", "schema migration");
}

void PostgresMigrationTarget::Rollback() {
  in_transaction_ = false;
  if (!conn_.broken() && !conn_.Idle()) conn_.ExecSimple("ROLLBACK", "schema migration").IgnoreError();
}

// --- Connection options

namespace {

// The client waits this much longer than the server's statement_timeout, so
// normally the server cancels a slow statement (and the connection survives)
// before the client gives up on the connection.
constexpr std::chrono::milliseconds kClientGrace{1000};

// Reads the password file: one line, owned by us, no access for group or
// others (the same rule libpq applies to ~/.pgpass), so a password never
// sits in a world-readable configuration.
Result<std::string> ReadPasswordFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return InvalidArgumentError("cannot open database password file " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError("database password file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return InvalidArgumentError("database password file " + path +
                                " is readable by group or others; chmod 600 it");
  }
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 4096) break;
  }
  ::close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.empty() || out.size() > 4096 || out.find('\n') != std::string::npos) {
    return InvalidArgumentError("database password file " + path + " must hold exactly one line");
  }
  return out;
}

// Checks the DSN parses and warns when it turns certificate checks off.
Status CheckDsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    // libpq's message may quote the DSN, and the DSN may hold a password.
    if (err != nullptr) PQfreemem(err);
    return InvalidArgumentError("the PostgreSQL connection string (dsn) is not valid");
  }
  std::string sslmode;
  std::string host;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "sslmode") == 0) sslmode = o->val;
    if (std::strcmp(o->keyword, "host") == 0) host = o->val;
  }
  PQconninfoFree(opts);
  const bool unix_socket = !host.empty() && host.front() == '/';
  if (!sslmode.empty() && sslmode != "verify-full" && !unix_socket) {
    log::Warn("store: PostgreSQL sslmode=" + sslmode +
              " does not verify the server's certificate and name; use sslmode=verify-full");
  }
  return Status::Ok();
}

}  // namespace

Result<ConnectOptions> MakeConnectOptions(const PostgresOptions& options) {
  KURA_RETURN_IF_ERROR(CheckDsn(options.dsn));
  pg::ConnectOptions connect;
  // Defaults the DSN may override. verify-full: the connection carries
  // ciphertext, key hashes and wrapped keys, and the server's identity must
  // be checked, not just the channel encrypted.
  connect.defaults = {{"sslmode", "verify-full"},
                      {"connect_timeout", std::to_string(options.connect_timeout_s)},
                      {"application_name", "kura"}};
  connect.dsn = options.dsn;
  if (!options.password_file.empty()) {
    KURA_ASSIGN_OR_RETURN(std::string password, ReadPasswordFile(options.password_file));
    connect.overrides.emplace_back("password", std::move(password));
  }
  connect.round_trip_timeout = std::chrono::milliseconds(options.statement_timeout_ms) + kClientGrace;
  const std::string timeout = std::to_string(options.statement_timeout_ms);
  // lock_timeout: a write blocked behind another session's lock fails
  // (Unavailable) rather than waiting out the whole statement timeout;
  // idle_in_transaction: a client that vanished mid-transaction releases
  // its locks soon.
  connect.session_setup = "SET statement_timeout = " + timeout + "; SET lock_timeout = " + timeout +
                          "; SET idle_in_transaction_session_timeout = " +
                          std::to_string(options.statement_timeout_ms * 4 + 1000) +
                          "; SET client_min_messages = warning";
  if (options.read_only) connect.session_setup += "; SET default_transaction_read_only = on";

  return connect;
}

}  // namespace kura::store::pg
