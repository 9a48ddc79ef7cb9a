// Scheduled rules: at a tick (a whole UTC minute), each due rule is evaluated once for every
// object of its types whose `active` is not false, in every account the engine knows. Each
// (account, rule, tick, object) has its own plan key and run record, so running a tick again
// (a retry, an operator's "run now", a second cron delivery) acts only where it has not acted.
// Runtime-neutral: the Node timer and the Workers cron trigger both call `runSchedules`.
import { Cron } from 'croner';
import { type EngineEvent, schedulePlanKey } from '../engine/context.js';
import { evaluateEvent } from '../engine/evaluate.js';
import type { RuleSet } from '../engine/load.js';
import { createLookupResolver } from '../engine/lookup.js';
import type { Rule } from '../engine/rule.js';
import { evaluatedRun, objectNumberOf, type RunInput, skippedRun } from '../engine/run-record.js';
import { ItsmApiError } from '../itsm/client.js';
import { formatIsoDate } from '../itsm/schemas.js';
import type { RunOutcome } from '../storage/pipeline-port.js';
import {
  countRun,
  executeEvaluation,
  isTransient,
  type PipelineDeps,
  releaseIfUnplanned,
  storedEvaluation,
} from './drain.js';
import { EngineHttpError } from './errors.js';

/**
 * A tick the API failed part of is run again (it acts only where it has not yet), this many runs
 * in all, the first included, this long apart; then it is left to the next tick. Both runtimes
 * follow it: Node waits in process, on a timer of the tick's own while later minutes run
 * (runtime/schedule-queue.ts), Workers re-queue the tick.
 */
export const SCHEDULE_ATTEMPTS = 4;
export const SCHEDULE_RETRY_MS = 30_000;

/** A run of a tick for the log: `<tick> <rules><note>: N objects in M accounts (K acted on)`. */
export function describeSummary(summary: ScheduleSummary, note = ''): string {
  return `${summary.tick} ${summary.rules.join(', ')}${note}: ${summary.objects} objects in ${summary.accounts.length} accounts (${summary.outcomes.done} acted on)`;
}

/** The minute `date` falls in. */
export function tickOf(date: Date): Date {
  const tick = new Date(date.getTime());
  tick.setUTCSeconds(0, 0);
  return tick;
}

/** The enabled scheduled rules whose cron expression (UTC) matches the tick's minute. */
export function dueRules(ruleSet: RuleSet, tick: Date): Rule[] {
  return ruleSet.index.scheduled.filter((rule) => {
    // utcOffset 0 is UTC (which has no DST) computed with getUTC* alone; timezone: 'UTC' would go
    // through Intl.DateTimeFormat, whose time-zone data costs the Node process ~8 MB resident.
    const cron = new Cron(rule.trigger.schedule as string, { paused: true, utcOffset: 0 });
    try {
      return cron.match(tickOf(tick));
    } finally {
      cron.stop();
    }
  });
}

export interface ScheduleRunOptions {
  tick: Date;
  /** The rules to run (scheduled ones, enabled or not asked); default: those due at the tick. */
  rules?: readonly Rule[];
  /** Accounts to sweep; default every account the engine knows (has had a notification from). */
  accounts?: readonly number[];
}

export interface ScheduleSummary {
  tick: string;
  rules: string[];
  accounts: number[];
  /** Objects evaluated (each a run record), replays of the tick not included. */
  objects: number;
  /** Objects that already had a run for this tick. */
  duplicates: number;
  /** Scheduled runs are never parked (a tick the API failed part of is run again instead). */
  outcomes: Record<Exclude<RunOutcome, 'parked'>, number>;
  /** (rule, account) pairs that could not finish: the API failing. Running the tick again finishes them. */
  errors: string[];
  /**
   * What the tick cannot do however often it runs (generic objects cannot be listed). The loader
   * refuses such rules, so this stays empty for any rule set it loaded.
   */
  notes: string[];
}

export async function runSchedules(
  deps: PipelineDeps,
  options: ScheduleRunOptions,
): Promise<ScheduleSummary> {
  const now = deps.now ?? Date.now;
  // The tick is the evaluation's `now` for everything (hours_since, durations, once_per and
  // correlation windows): a tick run again later, or one an operator names, decides as it would
  // have at its minute, not with the clock of the moment it happens to run.
  const tickDate = tickOf(options.tick);
  const tick = formatIsoDate(tickDate);
  const rules = options.rules ?? dueRules(deps.rules(), options.tick);
  const ruleSet = deps.rules();
  // One lookup cache for the whole sweep, as a drain has one.
  const lookup = deps.lookup ?? createLookupResolver(deps.client);
  const accounts =
    options.accounts ?? (await deps.pipelineStore.listAccounts()).map((state) => state.account);
  const summary: ScheduleSummary = {
    tick,
    rules: rules.map((rule) => rule.id),
    accounts: [...accounts],
    objects: 0,
    duplicates: 0,
    outcomes: { done: 0, failed: 0, no_match: 0, skipped: 0, shadow: 0 },
    errors: [],
    notes: [],
  };

  for (const rule of rules) {
    for (const account of accounts) {
      try {
        for (const type of rule.trigger.types) {
          if (type === 'object') {
            // The loader refuses such a rule (check.ts), and every rule set comes from it: a guard,
            // so that a set assembled some other way says so instead of asking for a list the API
            // cannot give. `notes` stays in the summary (the admin endpoint's documented body).
            summary.notes.push(
              `${rule.id}: generic objects cannot be listed without a raw_type, so they are not swept`,
            );
            continue;
          }
          // With raw data, as the drain reads events and objects: `object.raw` means the same to
          // a scheduled rule as to an event rule.
          const listing = deps.client.list(account, type, { pageSize: 100, rawData: true });
          for await (const item of listing) {
            const object = item as Record<string, unknown> & { id: string };
            if (object.active === false) continue;
            const key = schedulePlanKey(account, rule.id, tick, object.id);
            if (await deps.pipelineStore.getRun(key)) {
              summary.duplicates++;
              continue;
            }
            const event: EngineEvent = {
              id: tick,
              type: 'schedule',
              account,
              at: tick,
              user_id: null,
            };
            const input: RunInput = {
              key,
              event,
              objectType: type,
              objectId: object.id,
              objectNumber: objectNumberOf(object),
              selfHops: 0,
              at: now(),
            };
            let record: ReturnType<typeof evaluatedRun>;
            try {
              const evaluation =
                (await storedEvaluation(deps, account, key)) ??
                (await evaluateEvent(
                  ruleSet,
                  {
                    key,
                    event,
                    objectType: type,
                    object,
                    previous: null,
                    now: tickDate,
                    rules: [rule],
                    lookup,
                  },
                  deps.engineStore,
                ));
              const execution = await executeEvaluation(deps, evaluation);
              record = evaluatedRun(input, evaluation, execution);
            } catch (error) {
              if (isTransient(error)) throw error;
              const message = error instanceof Error ? error.message : String(error);
              deps.log?.(`schedule: ERROR ${rule.id} on ${type} ${object.id}: ${message}`);
              await releaseIfUnplanned(deps, account, key);
              record = { ...skippedRun(input, `failed: ${message}`), outcome: 'failed' };
            }
            const run = await deps.pipelineStore.saveRun({ ...record, at: now() });
            countRun(deps.metrics, run);
            deps.metrics?.scheduledRuns.inc({ rule: rule.id });
            summary.objects++;
            if (run.outcome !== 'parked') summary.outcomes[run.outcome]++;
          }
        }
      } catch (error) {
        if (!isTransient(error) && !(error instanceof ItsmApiError)) throw error;
        const message = error instanceof Error ? error.message : String(error);
        summary.errors.push(`${rule.id} in account ${account}: ${message}`);
        deps.log?.(
          `schedule: ${rule.id} at ${tick} in account ${account} stopped: ${message}; running the tick again finishes it`,
        );
      }
    }
  }
  return summary;
}

export interface ScheduleRequest {
  /** Rule ids to run; default every enabled scheduled rule. */
  rules?: string[];
  /**
   * The tick, which is also the rules' `now`; default the current minute. A minute later than
   * the current one is refused: it would take once-only work before its time.
   */
  at?: Date;
  /** Accounts to sweep; default every account the engine knows (has had a notification from). */
  accounts?: number[];
}

/**
 * An operator's (or a test's) "run the schedules now": the named scheduled rules, or all of
 * them, as if each were due at the tick. Unknown or unscheduled rule ids are a 400.
 */
export async function runScheduleRequest(
  deps: PipelineDeps,
  request: ScheduleRequest,
): Promise<ScheduleSummary> {
  const ruleSet = deps.rules();
  let rules: readonly Rule[] = ruleSet.index.scheduled;
  if (request.rules) {
    rules = request.rules.map((id) => {
      const rule = ruleSet.rules.find((candidate) => candidate.id === id);
      if (!rule) {
        const scheduled = ruleSet.index.scheduled.map((r) => r.id);
        throw new EngineHttpError(
          400,
          'invalid_parameters',
          `no rule ${JSON.stringify(id)}; the scheduled rules are ${scheduled.length ? scheduled.join(', ') : '(none)'}`,
        );
      }
      if (rule.trigger.schedule === null) {
        throw new EngineHttpError(
          400,
          'invalid_parameters',
          `${id} is not a scheduled rule (it has no on.schedule); it runs on events`,
        );
      }
      return rule;
    });
  }
  const current = new Date((deps.now ?? Date.now)());
  if (request.at && tickOf(request.at).getTime() > tickOf(current).getTime()) {
    throw new EngineHttpError(
      400,
      'invalid_parameters',
      `at ${formatIsoDate(request.at)} is in the future (now is ${formatIsoDate(current)}): a tick run before its time would take its once-only work (once_per) for good before that time comes, so only the current minute or an earlier one can be run; to see what rules would do at a later time, dry-run them with \`itsm-rules test --event FILE --now ${formatIsoDate(request.at)}\``,
    );
  }
  return runSchedules(deps, {
    tick: request.at ?? current,
    rules,
    ...(request.accounts && { accounts: request.accounts }),
  });
}
