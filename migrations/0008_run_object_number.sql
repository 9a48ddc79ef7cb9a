-- The object's number (INC0010001) on each run record, so that lists show and filter by the number
-- people know instead of the 65-character id. Null for runs saved before this migration, for
-- generic objects, and for runs without an object.
ALTER TABLE pipeline_runs ADD COLUMN object_number TEXT;
-- The console's filter by number walks this index newest first and stops at the limit.
CREATE INDEX pipeline_runs_object_number ON pipeline_runs (object_number, id);
