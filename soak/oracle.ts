// The soak's judge: what the soak rules (soak/rules/) demand, worked out from the driver's list
// of changes alone, compared with the ITSM state and event log read back over the API. Each
// demanded effect that is absent is a missed effect; each one made more than once is a
// duplicated effect; an effect nothing demanded is an unexpected one. It also reads the activity
// log for repeated writes: an update by the engine that only repeats the engine's previous write
// to the same object (a retried call the API applied twice). No engine code is used.
import type { SoakChange } from './plan.js';

/** The engine's user (X-Kloudless-As-User of `serve`): its events are the rules' effects. */
export const ENGINE_USER = 'itsm-rules';

export interface ApiObject {
  id: string;
  category?: string | null;
  priority?: string | null;
  escalation?: number | null;
  status?: number | string | null;
  incident?: string | null;
  problem?: string | null;
  change?: string | null;
}

export interface ApiEvent {
  id: string;
  type: string;
  user_id: string | null;
  metadata: { id: string; type: string } & Record<string, unknown>;
  previous_metadata?: Record<string, unknown> | null;
}

export interface AccountState {
  account: number;
  incidents: ApiObject[];
  problems: ApiObject[];
  changes: ApiObject[];
  events: ApiEvent[];
}

export interface Finding {
  account: number;
  what: string;
}

export interface Verdict {
  /** Effects the rules demand, counted once each. */
  expected: number;
  missed: Finding[];
  duplicated: Finding[];
  unexpected: Finding[];
  /**
   * Activity-log duplicates: updates by the engine whose change repeats the engine's previous
   * update of the same object (same fields, same values) with no other write between. The
   * object ends up right, but the log and the webhooks carry the write twice.
   */
  repeated: Finding[];
}

/** `ref -> id` of the objects the driver created (an id per account-unique ref). */
export type CreatedIds = ReadonlyMap<string, string>;

const refOf = (id: string | null | undefined): string | null =>
  typeof id === 'string' && id !== '' ? id : null;

function priorityChanges(state: AccountState, incidentId: string, engineUser: string): number {
  return state.events.filter(
    (event) =>
      event.type === 'update' &&
      event.user_id === engineUser &&
      event.metadata.id === incidentId &&
      event.previous_metadata?.priority !== event.metadata.priority,
  ).length;
}

/**
 * `engineUser` is the user id the judged log gives the engine's writes: the engine's own user on
 * the API it writes through, or the integration user's id in a ServiceNow instance's log.
 */
export function judge(
  changes: readonly SoakChange[],
  ids: CreatedIds,
  states: readonly AccountState[],
  engineUser: string = ENGINE_USER,
): Verdict {
  const verdict: Verdict = {
    expected: 0,
    missed: [],
    duplicated: [],
    unexpected: [],
    repeated: [],
  };
  for (const state of states) {
    judgeAccount(changes, ids, state, verdict, engineUser);
    findRepeatedWrites(state, verdict, engineUser);
  }
  return verdict;
}

/**
 * The object as an event left it, without the time of the write (which always differs) and
 * without its upstream record (a ServiceNow record's sys_mod_count and sys_updated_on differ on
 * every write, even one that repeats the last).
 */
function stateAfter(event: ApiEvent): string {
  const { modified: _modified, raw: _raw, ...rest } = event.metadata as Record<string, unknown>;
  return canonicalJson(rest);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Walks the log in order, keeping each object's last write: an update by the engine that follows
 * an update by the engine of the same object, and leaves the object exactly as that one did, is
 * that write again (a second write with nothing to change would have no other cause).
 */
function findRepeatedWrites(state: AccountState, verdict: Verdict, engineUser: string): void {
  const last = new Map<string, ApiEvent>();
  for (const event of state.events) {
    const id = event.metadata.id;
    const before = last.get(id);
    if (
      event.type === 'update' &&
      event.user_id === engineUser &&
      before?.type === 'update' &&
      before.user_id === engineUser &&
      stateAfter(before) === stateAfter(event)
    ) {
      verdict.repeated.push({
        account: state.account,
        what: `event ${event.id} repeats the engine's update ${before.id} of ${event.metadata.type} ${id}`,
      });
    }
    last.set(id, event);
  }
}

function judgeAccount(
  changes: readonly SoakChange[],
  ids: CreatedIds,
  state: AccountState,
  verdict: Verdict,
  engineUser: string,
): void {
  const { account } = state;
  const mine = changes.filter((change) => change.account === account);
  const incidents = new Map(state.incidents.map((o) => [o.id, o]));
  const problems = new Map(state.problems.map((o) => [o.id, o]));
  const note = (list: Finding[], what: string) => list.push({ account, what });

  // 1. escalate-network-medium: every target once to high, escalation 1; a control never.
  const clusters = new Map<string, string[]>();
  for (const change of mine) {
    if (change.kind !== 'incident') continue;
    const id = ids.get(change.ref);
    const incident = id ? incidents.get(id) : undefined;
    if (!id || !incident) {
      note(verdict.missed, `incident ${change.ref} of the driver is not in the API`);
      continue;
    }
    const raised = priorityChanges(state, id, engineUser);
    if (change.role === 'target') {
      verdict.expected++;
      if (raised === 0 || incident.priority !== 'high') {
        note(
          verdict.missed,
          `incident ${id} (network, medium) is ${incident.priority}, raised ${raised} times`,
        );
      } else if (raised > 1 || (incident.escalation ?? 0) > 1) {
        note(
          verdict.duplicated,
          `incident ${id} was escalated ${raised} times (escalation ${incident.escalation})`,
        );
      }
    } else if (raised > 0 || incident.priority !== 'low') {
      note(
        verdict.unexpected,
        `incident ${id} (${change.category}, low) became ${incident.priority}`,
      );
    }
    if (change.role === 'cluster') {
      clusters.set(change.category, [...(clusters.get(change.category) ?? []), id]);
    }
  }

  // 2. cluster-opens-problem: one problem per cluster of three or more, linked both ways to at
  //    least three of its incidents; none for a smaller cluster; no incident linked elsewhere.
  const driverProblems = new Set(
    mine.flatMap((c) => (c.kind === 'problem' ? [ids.get(c.ref) ?? ''] : [])),
  );
  const engineProblems = state.problems.filter((p) => !driverProblems.has(p.id));
  for (const [category, members] of clusters) {
    const opened = engineProblems.filter((p) => p.category === category);
    if (members.length < 3) {
      if (opened.length > 0) {
        note(
          verdict.unexpected,
          `cluster ${category} of ${members.length} opened ${opened.length} problems`,
        );
      }
      continue;
    }
    verdict.expected++;
    if (opened.length === 0) {
      note(verdict.missed, `cluster ${category} (${members.length} incidents) opened no problem`);
      continue;
    }
    if (opened.length > 1) {
      note(
        verdict.duplicated,
        `cluster ${category} opened ${opened.length} problems: ${opened.map((p) => p.id).join(', ')}`,
      );
    }
    const problem = opened[0] as ApiObject;
    const linked = members.filter((id) => incidents.get(id)?.problem === problem.id);
    const elsewhere = members.filter((id) => {
      const link = refOf(incidents.get(id)?.problem);
      return link !== null && link !== problem.id && opened.length === 1;
    });
    if (linked.length < 3 && opened.length === 1) {
      note(
        verdict.missed,
        `cluster ${category}: only ${linked.length} incidents linked to ${problem.id}`,
      );
    }
    if (elsewhere.length > 0) {
      note(
        verdict.duplicated,
        `cluster ${category}: incidents ${elsewhere.join(', ')} linked to another problem`,
      );
    }
    const back = refOf(problem.incident);
    if (back === null || !members.includes(back)) {
      note(
        verdict.missed,
        `problem ${problem.id} does not link back to an incident of ${category}`,
      );
    }
  }
  for (const problem of engineProblems) {
    if (!clusters.has(problem.category ?? '')) {
      note(verdict.unexpected, `problem ${problem.id} (${problem.category}) matches no cluster`);
    }
  }

  // 3. fix-opens-change: one change per driver problem moved to 104, linked both ways.
  const fixed = new Set(mine.flatMap((c) => (c.kind === 'fix' ? [c.problemRef] : [])));
  for (const change of mine) {
    if (change.kind !== 'problem') continue;
    const id = ids.get(change.ref);
    const problem = id ? problems.get(id) : undefined;
    if (!id || !problem) {
      note(verdict.missed, `problem ${change.ref} of the driver is not in the API`);
      continue;
    }
    const opened = state.changes.filter((c) => c.problem === id);
    if (!fixed.has(change.ref)) {
      if (opened.length > 0)
        note(verdict.unexpected, `problem ${id}, never in fix, has ${opened.length} changes`);
      continue;
    }
    verdict.expected++;
    if (opened.length === 0) {
      note(verdict.missed, `problem ${id} in fix has no change`);
    } else if (opened.length > 1) {
      note(
        verdict.duplicated,
        `problem ${id} in fix has ${opened.length} changes: ${opened.map((c) => c.id).join(', ')}`,
      );
    } else if (problem.change !== opened[0]?.id) {
      note(verdict.missed, `problem ${id} does not link back to its change ${opened[0]?.id}`);
    }
  }
  for (const change of state.changes) {
    if (!change.problem || !problems.has(change.problem)) {
      note(verdict.unexpected, `change ${change.id} belongs to no problem of the account`);
    }
  }
}
