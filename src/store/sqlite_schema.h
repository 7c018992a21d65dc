// The store's SQLite schema as numbered migrations, applied in order when a database is
// opened and recorded in schema_migrations, so every binary knows exactly which schema it
// is talking to and refuses one written by a newer binary.
#pragma once

#include <cstdint>
#include <span>

#include "common/status.h"

namespace boxd::store {

class Database;

struct Migration {
  int64_t version;  // 1, 2, 3, ... with no gaps; never edit a released one, add the next
  const char* sql;  // constant DDL, may hold several statements
};

// Every migration this binary knows, ascending.
std::span<const Migration> schemaMigrations();
int64_t latestSchemaVersion();

// Brings `db` to latestSchemaVersion() in one write transaction (all of it or none of it);
// a no-op when it is already there. kFailedPrecondition when the database was migrated by a
// newer binary: running old code on a newer schema could silently drop data.
Status applyMigrations(Database& db, int64_t now_ms);

}  // namespace boxd::store
