-- The webhook pipeline's state: where each account's drain stands, the last known state of each
-- object, and a record of every run (what the engine did with an event or scheduled object, and
-- why). Shared by the SQLite adapter (Node) and D1 (Workers): plain SQLite, no PRAGMA.

-- One row per account the pipeline has heard of. A drain is pending while notified_at is later
-- than drained_at (or drained_at is null), so a notification that lands during a drain is not lost.
CREATE TABLE pipeline_accounts (
  account INTEGER PRIMARY KEY,
  cursor TEXT,
  notified_at INTEGER,
  drained_at INTEGER
);

-- The last known state of each object: the `previous` of an event without previous_metadata,
-- and the object of a delete, which can no longer be fetched.
CREATE TABLE pipeline_snapshots (
  account INTEGER NOT NULL,
  object_id TEXT NOT NULL,
  object_type TEXT NOT NULL,
  body TEXT NOT NULL,
  event_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (account, object_id)
);

-- One row per event, or per scheduled object and tick. AUTOINCREMENT so that an id is never
-- reused after a purge: ids order runs newest first and page lists (`before`), so a reused id
-- would put a new run behind old ones. `rules` is a JSON array, in run order.
CREATE TABLE pipeline_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT UNIQUE NOT NULL,
  account INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  object_type TEXT,
  object_id TEXT,
  self_hops INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  rules TEXT NOT NULL,
  summary TEXT NOT NULL,
  detail TEXT NOT NULL,
  at INTEGER NOT NULL
);
-- Each list filter walks its index newest first and stops at the limit.
CREATE INDEX pipeline_runs_object ON pipeline_runs (object_id, id);
CREATE INDEX pipeline_runs_outcome ON pipeline_runs (outcome, id);
CREATE INDEX pipeline_runs_account ON pipeline_runs (account, id);
CREATE INDEX pipeline_runs_at ON pipeline_runs (at);

-- The rules of each run, one row per distinct rule, for the list filter by rule (a JSON array
-- cannot be indexed portably). No foreign key: the adapter deletes these rows with their run, so
-- nothing depends on whether the connection enforces foreign keys.
CREATE TABLE pipeline_run_rules (
  run_id INTEGER NOT NULL,
  rule_id TEXT NOT NULL,
  PRIMARY KEY (rule_id, run_id)
);
CREATE INDEX pipeline_run_rules_run ON pipeline_run_rules (run_id);
