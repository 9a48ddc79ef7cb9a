-- The embedded ITSM API's state. Written for SQLite and D1 alike: no PRAGMAs, no triggers,
-- one statement per line group, applied in file order and recorded in d1_migrations.

-- Every object of every type. `seq` gives the stable oldest-first list order; `version` guards
-- read-modify-write updates; `fields` is the unified record as written (user and reference ids),
-- `extra` the upstream-only fields set through `raw.object` (for generic objects, the record).
CREATE TABLE objects (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  account INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  raw_type TEXT,
  upstream_id TEXT NOT NULL,
  number TEXT,
  fields TEXT NOT NULL,
  extra TEXT NOT NULL,
  created TEXT NOT NULL,
  modified TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX objects_by_collection ON objects (account, type, raw_type, seq);
-- Unique per upstream table: two sys_user records can never share a sys_id. (Unified objects
-- have a NULL raw_type, which SQLite treats as distinct; their sys_ids are random.)
CREATE UNIQUE INDEX objects_by_upstream_id ON objects (account, raw_type, upstream_id);

-- The activity log. `seq` is the event id and the cursor; it is global, so a cursor from one
-- account can never be mistaken for a position in another's log.
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  account INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX events_by_account ON events (account, seq);

-- Per-account bookkeeping: the newest event dropped by retention, so that a cursor older than
-- the oldest retained event is reported as expired instead of silently skipping events.
CREATE TABLE accounts (
  account INTEGER PRIMARY KEY,
  trimmed_through INTEGER NOT NULL DEFAULT 0
);

-- Sequential upstream numbers (INC0010001, PRB0040001, ...) per account and prefix.
CREATE TABLE counters (
  account INTEGER NOT NULL,
  name TEXT NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY (account, name)
);

-- Idempotency-Key records: the first response to a keyed POST, replayed for the same key.
CREATE TABLE idempotency_keys (
  account INTEGER NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (account, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Webhook subscriptions per application; the id is the `subscription` of each notification.
CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app_id TEXT NOT NULL,
  url TEXT NOT NULL,
  created TEXT NOT NULL,
  UNIQUE (app_id, url)
);
