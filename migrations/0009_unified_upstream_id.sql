-- One sys_id per table for the unified objects too (incident, problem, change_request, ...).
-- objects_by_upstream_id (0001) covers the upstream tables of generic objects, but unified
-- objects have a NULL raw_type, which a unique index treats as distinct: two Table API inserts
-- naming the same sys_id at once could both pass the read that checks it. This partial index
-- makes the second one's commit fail instead (answered as the instance's 403).
--
-- Data written before it could hold such a pair (only through that race: sys_ids the store
-- chooses are random). The oldest record of a pair keeps its sys_id; a later one gets a new
-- random sys_id (32 lower-case hex, as the store makes them), so the index can be built and no
-- record is lost. Objects refer to each other by object id, never by sys_id, so nothing else
-- changes. Both SQLite and D1 apply this file; on D1 (which keeps no objects) it changes nothing.
UPDATE objects SET upstream_id = lower(hex(randomblob(16)))
WHERE raw_type IS NULL AND EXISTS (
  SELECT 1 FROM objects AS older
  WHERE older.raw_type IS NULL
    AND older.account = objects.account
    AND older.type = objects.type
    AND older.upstream_id = objects.upstream_id
    AND older.seq < objects.seq
);
CREATE UNIQUE INDEX objects_by_unified_upstream_id ON objects (account, type, upstream_id)
  WHERE raw_type IS NULL;
