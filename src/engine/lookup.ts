// The `lookup` operator's I/O: finding the sys_id of an upstream record by one of its columns
// (a group by name, a CI by name), so that a rule can say "assign to Network Operations" without
// a sys_id. Conditions are evaluated synchronously, so lookups are resolved before a rule's
// actions are planned: every `lookup` in the actions is found, its arguments evaluated, and its
// answer read through the ITSM API into the context (LOOKUPS), where the operator reads it. The
// plan then holds the sys_id itself, so a re-run after a crash writes the same value.
import type { ItsmClient } from '../itsm/client.js';
import { isTableName } from '../servicenow/tables.js';
import {
  compileExpression,
  type EvaluationContext,
  LOOKUPS,
  lookupKey,
  operatorOf,
} from './expression.js';
import type { RuleAction } from './rule-schema.js';

/** Reads the sys_id of the record of `table` whose `field` is `value`, or null for none. */
export type LookupResolver = (
  account: number,
  table: string,
  field: string,
  value: string,
) => Promise<string | null>;

/** How many answers one resolver keeps (a drain's worth); the oldest go first. */
export const LOOKUP_CACHE_SIZE = 1_000;
/** Records per page when a table is read for a lookup (the API's largest page). */
const LOOKUP_PAGE_SIZE = 1_000;

/**
 * A resolver over the ITSM API's generic-object store (`itsm/objects?raw_type=TABLE`), where
 * groups, users and CIs live. The API cannot filter a list by a column, so the table is read
 * page by page until a record matches (exact, case-sensitive equality of the column's value).
 * Answers, "none" included, are cached by (account, table, field, value): one resolver is made
 * per drain, so a burst of events naming the same group reads the table once, and a group
 * created later is found by the next drain.
 */
export function createLookupResolver(
  client: Pick<ItsmClient, 'list'>,
  options: { maxEntries?: number } = {},
): LookupResolver {
  const maxEntries = options.maxEntries ?? LOOKUP_CACHE_SIZE;
  const cache = new Map<string, Promise<string | null>>();
  return (account, table, field, value) => {
    const key = JSON.stringify([account, table, field, value]);
    const cached = cache.get(key);
    if (cached) return cached;
    const answer = findSysId(client, account, table, field, value);
    cache.set(key, answer);
    // A failed read (the API unavailable) is not an answer: the next try reads again.
    answer.catch(() => cache.delete(key));
    if (cache.size > maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    return answer;
  };
}

async function findSysId(
  client: Pick<ItsmClient, 'list'>,
  account: number,
  table: string,
  field: string,
  value: string,
): Promise<string | null> {
  // Not a table name at all (a typo that check would name): nothing to read, nothing found.
  if (!isTableName(table)) return null;
  for await (const object of client.list(account, 'object', {
    rawType: table,
    pageSize: LOOKUP_PAGE_SIZE,
  })) {
    const record = object.raw.object as Record<string, unknown>;
    const held = Object.hasOwn(record, field) ? record[field] : undefined;
    if (held !== undefined && held !== null && String(held) === value) {
      return typeof record.sys_id === 'string' ? record.sys_id : object.raw.id;
    }
  }
  return null;
}

/**
 * Resolves every `lookup` in the actions against the context, and leaves the answers in
 * `context[LOOKUPS]`. Lookups inside a lookup's arguments are resolved first. Without a resolver
 * (a dry run with no API) nothing is resolved, and each lookup fails its rule when evaluated.
 */
export async function resolveLookups(
  actions: readonly RuleAction[],
  context: EvaluationContext,
  account: number,
  resolve: LookupResolver | undefined,
): Promise<void> {
  if (!resolve) return;
  const answers = context[LOOKUPS] ?? new Map<string, string | null>();
  context[LOOKUPS] = answers;
  const visit = async (node: unknown): Promise<void> => {
    if (Array.isArray(node)) {
      for (const item of node) await visit(item);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    if (operatorOf(node) !== 'lookup') {
      for (const value of Object.values(node)) await visit(value);
      return;
    }
    const raw = (node as { lookup: unknown }).lookup;
    const args = Array.isArray(raw) ? raw : [raw];
    for (const arg of args) await visit(arg);
    const [table, field, value] = args.map((arg) => evaluateArgument(arg, context));
    const key = lookupKey(table, field, value);
    if (key === null || answers.has(key)) return;
    answers.set(key, await resolve(account, String(table), String(field), String(value)));
  };
  for (const action of actions) await visit(action);
}

/** One argument's value; an argument that fails (or reads map items) leaves the lookup unresolved. */
function evaluateArgument(arg: unknown, context: EvaluationContext): unknown {
  try {
    return compileExpression(arg)(context);
  } catch {
    return undefined;
  }
}
