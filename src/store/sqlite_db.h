// A thin RAII layer over the SQLite C API for the store: one connection, cached prepared
// statements that receive values only through bound parameters, and scoped transactions.
// SQLite result codes become Status once, here, with a code chosen by its retry meaning.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "common/status.h"

namespace boxd::store {

// Maps an SQLite result code to a Status whose message is SQLite's own ("UNIQUE constraint
// failed: boxes.id"): busy/locked -> kUnavailable (retry the call), a duplicate primary or
// unique key -> kAlreadyExists, disk full / out of memory -> kResourceExhausted, anything
// else -> kInternal. Callers add what they were doing with withContext().
Status sqliteStatus(sqlite3* db, int rc);

// One prepared statement, borrowed from Database's cache for a scope. The destructor resets
// it and clears its bindings, so the next borrower starts clean.
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, bool owned) : stmt_(stmt), owned_(owned) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;

  // Binds `args` to parameters 1..n: integers (and bool) as INTEGER, strings as TEXT
  // (embedded bytes preserved). A bind failure is reported by the next step()/run().
  template <typename... Args>
  void bind(const Args&... args) {
    int index = 0;
    (bindValue(++index, args), ...);
  }
  void bindInt(int index, int64_t value);
  void bindText(int index, std::string_view text);

  // Advances one row: true when a row is ready to read, false when done.
  StatusOr<bool> step();
  // Runs a statement that returns no rows (or whose rows are not wanted) to completion.
  Status run();
  // Resets for another execution with new bindings (same borrow).
  void reset();

  int64_t columnInt(int col) const;
  std::string columnText(int col) const;
  // Rows changed by the last run() on this connection.
  int changes() const;

 private:
  template <typename T>
  void bindValue(int index, const T& value) {
    if constexpr (std::is_integral_v<T>) {
      bindInt(index, static_cast<int64_t>(value));
    } else {
      bindText(index, std::string_view(value));
    }
  }

  sqlite3_stmt* stmt_;
  bool owned_;        // finalized on destruction (not from the cache)
  int bind_rc_ = SQLITE_OK;  // first failed bind, reported by step()
};

// One connection. Not thread-safe: REQUIRES callers serialize every use (SqliteStore holds
// its mutex around each call), including use of borrowed statements.
class Database {
 public:
  // Opens (creating with mode 0600 if needed) the database at `path` with WAL journaling,
  // synchronous=NORMAL, foreign_keys=ON and a 5 s busy timeout.
  static StatusOr<std::unique_ptr<Database>> open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs constant SQL (pragmas, schema, transaction control). Never build `sql` from values:
  // values go through prepare() and Statement::bind().
  Status exec(const char* sql);
  // A prepared statement for `sql`, cached for the connection's lifetime. REQUIRES: the same
  // `sql` is not borrowed twice at once.
  StatusOr<Statement> prepare(const std::string& sql);
  int64_t lastInsertRowid() const;
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  // More distinct statements than this (list filters with many labels) are not cached.
  static constexpr size_t kMaxCachedStatements = 128;

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

using DatabasePtr = std::unique_ptr<Database>;

// One transaction for a scope: rolls back on destruction unless commit() succeeded.
class Transaction {
 public:
  // kWrite takes the write lock up front (BEGIN IMMEDIATE), so a read never has to be
  // upgraded mid-transaction, which SQLite cannot retry with the busy handler.
  enum class Kind { kRead, kWrite };

  explicit Transaction(Database& db) : db_(db) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status begin(Kind kind);
  Status commit();

 private:
  Database& db_;
  bool open_ = false;
};

}  // namespace boxd::store
