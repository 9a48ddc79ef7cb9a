-- The object's number (INC0010001) on each run record, so that lists show and filter by the number
-- people know instead of the 65-character id. Null for runs saved before this migration, for
-- generic objects, and for runs without an object.
ALTER TABLE pipeline_runs ADD COLUMN object_number TEXT;
-- The console's filter by number walks this index newest first and stops at the limit.
CREATE INDEX pipeline_runs_object_number ON pipeline_runs (object_number, id);
-- The time of a run by its id without reading the row: the console's per-rule counts look up
-- the time of tens of thousands of runs, and `at` sits after the large `detail` in each row, so
-- reading it from the row means walking the detail's overflow pages.
CREATE INDEX pipeline_runs_id_at ON pipeline_runs (id, at);
