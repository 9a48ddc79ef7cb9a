-- Parked work: an object whose event's action keeps failing (the network, a 5xx, a 429 past the
-- client's retries, an `http` endpoint that is down) is parked with its remaining events, so that
-- the account's other objects go on and its cursor moves past them. The parked events wait here,
-- in their order, until a retry on the object's backoff schedule (or an operator's
-- POST /admin/parked/retry) finishes them; the stored plans and idempotency keys make such a
-- retry of a half-done plan safe.

-- One row per parked object: its retry schedule and the last failure.
CREATE TABLE pipeline_parked (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  account INTEGER NOT NULL,
  object_id TEXT NOT NULL,
  object_type TEXT NOT NULL,
  parked_at INTEGER NOT NULL,
  -- Tries that failed so far, the one that parked it included.
  attempts INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  error TEXT NOT NULL,
  UNIQUE (account, object_id)
);
-- The timer (Node) and the cron sweep (Workers) look for objects due for a retry.
CREATE INDEX pipeline_parked_next ON pipeline_parked (next_at);

-- The events of parked objects, in the order they happened (seq): the event that failed first.
CREATE TABLE pipeline_parked_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  account INTEGER NOT NULL,
  object_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  -- The event as the API listed it (JSON), raw data included: the cursor has moved past it.
  body TEXT NOT NULL,
  at INTEGER NOT NULL,
  UNIQUE (account, event_id)
);
CREATE INDEX pipeline_parked_events_object ON pipeline_parked_events (account, object_id, seq);
