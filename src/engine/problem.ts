// Load problems: what the loader and the rule checks report. A problem is a value (every one is
// collected before anything is reported); `RuleLoadError` carries the whole list when a caller
// needs to refuse a rule set.

export type ProblemCode =
  | 'RULE_SYNTAX'
  | 'RULE_UNKNOWN_KEY'
  | 'RULE_INVALID_VALUE'
  | 'RULE_UNKNOWN_ACTION'
  | 'RULE_UNKNOWN_OPERATOR'
  | 'RULE_INVALID_REGEX'
  | 'RULE_UNKNOWN_TYPE'
  | 'RULE_UNKNOWN_FIELD'
  | 'RULE_READ_ONLY_FIELD'
  | 'RULE_OUT_OF_RANGE'
  | 'RULE_TYPE_MISMATCH'
  | 'RULE_INVALID_SCHEDULE'
  | 'RULE_INVALID_ACTION'
  | 'RULE_DUPLICATE_ID'
  | 'RULE_LOOP'
  | 'RULE_DUPLICATE_CREATE'
  | 'RULE_NO_FILES'
  | 'SUITE_INVALID';

export interface RuleProblem {
  /** The file as given to the loader (`rules/incident/page.yaml`). */
  file: string;
  /** JSON pointer inside the file (`/then/0/escalate/levels`); `` for the whole file. */
  pointer: string;
  /** 1-based line of the pointer in the file, when known. */
  line?: number;
  code: ProblemCode;
  message: string;
}

/** `rules/incident/page.yaml:12 /then/0/escalate/levels: expected ...` */
export function formatProblem(problem: RuleProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return `${where} ${problem.pointer || '/'}: ${problem.message}`;
}

/** A warning as `check` prints it: `warning: ` and the problem's own line. */
export function formatWarning(warning: RuleProblem): string {
  return `warning: ${formatProblem(warning)}`;
}

export function toPointer(path: readonly PropertyKey[]): string {
  return path
    .map((segment) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`)
    .join('');
}

export class RuleLoadError extends Error {
  readonly code = 'RULE_LOAD_FAILED';
  constructor(readonly problems: readonly RuleProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in the rules:\n${problems
        .map((problem) => `  ${formatProblem(problem)}`)
        .join('\n')}`,
    );
    this.name = 'RuleLoadError';
  }
}

/** The closest of `candidates` to `word`, when it is close enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== null && bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

/** "a" or "an" before `word` (an incident, a change), for problem messages. */
export function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  const suggestion = closest(word, candidates);
  return suggestion === null ? '' : `; did you mean "${suggestion}"?`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** A value as a message shows it: `"two"`, `5`, `null`, `an object`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (value !== null && typeof value === 'object') return 'an object';
  return JSON.stringify(value);
}

/** What a zod `invalid_type` issue expected, as a rule author reads it (`int` -> "a whole number"). */
export const KIND_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

/** The value at `path` inside a parsed file, or undefined where the path leaves it. */
/** A value of the wrong type: `field is required: expected X` when missing, else what it is. */
export function wrongTypeMessage(field: string, expected: string, input: unknown): string {
  return input === undefined
    ? `${field} is required: expected ${expected}`
    : `expected ${expected}, got ${describeValue(input)}`;
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}
