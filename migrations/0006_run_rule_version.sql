-- Which version of the rules evaluated each run: the hex SHA-256 of the rule set's files
-- (src/engine/rule-version.ts), so that `/runs?rule_version=` lists what one version did (after
-- a reload or a deploy, the runs of the version before stay findable by theirs). Null for runs
-- that were not evaluated (skipped) and for runs stored before this migration.
ALTER TABLE pipeline_runs ADD COLUMN rule_version TEXT;
CREATE INDEX pipeline_runs_rule_version ON pipeline_runs (rule_version, id);
