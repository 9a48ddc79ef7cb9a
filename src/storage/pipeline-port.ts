// The storage port of the webhook pipeline: per-account drain state (the events cursor and the
// notifications not yet drained), the last known state of each object (the `previous` of an event
// that carries no previous_metadata, and the object of a delete), and run records (what the
// engine did with each event or scheduled object, and why). Small and async, so that the SQLite
// adapter (Node) and a D1 adapter (Workers) can both implement it over migrations/0003_pipeline.sql,
// 0004_run_rule_verdicts.sql, 0005_parked.sql (parked objects and the events waiting behind them),
// 0006_run_rule_version.sql, 0008_run_object_number.sql and 0011_pending_notifications.sql
// (the notifications not yet drained, one note each).
// Times are milliseconds since the epoch.

export interface AccountState {
  account: number;
  /** The events cursor after the last finished page; null before the first page. */
  cursor: string | null;
  /** The newest verified notification noted for the account; null if none yet. */
  notifiedAt: number | null;
  /**
   * When the last drain page that reached the end of the event log was requested: the log as it
   * stood then has been drained. Null if no page has reached the end yet.
   */
  drainedAt: number | null;
  /**
   * The oldest notification noted and not yet drained, that is not older than the request of a
   * page that reached the end of the log since; null when none waits. The drain lag counts from
   * it (drain-lag.ts).
   */
  pendingSince: number | null;
}

export interface SnapshotRecord {
  account: number;
  objectId: string;
  objectType: string;
  /** The object as JSON. */
  body: string;
  /** The event that left the object in this state. */
  eventId: string;
  at: number;
}

/**
 * What a finished event leaves of its object, saved with the event's run: its state after the
 * event (`put`), or nothing (`delete`: the object is gone).
 */
export type SnapshotChange =
  | { put: SnapshotRecord }
  | { delete: { account: number; objectId: string } };

/**
 * - done: at least one rule matched, and every planned call succeeded (or nothing needed writing);
 * - failed: a planned call failed for good (a 4xx, or an http call refused) or a rule failed at runtime;
 * - no_match: the event was evaluated and no rule matched;
 * - skipped: the event was not evaluated (the engine's own write with no `on.self` rule, an object
 *   gone before it could be fetched, an object type the engine does not know);
 * - shadow: only rules in shadow mode matched: the calls they would have made are in the record,
 *   none was made.
 * - parked: not finished yet: an action of the object's events keeps failing (the network, a 5xx,
 *   a 429), so the event waits, with the object's later events, for a retry. The only outcome a
 *   later save replaces: the run of the retry that finishes the event.
 */
export const RUN_OUTCOMES = ['done', 'failed', 'no_match', 'skipped', 'shadow', 'parked'] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

/**
 * What a rule did with an event: matched (its actions were planned), no_match (its condition is
 * false), skipped (a trigger filter, stop, correlate or once_per held it back), failed, shadow (a
 * rule in shadow mode would have matched: its calls are recorded, never made).
 */
export const RULE_VERDICTS = ['matched', 'no_match', 'skipped', 'failed', 'shadow'] as const;
export type RuleVerdict = (typeof RULE_VERDICTS)[number];

export interface NewRunRecord {
  /** The plan key (`e:1:42`, `s:1:rule:tick:id`): one run per event, or per scheduled object and tick. */
  key: string;
  account: number;
  /** The event id, or the schedule tick for a scheduled rule. */
  eventId: string;
  eventType: string;
  objectType: string | null;
  objectId: string | null;
  /**
   * The object's number (INC0010001), null when it has none (a generic object) or is unknown
   * (a run saved before migrations/0008); absent is null.
   */
  objectNumber?: string | null;
  selfHops: number;
  outcome: RunOutcome;
  /**
   * The rules that matched or failed, in run order. Every rule looked at is in `verdicts`, which
   * the store indexes for `RunQuery.ruleId`.
   */
  rules: string[];
  /** Every rule the run looked at (those the index selected for the event) and its verdict. */
  verdicts: Record<string, RuleVerdict>;
  /** One line: what happened, for lists. */
  summary: string;
  /** JSON: rule outcomes, calls and notes, for "what happened and why". */
  detail: string;
  at: number;
  /**
   * The version of the rule set that evaluated (hex SHA-256 of its files); null or absent when the
   * event was not evaluated, or for runs stored before versions were recorded.
   */
  ruleVersion?: string | null;
}

export interface RunRecord extends NewRunRecord {
  /** Assigned by the store, increasing: newer runs have larger ids. */
  id: number;
}

export interface RunQuery {
  account?: number;
  objectId?: string;
  /** The object's number (INC0010001). */
  objectNumber?: string;
  /** Only runs finished at or after this time. */
  since?: number;
  /** Only runs finished before this time. */
  until?: number;
  /** Runs in which this rule was looked at, whatever its verdict (matched, no_match, skipped, failed). */
  ruleId?: string;
  /** With ruleId: only the runs in which the rule matched (true), or only those where it did not. */
  matched?: boolean;
  outcome?: RunOutcome;
  /** Only runs evaluated by this rule set version (its hex SHA-256, or a prefix of it). */
  ruleVersion?: string;
  /** Only runs with an id below this one (the next page of a newest-first list). */
  before?: number;
  /** At most this many runs, newest first. */
  limit: number;
}

export interface RuleActivityQuery {
  ruleIds: readonly string[];
  since: number;
  bucketMs: number;
}

/** One cell of `ruleActivity`: the runs of one bucket that gave one rule one verdict. */
export interface RuleActivity {
  ruleId: string;
  verdict: 'matched' | 'failed';
  /** 0 for the bucket that starts at `since`, then 1, 2, ... */
  bucket: number;
  runs: number;
}

/** An object whose events wait for a retry (a parked object). */
export interface ParkedObject {
  /** Assigned by the store. */
  id: number;
  account: number;
  objectId: string;
  objectType: string;
  parkedAt: number;
  /** Tries that failed so far, the one that parked the object included. */
  attempts: number;
  /** When the next retry is due. */
  nextAt: number;
  /** The last failure. */
  error: string;
  /** Events waiting, the failed one included. */
  events: number;
}

export interface ParkedEvent {
  account: number;
  objectId: string;
  eventId: string;
  /** The event as the API listed it, JSON. */
  body: string;
  at: number;
}

export interface ParkedQuery {
  id?: number;
  account?: number;
  objectId?: string;
  /** Only objects due for a retry at this time (nextAt <= dueAt). */
  dueAt?: number;
  /** At most this many, oldest parked first. */
  limit: number;
}

export interface PipelineStore {
  /**
   * Records a verified notification for the account at `at` (creating its state if needed): it
   * becomes notifiedAt if newer, and pendingSince if older, until a page covers it (saveCursor).
   */
  noteNotification(account: number, at: number): Promise<void>;
  getAccount(account: number): Promise<AccountState | null>;
  /** Every account with state, by account number. */
  listAccounts(): Promise<AccountState[]>;
  /**
   * Stores the cursor after a finished page (null: start again from the oldest retained event).
   * `at` is when the page was requested; with `drained` (the page reached the end of the log)
   * it becomes drainedAt, and the notifications noted before `at` are drained; one noted at
   * `at` or later (during the page, or in the same millisecond) still waits for a later page.
   */
  saveCursor(account: number, cursor: string | null, at: number, drained: boolean): Promise<void>;
  getSnapshot(account: number, objectId: string): Promise<SnapshotRecord | null>;
  /** Replaces the snapshot of the object. */
  putSnapshot(snapshot: SnapshotRecord): Promise<void>;
  deleteSnapshot(account: number, objectId: string): Promise<void>;
  getRun(key: string): Promise<RunRecord | null>;
  getRunById(id: number): Promise<RunRecord | null>;
  /**
   * Stores a run unless one is stored under its key; returns the run stored under the key. With
   * `snapshot`, also puts or deletes the object's snapshot, whichever run is stored, in the same
   * transaction: the last two writes of an event, which nothing outside happens between, cost
   * one commit instead of two.
   */
  saveRun(run: NewRunRecord, snapshot?: SnapshotChange): Promise<RunRecord>;
  listRuns(query: RunQuery): Promise<RunRecord[]>;
  /**
   * How many runs finished at or after `since` each of `ruleIds` matched or failed in, by verdict
   * and by bucket of `bucketMs` counted from `since` (the console's per-rule charts). Reads only
   * those rows: the runs in which a rule was looked at and did nothing are not counted. `failed`
   * is a rule whose condition failed to evaluate, or that matched and made a call that failed
   * (such a run counts once, as failed, not as matched too).
   */
  ruleActivity(query: RuleActivityQuery): Promise<RuleActivity[]>;
  /** Deletes runs finished before `before`; returns how many. */
  purgeRuns(before: number): Promise<number>;
  /**
   * Parks the object (unless it is parked already, whose schedule then stays) and adds the events
   * behind it, in the order given; an event already waiting is not added twice.
   */
  park(
    object: Omit<ParkedObject, 'id' | 'events'>,
    events: readonly ParkedEvent[],
  ): Promise<ParkedObject>;
  getParked(account: number, objectId: string): Promise<ParkedObject | null>;
  listParked(query: ParkedQuery): Promise<ParkedObject[]>;
  /** The events waiting behind a parked object, oldest first. */
  parkedEvents(account: number, objectId: string): Promise<ParkedEvent[]>;
  /** Removes one waiting event (it is finished). */
  removeParkedEvent(account: number, eventId: string): Promise<void>;
  /** Sets the retry schedule of a parked object; false when it is no longer parked. */
  rescheduleParked(
    account: number,
    objectId: string,
    schedule: { attempts: number; nextAt: number; error: string },
  ): Promise<boolean>;
  /** Makes the parked objects the query selects (dueAt aside) due at `at`; returns them. */
  retryParkedAt(query: Omit<ParkedQuery, 'dueAt'>, at: number): Promise<ParkedObject[]>;
  /** Unparks the object if no event waits behind it any more; true when it did. */
  unpark(account: number, objectId: string): Promise<boolean>;
  close(): Promise<void>;
}
