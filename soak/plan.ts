// The soak's list of changes, drawn from a seeded PRNG so that a seed gives the same inputs on
// every run: incidents that the rules must escalate (network, medium), incidents they must leave
// alone (network, low), incidents of clusters (three or more in a cluster open one problem),
// problems the driver opens and some it later moves to "Fix in Progress" (one change each), and
// plain edits of incidents that no rule acts on (but every rule sees).
import { seededRandom } from '../src/server/faults.js';

export type IncidentRole = 'target' | 'control' | 'cluster';

export type SoakChange =
  | {
      kind: 'incident';
      account: number;
      /** The driver's name of the object, unique in the run; later changes refer to it. */
      ref: string;
      role: IncidentRole;
      category: string;
      priority: 'low' | 'medium';
    }
  | { kind: 'problem'; account: number; ref: string }
  | { kind: 'fix'; account: number; problemRef: string }
  | { kind: 'touch'; account: number; incidentRef: string; text: string };

export interface PlanOptions {
  changes: number;
  accounts: number;
  seed: number;
}

/** Accounts of a soak run: 101, 102, ... (far from the 1 and 2 that tests use). */
export const accountIds = (count: number): number[] =>
  Array.from({ length: count }, (_, i) => 101 + i);

/** Share of each kind of change; a fix or a touch with nothing to act on becomes an incident. */
const WEIGHTS: [SoakChange['kind'] | IncidentRole, number][] = [
  ['target', 0.24],
  ['control', 0.1],
  ['cluster', 0.24],
  ['problem', 0.1],
  ['fix', 0.1],
  ['touch', 0.22],
];

export function planChanges(options: PlanOptions): SoakChange[] {
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const accounts = accountIds(options.accounts);
  // About 3.5 incidents per cluster on average, so that some clusters stay below three.
  const clusterShare = WEIGHTS.find(([kind]) => kind === 'cluster')?.[1] ?? 0;
  const clustersPerAccount = Math.max(
    2,
    Math.round((options.changes * clusterShare) / options.accounts / 3.5),
  );
  const incidents = new Map<number, string[]>();
  const openProblems = new Map<number, string[]>();
  const changes: SoakChange[] = [];

  for (let i = 0; i < options.changes; i++) {
    const account = pick(accounts);
    let draw = random();
    let kind = WEIGHTS[WEIGHTS.length - 1]?.[0] ?? 'touch';
    for (const [name, weight] of WEIGHTS) {
      if (draw < weight) {
        kind = name;
        break;
      }
      draw -= weight;
    }
    const known = incidents.get(account) ?? [];
    const unfixed = openProblems.get(account) ?? [];
    if (kind === 'fix' && unfixed.length === 0) kind = 'problem';
    if (kind === 'touch' && known.length === 0) kind = 'target';

    if (kind === 'problem') {
      const ref = `p${i}`;
      changes.push({ kind: 'problem', account, ref });
      openProblems.set(account, [...unfixed, ref]);
    } else if (kind === 'fix') {
      const index = Math.floor(random() * unfixed.length);
      const problemRef = unfixed[index] as string;
      openProblems.set(
        account,
        unfixed.filter((_, j) => j !== index),
      );
      changes.push({ kind: 'fix', account, problemRef });
    } else if (kind === 'touch') {
      changes.push({ kind: 'touch', account, incidentRef: pick(known), text: `edit ${i}` });
    } else {
      const role = kind as IncidentRole;
      const ref = `i${i}`;
      const category =
        role === 'cluster' ? `cluster-${1 + Math.floor(random() * clustersPerAccount)}` : 'network';
      changes.push({
        kind: 'incident',
        account,
        ref,
        role,
        category,
        priority: role === 'target' ? 'medium' : 'low',
      });
      incidents.set(account, [...known, ref]);
    }
  }
  return changes;
}
