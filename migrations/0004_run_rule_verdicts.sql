-- Every rule a run looked at, not only those that matched or failed, with what it did with the
-- event (matched, no_match, skipped, failed), so that "why didn't my rule act?" is a list by rule
-- (`/runs?rule_id=X`, `&matched=false`). A run looks only at the rules the index selected for its
-- event (its object type and event), which keeps a run's rows few.

-- The verdict of each rule looked at, as a JSON object {rule id: verdict}.
ALTER TABLE pipeline_runs ADD COLUMN verdicts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE pipeline_run_rules ADD COLUMN verdict TEXT NOT NULL DEFAULT 'matched';

-- Runs saved before this migration indexed their matched and failed rules only: those rows get
-- the verdict their run record holds, and the run the verdicts of its rows.
UPDATE pipeline_run_rules SET verdict = 'failed'
WHERE EXISTS (
  SELECT 1 FROM pipeline_runs r, json_each(r.detail, '$.rules') j
  WHERE r.id = pipeline_run_rules.run_id
    AND json_extract(j.value, '$.ruleId') = pipeline_run_rules.rule_id
    AND json_extract(j.value, '$.verdict') = 'failed'
);
UPDATE pipeline_runs SET verdicts = (
  SELECT json_group_object(rr.rule_id, rr.verdict) FROM pipeline_run_rules rr
  WHERE rr.run_id = pipeline_runs.id
)
WHERE EXISTS (SELECT 1 FROM pipeline_run_rules rr WHERE rr.run_id = pipeline_runs.id);

-- `matched=true` walks the runs in which a rule acted, newest first, without reading the rest.
CREATE INDEX pipeline_run_rules_verdict ON pipeline_run_rules (rule_id, verdict, run_id);
