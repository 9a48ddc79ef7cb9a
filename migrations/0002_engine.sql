-- The rules engine's state: correlation windows, once-only claims, the plans it decided on and
-- the effect of each planned call. Shared by the SQLite adapter (Node) and D1 (Workers).

-- One row per object counted by a correlating rule under a key; `at` (ms) moves forward each
-- time the object is counted again, so a re-run never counts an object twice.
CREATE TABLE engine_correlations (
  account INTEGER NOT NULL,
  rule_id TEXT NOT NULL,
  key TEXT NOT NULL,
  object_id TEXT NOT NULL,
  object_type TEXT NOT NULL,
  first_at INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (account, rule_id, key, object_id)
);

-- once_per: who holds (rule, key), since when. The claimant is the plan key of the event that
-- took it, so a re-run of that same event still passes.
CREATE TABLE engine_once (
  account INTEGER NOT NULL,
  rule_id TEXT NOT NULL,
  key TEXT NOT NULL,
  claimant TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (account, rule_id, key)
);

-- The plan decided for an event (or a schedule tick and object), stored before any call is
-- made, so that a re-run after a crash finishes the same calls instead of deciding anew.
CREATE TABLE engine_plans (
  key TEXT PRIMARY KEY,
  account INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- What each planned call did. A call with a row is never made again.
CREATE TABLE engine_effects (
  plan_key TEXT NOT NULL,
  call_index INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  status INTEGER,
  object_type TEXT,
  object_id TEXT,
  detail TEXT,
  at INTEGER NOT NULL,
  PRIMARY KEY (plan_key, call_index)
);
CREATE INDEX engine_effects_object ON engine_effects (object_id);
