// What a step of a rule test suite did, and how it compares with what the suite expected: the
// verdict of every rule looked at across the step's runs (the change's own event and the events
// of the engine's writes it caused), the calls planned, correlation counts and the named objects
// afterwards. The comparison gives one line per difference, saying what was expected and what
// happened, so a failed case reads as a diff.
import type { RuleVerdict } from '../storage/pipeline-port.js';
import type { ExpectedCall, SuiteExpect } from './rule-suite.js';

export interface ActualRule {
  verdict: RuleVerdict | 'not_looked_at';
  /** Why it did not match (absent when it matched). */
  reason: string | null;
  /** For a false condition: the clauses that were false, and the values they read. */
  details: string[];
  /** The count a correlating rule saw (its last one in the step). */
  correlation: number | null;
}

export interface ActualCall {
  rule: string;
  kind: 'api' | 'http' | 'log';
  /** POST or PATCH for the API; the http method; null for a log. */
  method: string | null;
  type: string | null;
  /** The id of the object written (null for a create, an http call or a log). */
  objectId: string | null;
  /** The API path or the http URL. */
  target: string | null;
  body: unknown;
  message: string | null;
}

export interface StepResult {
  rules: Map<string, ActualRule>;
  calls: ActualCall[];
  /** The named objects after the step (null: gone). */
  objects: Record<string, Record<string, unknown> | null>;
}

/** Replaces "${name}" in strings (at any depth) with the id of the object named so. */
export function resolveNames(value: unknown, ids: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_-]*)\}/g,
      (text, name: string) => ids.get(name) ?? text,
    );
  }
  if (Array.isArray(value)) return value.map((item) => resolveNames(item, ids));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, resolveNames(item, ids)]),
    );
  }
  return value;
}

/** Every difference between what the step was expected to do and what it did; [] when none. */
export function compareStep(
  expect: SuiteExpect,
  actual: StepResult,
  ids: ReadonlyMap<string, string>,
): string[] {
  const lines: string[] = [];
  if (expect.matched !== undefined) {
    const got = [...actual.rules]
      .filter(([, rule]) => rule.verdict === 'matched')
      .map(([id]) => id);
    const missing = expect.matched.filter((id) => !got.includes(id));
    const extra = got.filter((id) => !expect.matched?.includes(id));
    if (missing.length > 0 || extra.length > 0) {
      lines.push(`matched: expected [${expect.matched.join(', ')}], got [${got.join(', ')}]`);
      for (const id of missing) lines.push(...whyNot(id, actual.rules.get(id)));
    }
  }
  for (const [id, text] of Object.entries(expect.not_matched ?? {})) {
    const rule = actual.rules.get(id);
    if (rule?.verdict === 'matched') {
      lines.push(`not_matched ${id}: expected it not to match, but it matched`);
      continue;
    }
    if (text === null) continue;
    const reason = [rule?.reason ?? NOT_LOOKED_AT, ...(rule?.details ?? [])];
    if (!reason.some((line) => line.includes(text))) {
      lines.push(`not_matched ${id}: expected the reason to mention ${JSON.stringify(text)}, got:`);
      for (const line of reason) lines.push(`    ${line}`);
    }
  }
  for (const [id, count] of Object.entries(expect.correlation ?? {})) {
    const got = actual.rules.get(id)?.correlation ?? null;
    if (got !== count) {
      lines.push(
        `correlation ${id}: expected a count of ${count}, got ${got === null ? 'none (the rule counted nothing in this step)' : got}`,
      );
    }
  }
  if (expect.calls !== undefined) lines.push(...compareCalls(expect.calls, actual.calls, ids));
  for (const [name, fields] of Object.entries(expect.objects ?? {})) {
    const object = actual.objects[name];
    if (object === null || object === undefined) {
      lines.push(`objects ${name}: expected it to exist, but it is gone`);
      continue;
    }
    for (const line of subsetDiff(resolveNames(fields, ids), object, '')) {
      lines.push(`objects ${name}${line}`);
    }
  }
  return lines;
}

const NOT_LOOKED_AT = 'not looked at: no event of this step triggers it';

function whyNot(id: string, rule: ActualRule | undefined): string[] {
  if (!rule) return [`    ${id}: ${NOT_LOOKED_AT}`];
  if (rule.verdict === 'matched') return [];
  return [
    `    ${id}: ${rule.verdict}${rule.reason ? `: ${rule.reason}` : ''}`,
    ...rule.details.map((line) => `        ${line}`),
  ];
}

function compareCalls(
  expected: readonly ExpectedCall[],
  actual: readonly ActualCall[],
  ids: ReadonlyMap<string, string>,
): string[] {
  const lines: string[] = [];
  const count = Math.max(expected.length, actual.length);
  for (let index = 0; index < count; index++) {
    const want = expected[index];
    const got = actual[index];
    if (want === undefined && got !== undefined) {
      lines.push(`calls[${index}]: not expected, got ${describeCall(got)}`);
      continue;
    }
    if (want !== undefined && got === undefined) {
      lines.push(`calls[${index}]: expected ${JSON.stringify(want)}, got no call`);
      continue;
    }
    if (want === undefined || got === undefined) continue;
    const diffs = callDiff(want, got, ids);
    if (diffs.length > 0) {
      lines.push(`calls[${index}]: ${describeCall(got)}`);
      for (const diff of diffs) lines.push(`    ${diff}`);
    }
  }
  return lines;
}

function callDiff(want: ExpectedCall, got: ActualCall, ids: ReadonlyMap<string, string>): string[] {
  const diffs: string[] = [];
  const field = (name: string, expected: unknown, actual: unknown) => {
    if (expected !== undefined && expected !== actual) {
      diffs.push(
        `${name}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual ?? null)}`,
      );
    }
  };
  field('rule', want.rule, got.rule);
  if (want.method !== undefined) field('method', want.method.toUpperCase(), got.method);
  field('type', want.type, got.type);
  if (want.object !== undefined) field('object', ids.get(want.object) ?? want.object, got.objectId);
  if (want.url !== undefined) {
    field('url', resolveNames(want.url, ids), got.kind === 'http' ? got.target : null);
  }
  if (want.log !== undefined) {
    if (got.kind !== 'log' || !(got.message ?? '').includes(want.log)) {
      diffs.push(
        `log: expected a log line containing ${JSON.stringify(want.log)}, got ${JSON.stringify(got.message)}`,
      );
    }
  }
  if (want.body !== undefined) {
    for (const line of subsetDiff(resolveNames(want.body, ids), got.body, ''))
      diffs.push(`body${line}`);
  }
  return diffs;
}

function describeCall(call: ActualCall): string {
  if (call.kind === 'log') return `log ${JSON.stringify(call.message)} [${call.rule}]`;
  return `${call.method} ${call.target} ${JSON.stringify(call.body)} [${call.rule}]`;
}

/**
 * Where `actual` differs from `expected`, read as a subset: a mapping needs only the keys it
 * names, a list needs the same length and each item to match, anything else is compared as is
 * (numbers and strings that read the same are equal: an API gives `2` where a file says `"2"`
 * no more often than the other way round, and neither is what a test means to catch).
 */
export function subsetDiff(expected: unknown, actual: unknown, path: string): string[] {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      return [
        `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual ?? null)}`,
      ];
    }
    return Object.entries(expected).flatMap(([key, value]) =>
      subsetDiff(value, (actual as Record<string, unknown>)[key], `${path}.${key}`),
    );
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [
        `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual ?? null)}`,
      ];
    }
    return expected.flatMap((value, index) =>
      subsetDiff(value, actual[index], `${path}[${index}]`),
    );
  }
  const same =
    expected === actual ||
    (expected === null && actual === undefined) ||
    ((typeof expected === 'number' || typeof expected === 'string') &&
      (typeof actual === 'number' || typeof actual === 'string') &&
      String(expected) === String(actual));
  return same
    ? []
    : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual ?? null)}`];
}
