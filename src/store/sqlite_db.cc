#include "store/sqlite_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace boxd::store {

Status sqliteStatus(sqlite3* db, int rc) {
  // The connection's message names the table and column; a bare code only says what kind.
  const bool from_db = db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff);
  std::string message = from_db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int extended = from_db ? sqlite3_extended_errcode(db) : rc;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return unavailable(std::move(message));
    case SQLITE_CONSTRAINT:
      if (extended == SQLITE_CONSTRAINT_PRIMARYKEY || extended == SQLITE_CONSTRAINT_UNIQUE) {
        return Status(StatusCode::kAlreadyExists, std::move(message));
      }
      return internalError(std::move(message));
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return resourceExhausted(std::move(message));
    default:
      return internalError(std::move(message));
  }
}

// --- Statement -------------------------------------------------------------------

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(other.stmt_), owned_(other.owned_), bind_rc_(other.bind_rc_) {
  other.stmt_ = nullptr;
}

void Statement::bindInt(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

void Statement::bindText(int index, std::string_view text) {
  // Non-null even for "", so an empty string binds as '' and not as NULL.
  static const char kEmpty[] = "";
  int rc = sqlite3_bind_text64(stmt_, index, text.empty() ? kEmpty : text.data(), text.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

StatusOr<bool> Statement::step() {
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_rc_ != SQLITE_OK) {
    return sqliteStatus(nullptr, bind_rc_).withContext("bind parameter");
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqliteStatus(db, rc);
}

Status Statement::run() {
  for (;;) {
    StatusOr<bool> row = step();
    if (!row.ok()) return row.status();
    if (!*row) return okStatus();
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
}

int64_t Statement::columnInt(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Statement::columnText(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

int Statement::changes() const { return sqlite3_changes(sqlite3_db_handle(stmt_)); }

// --- Database --------------------------------------------------------------------

StatusOr<DatabasePtr> Database::open(const std::string& path) {
  const std::string what = "open sqlite database " + path;
  const bool in_memory = path.empty() || path == ":memory:";
  if (!in_memory) {
    // SQLite would create the file 0644; it holds token hashes and the audit log. The -wal
    // and -shm files inherit the database file's mode.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return errnoStatus(what, errno);
    ::close(fd);
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = sqliteStatus(raw, rc).withContext(what);
    sqlite3_close_v2(raw);  // a handle is returned even on failure
    return st;
  }
  DatabasePtr db(new Database(raw, path));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);

  // journal_mode answers with the mode it ended up in; WAL can be refused (in-memory
  // databases, file systems without shared memory), and the store relies on it for readers
  // that do not block the writer.
  {
    ASSIGN_OR_RETURN(Statement mode, db->prepare("PRAGMA journal_mode=WAL"));
    StatusOr<bool> row = mode.step();
    if (!row.ok()) return row.status().withContext(what + ": set journal_mode=WAL");
    std::string got = *row ? mode.columnText(0) : "";
    if (got != "wal" && !(in_memory && got == "memory")) {
      return failedPrecondition(what + ": journal_mode=WAL not available (got \"" + got + "\")");
    }
  }
  RETURN_IF_ERROR(db->exec("PRAGMA synchronous=NORMAL").withContext(what));
  RETURN_IF_ERROR(db->exec("PRAGMA foreign_keys=ON").withContext(what));
  return db;
}

Database::~Database() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  // Keeps planner statistics fresh for the indexes the list queries use; cheap when there
  // is nothing to do.
  sqlite3_exec(db_, "PRAGMA optimize", nullptr, nullptr, nullptr);
  sqlite3_close_v2(db_);
}

Status Database::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return okStatus();
  Status st = sqliteStatus(db_, rc);
  if (err != nullptr) {
    st = Status(st.code(), err);
    sqlite3_free(err);
  }
  return st;
}

StatusOr<Statement> Database::prepare(const std::string& sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) return Statement(it->second, false);
  const bool cache = cache_.size() < kMaxCachedStatements;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              cache ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return sqliteStatus(db_, rc).withContext("prepare \"" + sql + "\"");
  }
  if (!cache) return Statement(stmt, true);
  cache_.emplace(sql, stmt);
  return Statement(stmt, false);
}

int64_t Database::lastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

// --- Transaction -----------------------------------------------------------------

// BEGIN and COMMIT go through cached statements: on a hot path such as updateBox, parsing
// them on every call is a measurable share of the work.
Status Transaction::begin(Kind kind) {
  ASSIGN_OR_RETURN(Statement stmt,
                   db_.prepare(kind == Kind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  RETURN_IF_ERROR(stmt.run().withContext("begin transaction"));
  open_ = true;
  return okStatus();
}

Status Transaction::commit() {
  ASSIGN_OR_RETURN(Statement stmt, db_.prepare("COMMIT"));
  RETURN_IF_ERROR(stmt.run().withContext("commit"));
  open_ = false;
  return okStatus();
}

Transaction::~Transaction() {
  // After some errors (SQLITE_FULL, SQLITE_NOMEM) SQLite has already rolled back; ROLLBACK
  // then fails harmlessly with "no transaction is active".
  if (open_) (void)db_.exec("ROLLBACK");
}

}  // namespace boxd::store
