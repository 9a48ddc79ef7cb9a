// Planning: turning the actions of a matched rule into plain data, a list of API and HTTP calls
// each with its idempotency key. Nothing here performs I/O: a plan is what `itsm-rules test`
// prints, what the store keeps before any call is made, and what execute.ts carries out.
import {
  COLLECTION_PATHS,
  isUnifiedType,
  type ObjectType,
  PRIORITIES,
  TYPE_FIELDS,
} from '../itsm/fields.js';
import { describeIssues, WRITE_SCHEMAS } from '../itsm/schemas.js';
import { hasJournals, JOURNAL_COLUMNS } from '../servicenow/mapping.js';
import type { EngineEvent } from './context.js';
import { sameValue, upstreamRecordOf } from './context.js';
import {
  type CompiledExpression,
  compileExpression,
  type EvaluationContext,
  lookupKey,
  OPERATORS,
  operatorOf,
} from './expression.js';
import { article } from './problem.js';
import type { Rule } from './rule.js';
import type { RuleAction } from './rule-schema.js';
import {
  createMarkers,
  isSecretRef,
  maskSecrets,
  SECRET_ROOT,
  type SecretMarkers,
  secretNamesIn,
  withSecretReads,
} from './secret.js';

/** In a call body: the id of the object that call `$result` of the same plan created. */
export interface ResultRef {
  $result: number;
}

interface CallBase {
  /** Position in the plan; later calls can refer to earlier results. */
  index: number;
  ruleId: string;
  /** Index of the action in the rule's `then`. */
  action: number;
  /** Sent as `Idempotency-Key`; also names the call in the effect records. */
  idempotencyKey: string;
  /** One line for people: `create problem linked to incident abc`. */
  summary: string;
}

export interface ApiCall extends CallBase {
  kind: 'api';
  method: 'POST' | 'PATCH';
  /** Relative to the API base: `accounts/1/itsm/incidents/abc`. */
  path: string;
  query?: Record<string, string>;
  objectType: ObjectType;
  /** The object written: an id, a reference to a created object, or null for a create. */
  objectId: string | ResultRef | null;
  body: Record<string, unknown>;
}

export interface HttpCall extends CallBase {
  kind: 'http';
  method: string;
  /** With secrets, `url`, `headers` and `body` hold markers; values replace them at call time. */
  url: string;
  headers: Record<string, string>;
  body: unknown;
  /** The markers of the secrets the call uses, and their names (never their values). */
  secrets?: SecretMarkers;
}

export interface LogCall extends CallBase {
  kind: 'log';
  message: string;
}

export type PlannedCall = ApiCall | HttpCall | LogCall;

export interface PlanNote {
  ruleId: string;
  action: number;
  message: string;
}

export interface Plan {
  /** Identifies the event (or tick and object): `e:1:42`, `s:1:rule:tick:id`. */
  key: string;
  account: number;
  event: EngineEvent;
  object: { type: ObjectType; id: string } | null;
  /**
   * How many hops of engine writes led to this event (0: someone else's change). The writes of
   * this plan are hop `selfHops + 1`, which is how a chain of `on.self` rules is cut at 5.
   */
  selfHops: number;
  /** The rules that matched, in the order they ran. */
  rules: string[];
  calls: PlannedCall[];
  /** Actions that planned nothing, and why (nothing to change, object deleted). */
  notes: PlanNote[];
}

export function isResultRef(value: unknown): value is ResultRef {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as ResultRef).$result === 'number'
  );
}

/**
 * A call's body as one line of JSON for people (`test --event`, `replay`): a reference to the id
 * an earlier call of the plan creates reads as that, since the id does not exist before the run.
 */
export function showBody(body: unknown): string {
  return JSON.stringify(body, (_key, value: unknown) =>
    isResultRef(value) ? `<the id call ${value.$result} creates>` : value,
  );
}

/** Whether the objects of two types can be linked (references both ways). */
export function linkField(from: ObjectType, to: ObjectType): boolean {
  return from !== to && isUnifiedType(from) && isUnifiedType(to) && to in TYPE_FIELDS[from];
}

// ---------------------------------------------------------------------------------------------
// Compiled actions: every expression inside an action, compiled once per rule.

const compiledCache = new WeakMap<object, CompiledExpression>();

function compiled(expression: unknown): CompiledExpression {
  if (expression === null || typeof expression !== 'object') return () => expression;
  let fn = compiledCache.get(expression);
  if (!fn) {
    // A secret reference reads the marker planning puts in the context (secret.ts).
    fn = compileExpression(withSecretReads(expression));
    compiledCache.set(expression, fn);
  }
  return fn;
}

function evaluateFields(
  fields: Record<string, unknown> | undefined,
  context: EvaluationContext,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [field, expression] of Object.entries(fields ?? {})) {
    const value = compiled(expression)(context);
    values[field] = value === undefined ? null : value;
  }
  return values;
}

/** A lookup that found no record, as a plan note names it; null when `expression` is none. */
function emptyLookup(
  expression: unknown,
  value: unknown,
  context: EvaluationContext,
): string | null {
  if (value !== null || operatorOf(expression) !== 'lookup') return null;
  const raw = (expression as { lookup: unknown }).lookup;
  const args = (Array.isArray(raw) ? raw : [raw]).map((arg) => compiled(arg)(context));
  if (lookupKey(args[0], args[1], args[2]) === null) return null;
  return `lookup found no ${String(args[0])} record whose ${String(args[1])} is ${JSON.stringify(args[2])}`;
}

/**
 * The upstream columns an update sets (`update.raw`), as the strings a ServiceNow record holds:
 * nothing (null) clears a column. A column set straight from a lookup that found nothing is not
 * written at all: clearing the column instead would undo an assignment someone made.
 */
function evaluateRawFields(
  fields: Record<string, unknown>,
  context: EvaluationContext,
): { values: Record<string, string> } | { missing: string } {
  const values: Record<string, string> = {};
  for (const [column, expression] of Object.entries(fields)) {
    const value = compiled(expression)(context);
    const missing = emptyLookup(expression, value, context);
    if (missing !== null) return { missing: `${column}: ${missing}` };
    values[column] = upstreamString(value);
  }
  return { values };
}

function upstreamString(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The upstream columns of `values` that differ from the object's upstream record. */
function rawDifferences(
  values: Record<string, string>,
  record: Record<string, unknown> | null,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [column, value] of Object.entries(values)) {
    // A journal column reads back as its entries, never as the value written: always a write.
    const journal = (JOURNAL_COLUMNS as readonly string[]).includes(column);
    const held = record && Object.hasOwn(record, column) ? record[column] : undefined;
    if (journal || upstreamString(held) !== value) out[column] = value;
  }
  return out;
}

/** The field map of an update without its `raw` columns, and those columns (null when none). */
function splitRaw(
  fields: Record<string, unknown>,
  type: ObjectType,
): { unified: Record<string, unknown>; raw: Record<string, unknown> | null } {
  // A generic object's fields are its upstream record already: `raw` there is a column name.
  if (type === 'object' || !Object.hasOwn(fields, 'raw')) return { unified: fields, raw: null };
  const { raw, ...unified } = fields;
  const columns =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw)
      ? (raw as Record<string, unknown>)
      : {};
  return { unified, raw: columns };
}

/** An http body: walked as a template; an object whose only key is an operator is evaluated. */
function evaluateTemplate(node: unknown, context: EvaluationContext): unknown {
  if (Array.isArray(node)) return node.map((item) => evaluateTemplate(item, context));
  if (node === null || typeof node !== 'object') return node;
  const operator = operatorOf(node);
  if ((operator !== null && OPERATORS.has(operator)) || isSecretRef(node)) {
    return compiled(node)(context);
  }
  // Object.fromEntries defines each key as an own property: an assignment `out[key] = ...` with
  // the key "__proto__" would replace the body's prototype instead and drop the key from the call.
  return Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, evaluateTemplate(value, context)]),
  );
}

/** Prepares a rule's action expressions so that planning never compiles. */
export function precompileActions(actions: readonly RuleAction[]): void {
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      const operator = operatorOf(node);
      if ((operator !== null && OPERATORS.has(operator)) || isSecretRef(node)) compiled(node);
      else Object.values(node).forEach(visit);
    }
  };
  actions.forEach(visit);
}

// ---------------------------------------------------------------------------------------------
// Planning

export interface PlanInput {
  rule: Rule;
  context: EvaluationContext;
  objectType: ObjectType;
  /** Objects counted by the rule's correlation (the triggering object included). */
  correlated: readonly { id: string; type: string }[];
  plan: Plan;
}

function collectionPath(account: number, type: ObjectType, id?: string): string {
  const base = `accounts/${account}/itsm/${COLLECTION_PATHS[type].plural}`;
  return id === undefined ? base : `${base}/${encodeURIComponent(id)}`;
}

/** The value a field holds in API output, as it is written (a user object is written as its id). */
function writtenForm(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const user = value as { type?: unknown; id?: unknown };
    if (user.type === 'user' && typeof user.id === 'string') return user.id;
  }
  return value;
}

/** The fields of `values` that differ from the object's current values. */
function differences(
  values: Record<string, unknown>,
  object: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(values)) {
    if (!sameValue(writtenForm(object[field]), value)) out[field] = value;
  }
  return out;
}

/** The fields a write to the object sets: a generic object's live in its upstream record. */
function writableFieldsOf(
  object: Record<string, unknown>,
  type: ObjectType,
): Record<string, unknown> {
  if (type !== 'object') return object;
  const raw = object.raw as { object?: Record<string, unknown> } | undefined;
  return raw?.object ?? {};
}

/**
 * Whether the object (read with its upstream record) already holds everything `body` writes:
 * how a resumed plan tells an update made before a crash from one never made. A journal column
 * counts as written when its newest entry is the text (an entry is never overwritten).
 */
export function holdsWrite(
  body: Record<string, unknown>,
  current: Record<string, unknown>,
  type: ObjectType,
): boolean {
  const { raw, ...unified } = body;
  if (type === 'object' || raw === undefined) {
    return Object.keys(differences(body, writableFieldsOf(current, type))).length === 0;
  }
  if (Object.keys(differences(unified, current)).length > 0) return false;
  const columns = (raw as { object?: Record<string, unknown> } | null)?.object ?? {};
  const record = upstreamRecordOf(current) ?? {};
  return Object.entries(columns).every(([column, value]) => {
    const held = Object.hasOwn(record, column) ? upstreamString(record[column]) : '';
    if (!(JOURNAL_COLUMNS as readonly string[]).includes(column)) {
      return held === upstreamString(value);
    }
    // `2024-05-01 09:30:00 - itsm-rules (Work notes)\n<text>\n\n<older entries>`
    const newest = held.slice(held.indexOf('\n') + 1);
    return held !== '' && newest.startsWith(`${upstreamString(value)}\n\n`);
  });
}

function rawTypeOf(object: Record<string, unknown>): string | null {
  const raw = object.raw as { type?: unknown } | undefined;
  return typeof raw?.type === 'string' ? raw.type : null;
}

/**
 * An action whose values, computed from the event, are not what the API accepts (a priority read
 * from the description, `"urgent"`): the rule fails for that event, as when one of its expressions
 * throws. Its other actions are not planned either, and the run is recorded as failed; a retry
 * would compute the same value, so it is not a reason to park the object.
 */
export class InvalidActionError extends Error {
  readonly code = 'RULE_ACTION_INVALID';
  constructor(
    /** The action's index in the rule's `then`. */
    readonly action: number,
    message: string,
  ) {
    super(`/then/${action}: ${message}`);
    this.name = 'InvalidActionError';
  }
}

/** Checks a write body against the API's write schema; returns the problem, or null. */
function invalidBody(type: ObjectType, body: Record<string, unknown>): string | null {
  if (!isUnifiedType(type)) return null;
  const result = WRITE_SCHEMAS[type].safeParse(body);
  return result.success ? null : describeIssues(result.error).join('; ');
}

/**
 * Appends the calls of every action of a matched rule to the plan. Throws InvalidActionError
 * (or an ExpressionError) when an action cannot be planned; the caller plans into a draft, so
 * that none of the rule's calls are kept then.
 */
export function planRule(input: PlanInput): void {
  for (const [index, action] of input.rule.actions.entries()) {
    planAction(input, action, index);
  }
}

function planAction(input: PlanInput, action: RuleAction, index: number): void {
  const { rule, context, plan, objectType } = input;
  const account = plan.account;
  const object = context.object;
  const deleted = plan.event.type === 'delete';
  const key = (suffix?: string) =>
    `${plan.key}:${rule.id}:${index}${suffix === undefined ? '' : `:${suffix}`}`;
  const note = (message: string) => plan.notes.push({ ruleId: rule.id, action: index, message });
  const push = <T extends PlannedCall>(call: Omit<T, 'index' | 'ruleId' | 'action'>) => {
    const full = { ...call, index: plan.calls.length, ruleId: rule.id, action: index } as T;
    plan.calls.push(full);
    return full;
  };
  const objectId = typeof object?.id === 'string' ? object.id : null;

  if ('update' in action || 'escalate' in action) {
    const kind = 'update' in action ? 'update' : 'escalate';
    if (deleted || !object || objectId === null) {
      note(`${kind}: the ${objectType} was deleted, so there is nothing to write`);
      return;
    }
    let body: Record<string, unknown>;
    if ('update' in action) {
      const { unified, raw } = splitRaw(action.update, objectType);
      const values = evaluateFields(unified, context);
      body = differences(values, writableFieldsOf(object, objectType));
      if (raw !== null) {
        const upstream = evaluateRawFields(raw, context);
        if ('missing' in upstream) {
          note(`update: not written, raw.${upstream.missing}`);
          return;
        }
        const columns = rawDifferences(upstream.values, upstreamRecordOf(object));
        if (Object.keys(columns).length > 0) body.raw = { object: columns };
      }
      if (Object.keys(body).length === 0) {
        note('update: every field already has the value the rule sets');
        return;
      }
    } else {
      const { levels = 1, assignee, fields } = action.escalate;
      const current = typeof object.priority === 'string' ? object.priority : null;
      const rank = Math.max(0, PRIORITIES.indexOf(current as (typeof PRIORITIES)[number]));
      const priority = PRIORITIES[Math.min(PRIORITIES.length - 1, rank + levels)];
      const values: Record<string, unknown> = { priority, ...evaluateFields(fields, context) };
      if (assignee !== undefined) {
        const value = compiled(assignee)(context);
        values.assignee = value === undefined ? null : value;
      }
      body = differences(values, object);
      if (Object.keys(body).length === 0) {
        note(
          current === 'critical'
            ? 'escalate: the priority is already critical and nothing else would change'
            : 'escalate: nothing would change',
        );
        return;
      }
      const escalation = typeof object.escalation === 'number' ? object.escalation : 0;
      body.escalation = escalation + 1;
    }
    const invalid = invalidBody(objectType, body);
    if (invalid) {
      throw new InvalidActionError(
        index,
        `${kind}: not written, the values are invalid: ${invalid}`,
      );
    }
    const rawType = objectType === 'object' ? rawTypeOf(object) : null;
    push<ApiCall>({
      kind: 'api',
      method: 'PATCH',
      path: collectionPath(account, objectType, objectId),
      ...(rawType ? { query: { raw_type: rawType } } : {}),
      objectType,
      objectId,
      body,
      idempotencyKey: key(),
      summary: `${kind} ${objectType} ${objectId}: ${describeBody(body)}`,
    });
    return;
  }

  if ('note' in action) {
    const column = action.note.visible === true ? 'comments' : 'work_notes';
    if (deleted || !object || objectId === null) {
      note(`note: the ${objectType} was deleted, so there is nothing to write on`);
      return;
    }
    if (!isUnifiedType(objectType) || !hasJournals(objectType)) {
      note(
        `note: ${article(objectType)} ${objectType} has no ${column} journal (only incident, problem and change)`,
      );
      return;
    }
    const value = compiled(action.note.text)(context);
    const text = upstreamString(value);
    if (text.trim() === '') {
      note(`note: the text is empty (${JSON.stringify(value ?? null)}), so no entry is written`);
      return;
    }
    push<ApiCall>({
      kind: 'api',
      method: 'PATCH',
      path: collectionPath(account, objectType, objectId),
      objectType,
      objectId,
      // The journal column appends this as a new entry (ServiceNow's work_notes and comments).
      body: { raw: { object: { [column]: text } } },
      idempotencyKey: key(),
      summary: `note on ${objectType} ${objectId} (${column}): ${describeText(text)}`,
    });
    return;
  }

  if ('create' in action) {
    const { type, fields, link } = action.create;
    const body = evaluateFields(fields, context);
    for (const [field, value] of Object.entries(body)) if (value === null) delete body[field];
    const linking = link === true && linkField(objectType, type);
    if (link && linking && (deleted || objectId === null)) {
      note(`create: the ${objectType} was deleted, so the new ${type} is not linked to it`);
    }
    const linkSource = linking && !deleted && objectId !== null;
    if (linkSource) body[objectType] = objectId;
    const invalid = invalidBody(type, body);
    if (invalid) {
      throw new InvalidActionError(
        index,
        `create: no ${type} created, the values are invalid: ${invalid}`,
      );
    }
    const created = push<ApiCall>({
      kind: 'api',
      method: 'POST',
      path: collectionPath(account, type),
      objectType: type,
      objectId: null,
      body,
      idempotencyKey: key('create'),
      summary: `create ${type}${linkSource ? ` linked to ${objectType} ${objectId}` : ''}: ${describeBody(body)}`,
    });
    if (!linking) return;
    const targets: { id: string; type: string }[] = [];
    if (linkSource && objectId !== null) targets.push({ id: objectId, type: objectType });
    for (const member of input.correlated) {
      if (member.id !== objectId && !targets.some((t) => t.id === member.id)) targets.push(member);
    }
    for (const target of targets) {
      const targetType = target.type as ObjectType;
      if (!linkField(targetType, type)) continue;
      push<ApiCall>({
        kind: 'api',
        method: 'PATCH',
        path: collectionPath(account, targetType, target.id),
        objectType: targetType,
        objectId: target.id,
        body: { [type]: { $result: created.index } satisfies ResultRef },
        idempotencyKey: key(`link:${target.id}`),
        summary: `link ${targetType} ${target.id} to the new ${type} (call ${created.index})`,
      });
    }
    return;
  }

  if ('object' in action) {
    const { raw_type: rawType, fields, id } = action.object;
    const body = evaluateFields(fields, context);
    const targetId = id === undefined ? null : compiled(id)(context);
    if (id !== undefined && (typeof targetId !== 'string' || targetId === '')) {
      note(`object: the id expression gave ${JSON.stringify(targetId)}, so nothing is written`);
      return;
    }
    push<ApiCall>({
      kind: 'api',
      method: targetId === null ? 'POST' : 'PATCH',
      path: collectionPath(account, 'object', (targetId as string | null) ?? undefined),
      query: { raw_type: rawType },
      objectType: 'object',
      objectId: targetId as string | null,
      body,
      idempotencyKey: key(targetId === null ? 'create' : undefined),
      summary: `${targetId === null ? 'create' : `update ${targetId} of`} ${rawType}: ${describeBody(body)}`,
    });
    return;
  }

  if ('http' in action) {
    // Each secret the action uses is planned as a fresh marker: the plan, and everything made
    // from it, holds the marker and the name, and the value is put in only when the call is made.
    const names = secretNamesIn(action.http);
    const { markers, byName } = createMarkers(names);
    const secrets = names.length > 0 ? markers : undefined;
    const httpContext = names.length > 0 ? { ...context, [SECRET_ROOT]: byName } : context;
    const url = compiled(action.http.url)(httpContext);
    if (typeof url !== 'string' || url === '') {
      note(
        maskSecrets(
          `http: the url expression gave ${JSON.stringify(url)}, so nothing is called`,
          secrets,
        ),
      );
      return;
    }
    const headers: Record<string, string> = Object.fromEntries(
      Object.entries(action.http.headers ?? {}).flatMap(([name, value]) => {
        const evaluated = compiled(value)(httpContext);
        return evaluated === null || evaluated === undefined ? [] : [[name, String(evaluated)]];
      }),
    );
    const method = action.http.method ?? 'POST';
    push<HttpCall>({
      kind: 'http',
      method,
      url,
      headers,
      body: action.http.body === undefined ? null : evaluateTemplate(action.http.body, httpContext),
      ...(secrets && { secrets }),
      idempotencyKey: key(),
      summary: maskSecrets(`${method} ${describeUrl(url)}`, secrets),
    });
    return;
  }

  if ('log' in action) {
    const message = compiled(action.log.message)(context);
    push<LogCall>({
      kind: 'log',
      message: typeof message === 'string' ? message : JSON.stringify(message ?? null),
      idempotencyKey: key(),
      summary: 'log',
    });
  }
}

/**
 * A URL as run records and logs show it: without the user and password of `https://u:p@host/`
 * and without the query, the two places where a hook's secret token usually travels.
 */
function describeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@').replace(/\?.*$/, '?...');
  }
  if (parsed.username || parsed.password) {
    parsed.username = '***';
    parsed.password = '';
  }
  const query = parsed.search ? '?...' : '';
  parsed.search = '';
  return `${parsed.toString()}${query}`;
}

function describeText(text: string): string {
  const quoted = JSON.stringify(text);
  return quoted.length > 160 ? `${quoted.slice(0, 157)}...` : quoted;
}

function describeBody(body: Record<string, unknown>): string {
  const text = JSON.stringify(body);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}
