-- Every rule a run looked at, not only those that matched or failed: each row says what the rule
-- did with the event (matched, no_match, skipped, failed), so that "why didn't my rule act?" is a
-- list by rule (`/runs?rule_id=X`, `&matched=false`). Rows exist only for the rules the index
-- selected for the event (its object type and event), which keeps a run's rows few.
ALTER TABLE pipeline_run_rules ADD COLUMN verdict TEXT NOT NULL DEFAULT 'matched';

-- The runs saved before this migration indexed matched and failed rules only; their rows get the
-- verdict their run record holds (failed over matched when a rule appears twice).
UPDATE pipeline_run_rules SET verdict = 'failed'
WHERE EXISTS (
  SELECT 1 FROM pipeline_runs r, json_each(r.detail, '$.rules') j
  WHERE r.id = pipeline_run_rules.run_id
    AND json_extract(j.value, '$.ruleId') = pipeline_run_rules.rule_id
    AND json_extract(j.value, '$.verdict') = 'failed'
);

-- `matched=true` walks the runs of a rule that acted, newest first, without reading the rest.
CREATE INDEX pipeline_run_rules_verdict ON pipeline_run_rules (rule_id, verdict, run_id);
