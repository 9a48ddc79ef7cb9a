-- The connector's local state (itsm-server --servicenow): the objects themselves live in the
-- ServiceNow instance; here is only what the instance cannot keep for us.

-- The newest version of each upstream record that an event reported, with the object as that
-- event showed it: the change feed skips versions already reported (its poll overlaps, and
-- writes through the connector report their own version at once), tells adds from updates,
-- and takes `previous_metadata` from here. Written in the same transaction as the event.
CREATE TABLE upstream_versions (
  account INTEGER NOT NULL,
  table_name TEXT NOT NULL,
  sys_id TEXT NOT NULL,
  mod_count INTEGER NOT NULL,
  metadata TEXT,
  PRIMARY KEY (account, table_name, sys_id)
);

-- The change feed's position per account and table: the newest `sys_updated_on` (or, for
-- sys_audit_delete, `sys_created_on`) it has fully processed, and where it started (changes up
-- to then are history, never reported: connecting to an instance does not replay it).
CREATE TABLE feed_watermarks (
  account INTEGER NOT NULL,
  table_name TEXT NOT NULL,
  updated_on TEXT NOT NULL,
  floor TEXT NOT NULL,
  PRIMARY KEY (account, table_name)
);
