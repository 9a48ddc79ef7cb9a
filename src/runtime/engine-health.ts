// What `/healthz` of `itsm-rules serve` reports as wrong, from what the engine saw happen: the
// last load of the rule files (refused: the last good set still runs, `rules_not_reloaded`) and
// the database's answers (real writes that failed, and a write probe at /healthz time:
// `database_unwritable`, which stops the engine from making progress). Also keeps the reload
// and database-error metrics.
import { sqliteErrorOf } from '../storage/sqlite.js';
import type { HealthProblem } from '../webhook/app.js';
import type { EngineMetrics } from '../webhook/metrics.js';

export interface EngineHealth {
  /** Records a load of the rule files (the first at start) and its result. */
  noteReload(result: { ok: boolean; rules: number; problems: string[] }, at?: number): void;
  /** Records an error of the engine's work; true when the database answered it. */
  noteError(error: unknown, at?: number): boolean;
  /** Records that the engine's writes succeeded (a notification noted, an account drained). */
  noteWritesOk(at?: number): void;
  /** The problems now; runs the write probe. */
  problems(): HealthProblem[];
}

export function createEngineHealth(options: {
  rulesDir: string;
  db: string;
  metrics: EngineMetrics;
  /** Throws SQLite's error when the database cannot be written now. */
  probeWrite(): void;
}): EngineHealth {
  const { metrics } = options;
  /** The first refused load of the current run of refusals, and the latest one's problems. */
  let rulesRefused: { since: number; problems: number; rules: number } | null = null;
  let lastWriteError: { at: number; code: string; message: string } | null = null;
  let lastWritesOk = 0;

  const noteError = (error: unknown, at = Date.now()): boolean => {
    const sqlite = sqliteErrorOf(error);
    if (!sqlite) return false;
    metrics.databaseErrors.inc();
    if (sqlite.unwritable) lastWriteError = { at, code: sqlite.code, message: sqlite.message };
    return true;
  };

  return {
    noteReload(result, at = Date.now()) {
      metrics.reloadTimestamp.set({}, Math.floor(at / 1000));
      metrics.reloadSuccess.set({}, result.ok ? 1 : 0);
      rulesRefused = result.ok
        ? null
        : {
            since: rulesRefused?.since ?? at,
            problems: result.problems.length,
            rules: result.rules,
          };
    },
    noteError,
    noteWritesOk(at = Date.now()) {
      lastWritesOk = at;
    },
    problems() {
      const problems: HealthProblem[] = [];
      if (rulesRefused) {
        const since = new Date(rulesRefused.since).toISOString();
        const count = rulesRefused.problems;
        problems.push({
          code: 'rules_not_reloaded',
          message: `the rule files in ${options.rulesDir} have ${count} problem${count === 1 ? '' : 's'} since ${since} and were not reloaded; the last good set (${rulesRefused.rules} rules) is running. Fix them (itsm-rules check --rules ${options.rulesDir})`,
          problems_count: count,
          since,
        });
      }
      let cause: { code: string; message: string } | null = null;
      try {
        options.probeWrite();
        // The probe takes the write lock, so it proves a read-only state over; a full disk it
        // cannot disprove (it writes nothing to the file): that waits for a real write.
        if (lastWriteError && !lastWriteError.code.startsWith('SQLITE_FULL')) lastWriteError = null;
      } catch (error) {
        // The probe's own failure is a database error like any other: counted and remembered.
        if (!noteError(error)) throw error;
        const sqlite = sqliteErrorOf(error);
        if (sqlite?.unwritable) cause = sqlite;
      }
      // A write that failed after the last one that succeeded (a full disk passes the probe,
      // which writes nothing to the file, but not a real write).
      if (!cause && lastWriteError && lastWriteError.at >= lastWritesOk) cause = lastWriteError;
      if (cause) {
        problems.push({
          code: 'database_unwritable',
          message: `the database ${options.db} cannot be written: ${cause.message} (${cause.code}); the engine can neither record notifications nor act on events until it can. Make it writable or free disk space`,
          cause: cause.code,
          blocking: true,
        });
      }
      return problems;
    },
  };
}
