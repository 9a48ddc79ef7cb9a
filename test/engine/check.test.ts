// Loading and checking rule files (src/engine/load.ts, src/engine/check.ts): every kind of mistake
// `check` finds (docs/rules.md, "Checking rules") has one file in test/fixtures/broken-rules/, and
// each must come back as exactly one problem with its code, JSON pointer, line and a sentence naming
// the offending thing. Then the folder as a whole, the example rules, suggestions, JSON files,
// YAML 1.2 details, defaults, run order, problem formatting and the committed JSON Schema.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRules, type RuleSource } from '../../src/engine/load.js';
import {
  formatProblem,
  type ProblemCode,
  RuleLoadError,
  type RuleProblem,
} from '../../src/engine/problem.js';
import { ruleJsonSchema } from '../../src/engine/rule-schema.js';
import { readRuleSources } from '../../src/runtime/rule-files.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BROKEN = 'test/fixtures/broken-rules';

/** A broken fixture as the loader gets it: path relative to the repository, text from disk. */
function broken(name: string): RuleSource {
  return { path: `${BROKEN}/${name}`, text: readFileSync(join(ROOT, BROKEN, name), 'utf8') };
}

interface BrokenCase {
  mistake: string;
  /** The files that make the mistake together (two for duplicate ids and loops). */
  files: string[];
  /** The one problem they produce: in `files[0]` unless `in` names another. */
  in?: string;
  code: ProblemCode;
  pointer: string;
  line: number;
  message: RegExp;
}

const CASES: BrokenCase[] = [
  {
    mistake: 'a YAML syntax error',
    files: ['yaml-syntax-error.yaml'],
    code: 'RULE_SYNTAX',
    pointer: '',
    line: 6,
    message: /^not valid YAML: Tabs are not allowed as indentation$/,
  },
  {
    mistake: 'a YAML key one column off (indentation)',
    files: ['indent-bad-column.yaml'],
    code: 'RULE_SYNTAX',
    pointer: '',
    line: 7,
    message:
      /^not valid YAML: All mapping items must start at the same column \(check the indentation of line 7: /,
  },
  {
    mistake: 'a list item left of the items before it (reported once, not three ways)',
    files: ['indent-list-item.yaml'],
    code: 'RULE_SYNTAX',
    pointer: '',
    line: 7,
    message:
      /^not valid YAML: A block sequence may not be used as an implicit map key \(check the indentation of line 7: /,
  },
  {
    mistake: 'the operator of when at the margin',
    files: ['indent-when-operator.yaml'],
    code: 'RULE_UNKNOWN_KEY',
    pointer: '/==',
    line: 5,
    message:
      /^"==" is beside "when" instead of under it \(check the indentation of line 5: indent "==" further right than "when" \(line 4\)\)$/,
  },
  {
    mistake: 'an action key indented as far as its action',
    files: ['indent-action-key.yaml'],
    code: 'RULE_UNKNOWN_ACTION',
    pointer: '/then/0/levels',
    line: 6,
    message:
      /^"levels" is beside "escalate" instead of under it \(check the indentation of line 6: indent "levels" further right than "escalate" \(line 5\)\)$/,
  },
  {
    mistake: 'the fields of create indented as far as create',
    files: ['indent-create-fields.yaml'],
    code: 'RULE_UNKNOWN_ACTION',
    pointer: '/then/0/fields',
    line: 7,
    message:
      /^"fields" is beside "create" instead of under it \(check the indentation of line 7: indent "fields" further right than "create" \(line 5\)\)$/,
  },
  {
    mistake: 'a trigger key at the margin instead of under on',
    files: ['indent-trigger-key.yaml'],
    code: 'RULE_UNKNOWN_KEY',
    pointer: '/changed',
    line: 5,
    message:
      /^"changed" is beside "on" instead of under it \(check the indentation of line 5: indent "changed" further right than "on" \(line 2\)\)$/,
  },
  {
    mistake: 'a top-level key indented under on',
    files: ['indent-top-level-key.yaml'],
    code: 'RULE_UNKNOWN_KEY',
    pointer: '/on/when',
    line: 4,
    message:
      /^"when" is under "on" instead of beside it \(check the indentation of line 4: "when" starts in the same column as "on"\)$/,
  },
  {
    mistake: 'an unknown YAML tag',
    files: ['yaml-unknown-tag.yaml'],
    code: 'RULE_SYNTAX',
    pointer: '',
    line: 4,
    message:
      /^unknown YAML tag !int: rule files are plain YAML \(the 1\.2 core schema\) without custom tags; remove the tag$/,
  },
  {
    mistake: 'a JSON syntax error',
    files: ['json-syntax-error.json'],
    code: 'RULE_SYNTAX',
    pointer: '',
    line: 5,
    message: /^not valid JSON: .*position 182/,
  },
  {
    mistake: 'an unknown key at the top level',
    files: ['unknown-top-level-key.yaml'],
    code: 'RULE_UNKNOWN_KEY',
    pointer: '/enable',
    line: 2,
    message: /^unknown key "enable"; did you mean "enabled"\?/,
  },
  {
    mistake: 'an unknown key in on',
    files: ['unknown-trigger-key.yaml'],
    code: 'RULE_UNKNOWN_KEY',
    pointer: '/on/event',
    line: 4,
    message:
      /^unknown key "event"; did you mean "events"\? \(expected type, events, changed, self, schedule\)$/,
  },
  {
    mistake: 'an unknown key in an action',
    files: ['unknown-action-key.yaml'],
    code: 'RULE_UNKNOWN_KEY',
    pointer: '/then/0/escalate/level',
    line: 6,
    message: /^unknown key "level"; did you mean "levels"\? \(expected levels, assignee, fields\)$/,
  },
  {
    mistake: 'an http header name no request can carry',
    files: ['http-bad-header-name.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '/then/0/http/headers/X Team',
    line: 8,
    message: /^"X Team" is not a header name \(letters, digits and !#\$%&'\*\+-\.\^_`\|~ only\)$/,
  },
  {
    mistake: 'an http header named __proto__ (which a record would drop silently)',
    files: ['http-proto-header.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '/then/0/http/headers/__proto__',
    line: 9,
    message: /^"__proto__" cannot be sent as a header name$/,
  },
  {
    mistake: 'an unknown action',
    files: ['unknown-action.yaml'],
    code: 'RULE_UNKNOWN_ACTION',
    pointer: '/then/0/escalte',
    line: 5,
    message: /^unknown action "escalte"; did you mean "escalate"\?/,
  },
  {
    mistake: 'an unknown operator',
    files: ['unknown-operator.yaml'],
    code: 'RULE_UNKNOWN_OPERATOR',
    pointer: '/when/and/1/contains',
    line: 7,
    message:
      /^unknown operator "contains" \(operators: var, missing, .*, in, cat, substr, rank, hours_since, changed, matches, lower, lookup\)$/,
  },
  {
    mistake: 'an invalid regular expression',
    files: ['invalid-regex.yaml'],
    code: 'RULE_INVALID_REGEX',
    pointer: '/when/matches/1',
    line: 5,
    message: /^invalid regular expression \/disk \(full\/: missing closing \): `disk \(full`$/,
  },
  {
    mistake: 'a backreference in a pattern (not linear-time)',
    files: ['regex-backreference.yaml'],
    code: 'RULE_INVALID_REGEX',
    pointer: '/when/matches/1',
    line: 5,
    message:
      /^the pattern "\^\(\\\\w\+\) \\\\1\$" uses a backreference \(\\1\), which matches cannot run in linear time \(it runs patterns with RE2, so that no text can stall the engine\); rewrite it without the backreference: repeat the pattern of the group instead of referring back to it$/,
  },
  {
    mistake: 'a lookahead in a pattern (not linear-time)',
    files: ['regex-lookahead.yaml'],
    code: 'RULE_INVALID_REGEX',
    pointer: '/when/matches/1',
    line: 5,
    message:
      /^the pattern "disk\(\?! full\)" uses a lookahead \(\(\?!\.\.\.\), which matches cannot run in linear time/,
  },
  {
    mistake: 'a pattern that is not a literal string',
    files: ['non-literal-pattern.yaml'],
    code: 'RULE_INVALID_REGEX',
    pointer: '/when/matches/1',
    line: 5,
    message: /literal pattern string .*got \{"var":"object\.category"\}$/,
  },
  {
    mistake: 'an ordering between a priority and a name (compared as text)',
    files: ['type-priority-ordering.yaml'],
    code: 'RULE_TYPE_MISMATCH',
    pointer: '/when/>',
    line: 5,
    message:
      /^">" compares priority as text, alphabetically \("high" < "low" < "medium"\), not by level; compare ranks: \{">": \[\{"rank": \{"var":"object\.priority"\}\}, \{"rank": "medium"\}\]\}$/,
  },
  {
    mistake: 'a count compared with a word',
    files: ['type-count-vs-text.yaml'],
    code: 'RULE_TYPE_MISMATCH',
    pointer: '/when/==/1',
    line: 5,
    message:
      /^escalation is a count \(a whole number\), so it is never "high"; compare it with a number$/,
  },
  {
    mistake: 'a boolean compared with a string',
    files: ['type-boolean-vs-text.yaml'],
    code: 'RULE_TYPE_MISMATCH',
    pointer: '/when/==/1',
    line: 5,
    message:
      /^active is true or false, so it is never "yes"; compare it with true or false \(no quotes\)$/,
  },
  {
    mistake: 'a regular-expression flag other than i',
    files: ['bad-regex-flag.yaml'],
    code: 'RULE_INVALID_REGEX',
    pointer: '/when/matches/2',
    line: 5,
    message: /can only be "i" .*got "g"$/,
  },
  {
    mistake: 'an unknown object type in the trigger',
    files: ['unknown-object-type.yaml'],
    code: 'RULE_UNKNOWN_TYPE',
    pointer: '/on/type',
    line: 3,
    message: /got "incidnet"; did you mean "incident"\?$/,
  },
  {
    mistake: 'an unknown object type to create',
    files: ['unknown-create-type.yaml'],
    code: 'RULE_UNKNOWN_TYPE',
    pointer: '/then/0/create/type',
    line: 6,
    message: /^expected one of incident, problem, change, article, asset, got "request"$/,
  },
  {
    mistake: 'a field the type lacks in a var path of object',
    files: ['unknown-field-object.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/when/==/0/var',
    line: 5,
    message:
      /^the object type incident has no field "severity" \(fields: id, type, .*, priority, .*\)$/,
  },
  {
    mistake: 'a field the type lacks in a var path of previous',
    files: ['unknown-field-previous.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/when/!=/0/var',
    line: 6,
    message: /^the object type incident has no field "impcat"; did you mean "impact"\?$/,
  },
  {
    mistake: 'a field the type lacks in the changed trigger list',
    files: ['unknown-field-changed-trigger.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/on/changed/1',
    line: 5,
    message:
      /^the object type problem has no field "severity" \(fields: id, type, .*, priority, .*\)$/,
  },
  {
    mistake: 'a field the type lacks in the changed operator',
    files: ['unknown-field-changed-operator.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/when/changed',
    line: 6,
    message:
      /^the object type change has no field "severity" \(fields: id, type, .*, priority, .*\)$/,
  },
  {
    mistake: 'a field the type lacks in an update',
    files: ['unknown-field-update.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/then/0/update/severity',
    line: 7,
    message:
      /^an incident has no field "severity" \(writable fields: change, problem, .*, due_date\)$/,
  },
  {
    mistake: 'a field the type lacks in the fields of escalate',
    files: ['unknown-field-escalate.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/then/0/escalate/fields/team',
    line: 7,
    message: /^an incident has no field "team" \(writable fields: change, problem, .*, due_date\)$/,
  },
  {
    mistake: 'a field the created type lacks in create',
    files: ['unknown-field-create.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/then/0/create/fields/summary',
    line: 9,
    message:
      /^a problem has no field "summary" \(writable fields: change, incident, .*, due_date\)$/,
  },
  {
    mistake: 'a read-only field in an action',
    files: ['read-only-field.yaml'],
    code: 'RULE_READ_ONLY_FIELD',
    pointer: '/then/0/update/modified',
    line: 7,
    message: /^modified is read-only/,
  },
  {
    mistake: 'a priority out of range in an update',
    files: ['out-of-range-update.yaml'],
    code: 'RULE_OUT_OF_RANGE',
    pointer: '/then/0/update/priority',
    line: 5,
    message: /^priority is one of low, medium, high, critical, got "urgent"$/,
  },
  {
    mistake: 'an impact out of range in a comparison',
    files: ['out-of-range-comparison.yaml'],
    code: 'RULE_OUT_OF_RANGE',
    pointer: '/when/==/1',
    line: 5,
    message: /^impact is one of low, medium, high, so it is never "severe"$/,
  },
  {
    mistake: 'a risk out of range in a comparison',
    files: ['out-of-range-risk.yaml'],
    code: 'RULE_OUT_OF_RANGE',
    pointer: '/when/==/1',
    line: 5,
    message: /^risk is one of low, moderate, high, very high, so it is never "medium"$/,
  },
  {
    mistake: 'rank of an unknown literal',
    files: ['out-of-range-rank.yaml'],
    code: 'RULE_OUT_OF_RANGE',
    pointer: '/when/</1/rank',
    line: 5,
    message: /^rank knows low, medium, high, critical, moderate, very high, got "urgent"$/,
  },
  {
    mistake: 'an urgency out of range in an in list',
    files: ['out-of-range-in.yaml'],
    code: 'RULE_OUT_OF_RANGE',
    pointer: '/when/in/1/1',
    line: 5,
    message: /^urgency is one of low, medium, high, so it is never "critical"$/,
  },
  {
    mistake: 'escalate levels that is not a number',
    files: ['invalid-levels.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '/then/0/escalate/levels',
    line: 5,
    message: /^expected a whole number from 1 to 3, got "two"$/,
  },
  {
    mistake: 'a correlation at_least of 0',
    files: ['invalid-at-least.yaml'],
    code: 'RULE_OUT_OF_RANGE',
    pointer: '/correlate/at_least',
    line: 8,
    message: /^expected a whole number from 1 to 10000, got 0$/,
  },
  {
    mistake: 'a duration in weeks',
    files: ['invalid-duration.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '/correlate/within',
    line: 7,
    message: /^expected a duration such as 30s, 15m, 1h or 7d, got "1w"$/,
  },
  {
    mistake: 'a cron expression with an impossible minute',
    files: ['invalid-cron.yaml'],
    code: 'RULE_INVALID_SCHEDULE',
    pointer: '/on/schedule',
    line: 4,
    message: /^invalid cron expression "61 \* \* \* \*": .*minute: 61/,
  },
  {
    mistake: 'a six-field cron expression',
    files: ['six-field-cron.yaml'],
    code: 'RULE_INVALID_SCHEDULE',
    pointer: '/on/schedule',
    line: 4,
    message: /^expected a five-field cron expression .*got 6 fields in "0 \*\/15 \* \* \* \*"$/,
  },
  {
    mistake: 'a cron expression that never fires',
    files: ['schedule-never-fires.yaml'],
    code: 'RULE_INVALID_SCHEDULE',
    pointer: '/on/schedule',
    line: 4,
    message:
      /^the cron expression "0 0 30 2 \*" never fires \(no date matches its day and month fields\): check the day of month against the month$/,
  },
  {
    mistake: 'a schedule on generic objects',
    files: ['schedule-generic-object.yaml'],
    code: 'RULE_INVALID_SCHEDULE',
    pointer: '/on/type',
    line: 3,
    message:
      /^a scheduled rule cannot sweep generic objects \(type object has no list without a raw_type\): schedule it on incident, problem, change, article or asset, or drop schedule and trigger it on events$/,
  },
  {
    mistake: 'a schedule on a list of types that includes generic objects',
    files: ['schedule-generic-in-list.yaml'],
    code: 'RULE_INVALID_SCHEDULE',
    pointer: '/on/type/1',
    line: 3,
    message:
      /^a scheduled rule cannot sweep generic objects \(type object has no list without a raw_type\): drop object from on.type, and give generic objects a rule of their own triggered on events$/,
  },
  {
    mistake: 'a schedule together with events',
    files: ['schedule-with-events.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '/on/events',
    line: 5,
    message: /^a scheduled rule takes no events$/,
  },
  {
    mistake: 'escalate on a type without priority',
    files: ['escalate-without-priority.yaml'],
    code: 'RULE_INVALID_ACTION',
    pointer: '/then/0/escalate',
    line: 5,
    message: /^escalate raises priority, which asset does not have/,
  },
  {
    mistake: 'a link between types that cannot be linked',
    files: ['link-unlinkable.yaml'],
    code: 'RULE_INVALID_ACTION',
    pointer: '/then/0/create/link',
    line: 7,
    message: /an asset cannot be linked to a new problem$/,
  },
  {
    mistake: 'an update on a delete-only rule',
    files: ['update-on-delete.yaml'],
    code: 'RULE_INVALID_ACTION',
    pointer: '/then/0/update',
    line: 6,
    message: /^update writes the triggering object, which a delete event has already removed$/,
  },
  {
    mistake: 'a var path reading correlation without correlate',
    files: ['correlation-without-correlate.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/once_per/key/var',
    line: 5,
    message: /^"correlation\.key" is always null: the rule has no correlate$/,
  },
  {
    mistake: 'a context root that does not exist',
    files: ['unknown-context-root.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/when/==/0/var',
    line: 5,
    message: /^the context has no "priority" .*; did you mean "object\.priority"\?$/,
  },
  {
    mistake: 'two files with the same id',
    files: ['duplicate-id-first.yaml', 'duplicate-id-second.yaml'],
    in: 'duplicate-id-second.yaml',
    code: 'RULE_DUPLICATE_ID',
    pointer: '/id',
    line: 2,
    message:
      /^rule id "same-id" is also the id of test\/fixtures\/broken-rules\/duplicate-id-first\.yaml; rule ids must be unique$/,
  },
  {
    mistake: 'two rules whose writes trigger each other',
    files: ['loop-first.yaml', 'loop-second.yaml'],
    code: 'RULE_LOOP',
    pointer: '/on/self',
    line: 6,
    message:
      /^rules loop-first -> loop-second \(test\/fixtures\/broken-rules\/loop-second\.yaml\) -> loop-first trigger each other in a loop/,
  },
  {
    mistake: 'a file name that is not a kebab-case id, and no id',
    files: ['Not_Kebab_Case.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '',
    line: 2,
    message: /^the rule id comes from the file name, "Not_Kebab_Case", which is not kebab-case/,
  },
  {
    mistake: 'a rule whose write triggers itself',
    files: ['self-loop.yaml'],
    code: 'RULE_LOOP',
    pointer: '/on/self',
    line: 6,
    message: /^rule "self-loop" triggers itself through its own writes/,
  },
  {
    mistake: 'a rule triggering itself whose condition its own write leaves true',
    files: ['self-loop-unproved.yaml'],
    code: 'RULE_LOOP',
    pointer: '/on/self',
    line: 6,
    message:
      /^rule "self-loop-unproved" triggers itself through its own writes .*add to when \(at its top level, under and\) a condition that its own write makes false/,
  },
  {
    mistake: 'an upstream column the table lacks in a var path',
    files: ['unknown-raw-column.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/when/==/0/var',
    line: 5,
    message:
      /^the ServiceNow table incident has no column "assignment_grup" \(raw\.assignment_grup\); did you mean "assignment_group"\?$/,
  },
  {
    mistake: 'an upstream column the table lacks in the changed trigger',
    files: ['unknown-raw-column-changed.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/on/changed/0',
    line: 4,
    message: /^the ServiceNow table incident has no column "cmdb_cl" .*did you mean "cmdb_ci"\?$/,
  },
  {
    mistake: 'an upstream column the table lacks in update.raw',
    files: ['unknown-raw-column-update.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/then/0/update/raw/asignment_group',
    line: 7,
    message:
      /^the ServiceNow table incident has no column "asignment_group" .*did you mean "assignment_group"\?$/,
  },
  {
    mistake: 'an upstream column the unified model owns in update.raw',
    files: ['mapped-raw-column-update.yaml'],
    code: 'RULE_READ_ONLY_FIELD',
    pointer: '/then/0/update/raw/state',
    line: 7,
    message:
      /^state is the upstream column of the unified field status: write status \(update\.status\) instead$/,
  },
  {
    mistake: 'a choice code a raw choice column never holds',
    files: ['out-of-range-raw-choice.yaml'],
    code: 'RULE_OUT_OF_RANGE',
    pointer: '/when/==/1',
    line: 5,
    message:
      /^raw\.approval of a change is one of "not requested", "requested", "approved", "rejected", so it is never "aproved"; did you mean "approved"\?$/,
  },
  {
    mistake: 'a note on a type without journals',
    files: ['note-without-journal.yaml'],
    code: 'RULE_INVALID_ACTION',
    pointer: '/then/0/note',
    line: 5,
    message: /^note appends to the work_notes journal, which article does not keep/,
  },
  {
    mistake: 'a lookup in a condition',
    files: ['lookup-in-condition.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '/when/==/1/lookup',
    line: 7,
    message: /^lookup reads the ITSM API, so it can only be used in action values/,
  },
  {
    mistake: 'a lookup of a column the table lacks',
    files: ['unknown-lookup-column.yaml'],
    code: 'RULE_UNKNOWN_FIELD',
    pointer: '/then/0/update/raw/assignment_group/lookup/1',
    line: 7,
    message: /^the table sys_user_group has no column "nme"; did you mean "name"\?$/,
  },
  {
    mistake: 'a lookup of a table of unified objects',
    files: ['lookup-unified-table.yaml'],
    code: 'RULE_INVALID_VALUE',
    pointer: '/then/0/update/incident/lookup/0',
    line: 6,
    message: /^incident holds incident objects, which lookup does not read/,
  },
];

function expectedProblem(row: BrokenCase): RuleProblem {
  return {
    file: `${BROKEN}/${row.in ?? row.files[0]}`,
    pointer: row.pointer,
    line: row.line,
    code: row.code,
    message: expect.stringMatching(row.message) as unknown as string,
  };
}

const byPlace = (a: RuleProblem, b: RuleProblem) =>
  a.file.localeCompare(b.file) || a.pointer.localeCompare(b.pointer);

/** Loads rule texts given inline, by path. */
function load(files: Record<string, string>) {
  return loadRules(Object.entries(files).map(([path, text]) => ({ path, text })));
}

/** The one problem of a single inline rule file. */
function onlyProblem(path: string, text: string): RuleProblem {
  const { problems } = load({ [path]: text });
  expect(problems).toHaveLength(1);
  return problems[0] as RuleProblem;
}

describe('each kind of mistake in a rule file', () => {
  it.each(CASES.map((row) => [row.mistake, row] as const))(
    'reports %s as one problem with its code, pointer and line',
    (_mistake, row) => {
      const result = loadRules(row.files.map(broken));
      expect(result.problems).toEqual([expectedProblem(row)]);
      expect(result.ruleSet).toBeNull();
      expect(result.files).toBe(row.files.length);
    },
  );

  it('has a table row for every file of the broken-rules folder', () => {
    const covered = CASES.flatMap((row) => row.files).sort();
    expect(readdirSync(join(ROOT, BROKEN)).sort()).toEqual(covered);
  });
});

describe('a whole folder', () => {
  it('reports every problem of every file when the folder is loaded at once', () => {
    const names = readdirSync(join(ROOT, BROKEN));
    const result = loadRules(names.map(broken));
    expect(result.files).toBe(names.length);
    expect(result.ruleSet).toBeNull();
    expect(result.problems).toHaveLength(CASES.length);
    expect([...result.problems].sort(byPlace)).toEqual(CASES.map(expectedProblem).sort(byPlace));
  });

  it('also checks the valid parts of a file that has shape problems, and reports all in line order', () => {
    const text = [
      'on: {type: incident, changed: [priorty]}',
      'when: {"==": [{var: object.impact}, severe]}',
      'correlate: {key: {var: object.category}, within: 1w, at_least: 3}',
      'then:',
      '  - escalate: {levels: two}',
      '  - update: {urgency: urgnt}',
    ].join('\n');
    const result = loadRules([{ path: 'rules/many.yaml', text }]);
    expect(result.ruleSet).toBeNull();
    expect(result.problems.map((p) => [p.line, p.pointer, p.code])).toEqual([
      [1, '/on/changed/0', 'RULE_UNKNOWN_FIELD'],
      [2, '/when/==/1', 'RULE_OUT_OF_RANGE'],
      [3, '/correlate/within', 'RULE_INVALID_VALUE'],
      [5, '/then/0/escalate/levels', 'RULE_INVALID_VALUE'],
      [6, '/then/1/update/urgency', 'RULE_OUT_OF_RANGE'],
    ]);
  });

  it.each([
    [
      'a bad events entry and enumeration mistakes',
      [
        'on: {type: incident, events: [add, updat]}',
        'when: {"==": [{var: object.priority}, urgent]}',
        'then:',
        '  - update: {priority: urgent}',
      ],
      [
        [1, '/on/events/1', 'RULE_OUT_OF_RANGE'],
        [2, '/when/==/1', 'RULE_OUT_OF_RANGE'],
        [4, '/then/0/update/priority', 'RULE_OUT_OF_RANGE'],
      ],
    ],
    [
      'a lower-case method and a URL without a scheme in the same http action',
      ['on: {type: incident}', 'then:', '  - http: {url: "example.com/hook", method: post}'],
      [
        [3, '/then/0/http/method', 'RULE_OUT_OF_RANGE'],
        [3, '/then/0/http/url', 'RULE_INVALID_VALUE'],
      ],
    ],
    [
      'an unknown trigger key and a field the type lacks',
      [
        'on: {type: incident, chnaged: [x]}',
        'when: {var: object.nope}',
        'then: [{log: {message: hi}}]',
      ],
      [
        [1, '/on/chnaged', 'RULE_UNKNOWN_KEY'],
        [2, '/when/var', 'RULE_UNKNOWN_FIELD'],
      ],
    ],
  ])('reports %s of one file together', (_what, lines, expected) => {
    const result = loadRules([{ path: 'rules/both.yaml', text: lines.join('\n') }]);
    expect(result.problems.map((p) => [p.line, p.pointer, p.code])).toEqual(expected);
  });

  it('loads the example rules with no problem, in run order', () => {
    const sources = readRuleSources(join(ROOT, 'test/fixtures/example-rules'));
    const result = loadRules(sources);
    expect(result.problems).toEqual([]);
    expect(result.files).toBe(sources.length);
    const rules = result.ruleSet?.rules ?? [];
    expect(rules).toHaveLength(sources.length);
    const order = rules.map((rule) => [rule.order, rule.id] as const);
    expect(order).toEqual(
      [...order].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)),
    );
    expect(rules.map((rule) => rule.id)).toEqual(
      expect.arrayContaining([
        'escalate-major-incidents',
        'overdue-incident-escalation',
        'page-on-call-for-critical',
        'recurring-incidents-open-problem',
        'problem-in-fix-opens-change',
      ]),
    );
  });

  it('validates a disabled rule like any other', () => {
    const problem = onlyProblem(
      'rules/off.yaml',
      'enabled: false\non: {type: incident}\nwhen: {contains: [{var: object.description}, x]}\nthen: [{log: {message: hi}}]\n',
    );
    expect(problem).toMatchObject({ code: 'RULE_UNKNOWN_OPERATOR', pointer: '/when/contains' });
  });
});

describe('did you mean', () => {
  const head = 'on: {type: incident}\n';
  it.each([
    ['a top-level key', 'stopp: true\nthen: [{log: {message: hi}}]\n', '/stopp', 'stop'],
    ['an action', 'then: [{updte: {priority: high}}]\n', '/then/0/updte', 'update'],
    [
      'a key of create',
      'then: [{create: {type: problem, feilds: {}}}]\n',
      '/then/0/create/feilds',
      'fields',
    ],
    [
      'an operator',
      'when: {matchs: [{var: object.description}, disk]}\nthen: [{log: {message: hi}}]\n',
      '/when/matchs',
      'matches',
    ],
    [
      'an engine operator',
      'when: {">": [{hours_sinse: {var: object.due_date}}, 1]}\nthen: [{log: {message: hi}}]\n',
      '/when/>/0/hours_sinse',
      'hours_since',
    ],
    [
      'a field in a var path',
      'when: {"==": [{var: object.urgncy}, high]}\nthen: [{log: {message: hi}}]\n',
      '/when/==/0/var',
      'urgency',
    ],
    [
      'a field of event',
      'then: [{log: {message: {var: event.tipe}}}]\n',
      '/then/0/log/message/var',
      'type',
    ],
    [
      'a field in an update',
      'then: [{update: {priorty: high}}]\n',
      '/then/0/update/priorty',
      'priority',
    ],
    [
      'a priority literal',
      'when: {"==": [{var: object.priority}, crtical]}\nthen: [{log: {message: hi}}]\n',
      '/when/==/1',
      'critical',
    ],
  ])('suggests the near miss of %s', (_what, body, pointer, suggestion) => {
    const problem = onlyProblem('rules/near-miss.yaml', head + body);
    expect(problem.pointer).toBe(pointer);
    expect(problem.message).toContain(`did you mean "${suggestion}"?`);
  });

  it.each([
    [
      'a field in a var path',
      'on: {type: [incident, change]}\nwhen: {var: object.due_date}\n',
      '/when/var',
      'the object type change has no field "due_date" (incident has it): a rule on several types reads only what all of them have, so drop change from on.type or write one rule per type',
    ],
    [
      'a field in a changed list',
      'on: {type: [problem, change, incident], changed: [due_date]}\n',
      '/on/changed/0',
      'the object type change has no field "due_date" (problem, incident have it): a rule on several types reads only what all of them have, so drop change from on.type or write one rule per type',
    ],
    [
      'an upstream column',
      'on: {type: [incident, change]}\nwhen: {var: object.raw.caller_id}\n',
      '/when/var',
      'the ServiceNow table change_request has no column "caller_id" (raw.caller_id; incident has it): a rule on several types reads only what all of them have, so drop change from on.type or write one rule per type',
    ],
  ])(
    'names the type that has %s, never suggesting the name itself, in a rule on several types',
    (_what, body, pointer, message) => {
      const problem = onlyProblem('rules/several.yaml', `${body}then: [{log: {message: x}}]\n`);
      expect(problem).toMatchObject({ code: 'RULE_UNKNOWN_FIELD', pointer, message });
    },
  );

  it('still suggests a near miss in a rule on several types when none of them has the name', () => {
    const problem = onlyProblem(
      'rules/several.yaml',
      'on: {type: [incident, change]}\nwhen: {var: object.urgncy}\nthen: [{log: {message: x}}]\n',
    );
    expect(problem.message).toBe(
      'the object types incident, change have no field "urgncy"; did you mean "urgency"?',
    );
  });

  it('lists the choices when no known name is close', () => {
    const problem = onlyProblem('rules/far.yaml', `${head}then: [{update: {severity: high}}]\n`);
    expect(problem.message).toBe(
      'an incident has no field "severity" (writable fields: change, problem, requester, responder, active, assignee, category, escalation, impact, priority, status, urgency, description, due_date)',
    );
  });

  it.each([
    [
      'a field another tool has (assignment_group)',
      'when: {"==": [{var: object.assignment_group}, ops]}\n',
      /^the object type incident has no field "assignment_group" \(fields: id, type, api, created, modified, href, raw, change, problem, requester, responder, active, assignee, category, escalation, impact, priority, status, urgency, description, due_date\)$/,
    ],
    [
      'an operator another tool has (equals)',
      'when: {equals: [{var: object.category}, disk]}\n',
      /^unknown operator "equals" \(operators: var, missing, missing_some, if, \?:, ==, ===, !=, !==, !, !!, or, and, >, >=, <, <=, max, min, \+, -, \*, \/, %, map, filter, reduce, all, none, some, merge, in, cat, substr, rank, hours_since, changed, matches, lower, lookup\)$/,
    ],
  ])('lists the choices for %s', (_what, when, message) => {
    const problem = onlyProblem('rules/far.yaml', `${head}${when}then: [{log: {message: x}}]\n`);
    expect(problem.message).toMatch(message);
  });
});

describe('rules that trigger themselves (on.self)', () => {
  const loops = (lines: string[]) =>
    loadRules([{ path: 'rules/self.yaml', text: lines.join('\n') }]).problems.map(
      (problem) => problem.code,
    );
  const selfRule = (when: string | null, ...then: string[]) => [
    'on: {type: incident, events: [update], self: true}',
    ...(when === null ? [] : [`when: ${when}`]),
    'then:',
    ...then.map((action) => `  - ${action}`),
  ];

  it.each([
    [
      'escalation below a bound, with escalate',
      '{"<": [{var: object.escalation}, 3]}',
      ['escalate: {levels: 1}'],
    ],
    [
      'the bound written the other way round',
      '{">=": [2, {var: object.escalation}]}',
      ['escalate: {}'],
    ],
    [
      'a field unequal to the value the rule sets',
      '{"!=": [{var: object.urgency}, high]}',
      ['update: {urgency: high}'],
    ],
    [
      'the same under and, beside other conditions',
      '{and: [{"==": [{var: object.impact}, high]}, {"!==": [high, {var: object.urgency}]}]}',
      ['update: {urgency: high}'],
    ],
    [
      'a negated equality',
      '{"!": {"==": [{var: object.status}, resolved]}}',
      ['update: {status: resolved}'],
    ],
    [
      'a list that does not hold the value set',
      '{in: [{var: object.priority}, [low, medium]]}',
      ['update: {priority: high}'],
    ],
    [
      'an equality the write breaks',
      '{"==": [{var: object.priority}, high]}',
      ['update: {priority: critical}'],
    ],
    ['a changed field the rule never writes', '{changed: impact}', ['update: {urgency: high}']],
  ])('accepts %s', (_what, when, then) => {
    expect(loops(selfRule(when, ...then))).toEqual([]);
  });

  it.each([
    ['no condition at all', null, ['update: {urgency: high}']],
    [
      'a condition the write leaves true',
      '{"!=": [{var: object.urgency}, low]}',
      ['update: {urgency: high}'],
    ],
    [
      'a bound on escalation without escalate',
      '{"<": [{var: object.escalation}, 3]}',
      ['update: {urgency: high}'],
    ],
    [
      'a bound on escalation that an update resets',
      '{"<": [{var: object.escalation}, 3]}',
      ['escalate: {}', 'update: {escalation: 0}'],
    ],
    [
      'a field set to two values',
      '{"!=": [{var: object.urgency}, high]}',
      ['update: {urgency: high}', 'update: {urgency: low}'],
    ],
    [
      'a computed value',
      '{"!=": [{var: object.urgency}, high]}',
      ['update: {urgency: {var: previous.urgency}}'],
    ],
    [
      'a condition on previous',
      '{"!=": [{var: previous.urgency}, high]}',
      ['update: {urgency: high}'],
    ],
    [
      'a falsifiable condition under or',
      '{or: [{"!=": [{var: object.urgency}, high]}, true]}',
      ['update: {urgency: high}'],
    ],
    ['a changed field the rule writes', '{changed: urgency}', ['update: {urgency: high}']],
    ['a changed field the server stamps', '{changed: modified}', ['update: {urgency: high}']],
  ])('still refuses %s', (_what, when, then) => {
    expect(loops(selfRule(when, ...then))).toEqual(['RULE_LOOP']);
  });

  it('still refuses two rules that trigger each other, whatever their conditions', () => {
    const rule = (reads: string, writes: string) =>
      [
        `on: {type: incident, events: [update], changed: [${reads}], self: true}`,
        `when: {"!=": [{var: object.${writes}}, high]}`,
        `then: [{update: {${writes}: high}}]`,
      ].join('\n');
    const result = loadRules([
      { path: 'rules/a.yaml', text: rule('urgency', 'impact') },
      { path: 'rules/b.yaml', text: rule('impact', 'urgency') },
    ]);
    expect(result.problems.map((problem) => problem.code)).toEqual(['RULE_LOOP']);
  });
});

describe('warnings', () => {
  const DUPLICATE = 'test/fixtures/duplicate-create';
  const fixture = (name: string): RuleSource => ({
    path: `${DUPLICATE}/${name}`,
    text: readFileSync(join(ROOT, DUPLICATE, name), 'utf8'),
  });

  it('warns, without refusing the rules, when two rules create the same type from one trigger', () => {
    const result = loadRules(['open-problem-first.yaml', 'open-problem-second.yaml'].map(fixture));
    expect(result.problems).toEqual([]);
    expect(result.ruleSet?.rules).toHaveLength(2);
    expect(result.warnings).toEqual([
      {
        file: `${DUPLICATE}/open-problem-second.yaml`,
        pointer: '/then/1/create',
        line: 8,
        code: 'RULE_DUPLICATE_CREATE',
        message: `rule "open-problem-second" creates a problem, and so does rule "open-problem-first" (${DUPLICATE}/open-problem-first.yaml), on the same trigger (incident add): one event can create two, linked one way each; merge them into one rule, or make their conditions exclude each other`,
      },
    ]);
  });

  const creator = (name: string, on: string, type = 'problem', extra = '') => ({
    path: `rules/${name}.yaml`,
    text: `on: ${on}\n${extra}then: [{create: {type: ${type}, fields: {description: x}}}]\n`,
  });

  it.each([
    ['the events differ', '{type: incident, events: [delete]}', 'problem', ''],
    ['the trigger types differ', '{type: change}', 'problem', ''],
    ['they create different types', '{type: incident}', 'change', ''],
    ['the other rule is disabled', '{type: incident}', 'problem', 'enabled: false\n'],
    ['the other rule is scheduled', '{type: incident, schedule: "0 * * * *"}', 'problem', ''],
  ])('does not warn when %s', (_what, on, type, extra) => {
    const result = loadRules([
      creator('first', '{type: incident, events: [add, update]}'),
      creator('second', on, type, extra),
    ]);
    expect(result.problems).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it('looks for warnings only in a rule set without problems', () => {
    const result = loadRules([
      creator('first', '{type: incident}'),
      creator('second', '{type: incident}'),
      { path: 'rules/broken.yaml', text: 'on: {type: incident}\nthen: [{log: {}}]\n' },
    ]);
    expect(result.problems).toHaveLength(1);
    expect(result.warnings).toEqual([]);
  });
});

describe('type mistakes in comparisons', () => {
  const rule = (when: string, type = 'incident') =>
    loadRules([
      {
        path: 'rules/types.yaml',
        text: `on: {type: ${type}}\nwhen: ${when}\nthen: [{log: {message: x}}]\n`,
      },
    ]).problems.map((problem) => [problem.pointer, problem.code]);

  it.each([
    [
      'a between of names around a priority',
      '{"<=": [low, {var: object.priority}, high]}',
      [['/when/<=', 'RULE_TYPE_MISMATCH']],
    ],
    [
      'two enumerations ordered as text',
      '{"<": [{var: object.impact}, {var: previous.urgency}]}',
      [['/when/<', 'RULE_TYPE_MISMATCH']],
    ],
    [
      'a count in a list holding a word',
      '{in: [{var: object.escalation}, [1, two]]}',
      [['/when/in/1/1', 'RULE_TYPE_MISMATCH']],
    ],
    [
      'a word on the left of a count',
      '{"!=": [high, {var: previous.escalation}]}',
      [['/when/!=/0', 'RULE_TYPE_MISMATCH']],
    ],
    [
      'a number compared with a word',
      '{"==": [{var: object.rating}, good]}',
      [['/when/==/1', 'RULE_TYPE_MISMATCH']],
      'article',
    ],
    [
      'a boolean compared with "true" as text',
      '{"===": [{var: object.active}, "true"]}',
      [['/when/===/1', 'RULE_TYPE_MISMATCH']],
    ],
    ['ranks compared', '{">": [{rank: {var: object.priority}}, {rank: medium}]}', []],
    [
      'a risk ordered as text',
      '{">=": [{var: object.risk}, high]}',
      [['/when/>=', 'RULE_TYPE_MISMATCH']],
      'change',
    ],
    [
      'risk ranks compared, as the mismatch message advises',
      '{">=": [{rank: {var: object.risk}}, {rank: "very high"}]}',
      [],
      'change',
    ],
    [
      'a count compared with a number written as text',
      '{"==": [{var: object.escalation}, "2"]}',
      [],
    ],
    ['a count ordered against a number', '{"<": [{var: object.escalation}, 3]}', []],
    ['a boolean compared with false', '{"==": [{var: object.active}, false]}', []],
    ['a string field ordered against text', '{">": [{var: object.category}, m]}', []],
    [
      'an upstream column strictly equal to a number',
      '{"===": [{var: object.raw.state}, -1]}',
      [['/when/===/1', 'RULE_TYPE_MISMATCH']],
      'change',
    ],
    [
      'a number strictly unequal to an upstream column',
      '{"!==": [3, {var: previous.raw.urgency}]}',
      [['/when/!==/0', 'RULE_TYPE_MISMATCH']],
    ],
    [
      'an upstream column looked for in a list of numbers',
      '{"in": [{var: object.raw.urgency}, ["1", 2]]}',
      [['/when/in/1/1', 'RULE_TYPE_MISMATCH']],
    ],
    ['an upstream column loosely equal to a number', '{"==": [{var: object.raw.urgency}, 1]}', []],
    [
      'an upstream column strictly equal to its code',
      '{"===": [{var: object.raw.urgency}, "1"]}',
      [],
    ],
  ])('reports the type mistake, if any, of %s', (_what, when, expected, type?: string) => {
    expect(rule(when, type)).toEqual(expected);
  });

  it('says why a strict comparison of an upstream column with a number never holds, and the fix', () => {
    const { problems } = loadRules([
      {
        path: 'rules/raw.yaml',
        text: 'on: {type: change}\nwhen: {"===": [{var: object.raw.state}, -1]}\nthen: [{log: {message: x}}]\n',
      },
    ]);
    expect(problems.map((problem) => problem.message)).toEqual([
      'raw.state holds text (ServiceNow sends every column as a string), so it never strictly equals the number -1; compare it with "-1"',
    ]);
  });
});

describe('file formats', () => {
  const yaml = [
    'description: Major incidents',
    'order: 5',
    'on:',
    '  type: incident',
    '  changed: [impact]',
    'when: {"==": [{var: object.impact}, high]}',
    'then:',
    '  - escalate: {levels: 2}',
    '',
  ].join('\n');
  const json = [
    '{',
    '  "description": "Major incidents",',
    '  "order": 5,',
    '  "on": {"type": "incident", "changed": ["impact"]},',
    '  "when": {',
    '    "==": [',
    '      {"var": "object.impact"},',
    '      "high"',
    '    ]',
    '  },',
    '  "then": [{"escalate": {"levels": 2}}]',
    '}',
    '',
  ].join('\n');

  it('loads a JSON rule file into the same rule as its YAML twin', () => {
    const fromYaml = load({ 'rules/major.yaml': yaml });
    const fromJson = load({ 'rules/major.json': json });
    expect(fromYaml.problems).toEqual([]);
    expect(fromJson.problems).toEqual([]);
    const a = fromYaml.ruleSet?.rules[0];
    const b = fromJson.ruleSet?.rules[0];
    expect(b?.id).toBe('major');
    expect(b?.file).toBe('rules/major.json');
    expect({ ...b, file: a?.file, when: null, actions: null }).toEqual({
      ...a,
      when: null,
      actions: null,
    });
    expect(b?.source).toEqual(a?.source);
  });

  it('reports the same problem in a JSON file as in YAML, at the line of the value in the JSON text', () => {
    const fromYaml = onlyProblem('rules/major.yaml', yaml.replace('high]', 'severe]'));
    const fromJson = onlyProblem('rules/major.json', json.replace('"high"', '"severe"'));
    expect(fromJson).toEqual({ ...fromYaml, file: 'rules/major.json', line: 8 });
    expect(fromYaml.line).toBe(6);
  });

  it('reads on as a key and yes/no as strings (YAML 1.2 core schema)', () => {
    const result = load({
      'rules/yes.yaml': 'description: yes\non:\n  type: incident\nthen: [{log: {message: no}}]\n',
    });
    expect(result.problems).toEqual([]);
    const rule = result.ruleSet?.rules[0];
    expect(rule?.trigger.types).toEqual(['incident']);
    expect(rule?.description).toBe('yes');
    expect(rule?.actions).toEqual([{ log: { message: 'no' } }]);

    const problem = onlyProblem(
      'rules/enabled-yes.yaml',
      'enabled: yes\non: {type: incident}\nthen: [{log: {message: hi}}]\n',
    );
    expect(problem).toEqual({
      file: 'rules/enabled-yes.yaml',
      pointer: '/enabled',
      line: 1,
      code: 'RULE_INVALID_VALUE',
      message: 'expected true or false, got "yes"',
    });
  });

  it('reads a JSON rule file that starts with a byte-order mark', () => {
    const result = load({ 'rules/bom.json': `\uFEFF${json}` });
    expect(result.problems).toEqual([]);
    expect(result.ruleSet?.rules[0]?.id).toBe('bom');
  });

  it.each([
    [
      'more than one YAML document',
      'rules/two.yaml',
      'on: {type: incident}\nthen: [{log: {message: a}}]\n---\non: {type: problem}\n',
      3,
      'not valid YAML: a rule file holds one rule, but this one has more than one YAML document (---)',
    ],
    [
      'an empty file',
      'rules/empty.yaml',
      '# nothing yet\n',
      undefined,
      'expected a rule (a mapping with on and then), got null',
    ],
    [
      'a list instead of a rule',
      'rules/list.json',
      '[{"on": {"type": "incident"}}]',
      undefined,
      'expected a rule (a mapping with on and then), got a list',
    ],
  ])('refuses a file holding %s as a whole-file problem', (_what, path, text, line, message) => {
    expect(onlyProblem(path, text)).toEqual({
      file: path,
      pointer: '',
      line,
      code: 'RULE_SYNTAX',
      message,
    });
  });

  it('expands YAML anchors and aliases', () => {
    const result = load({
      'rules/anchors.yaml': [
        'on: {type: [incident, problem]}',
        'when:',
        '  and:',
        '    - &high {"==": [{var: object.impact}, high]}',
        '    - {"!": *high}',
        'then:',
        '  - update: &fields {category: major}',
        '  - create: {type: change, fields: *fields}',
        '',
      ].join('\n'),
    });
    expect(result.problems).toEqual([]);
    const high = { '==': [{ var: 'object.impact' }, 'high'] };
    expect(result.ruleSet?.rules[0]?.source.when).toEqual({ and: [high, { '!': high }] });
    expect(result.ruleSet?.rules[0]?.actions).toEqual([
      { update: { category: 'major' } },
      { create: { type: 'change', fields: { category: 'major' } } },
    ]);
  });
});

describe('defaults and order', () => {
  it('fills in the id from the file name, enabled, order 100 and events add and update', () => {
    const result = load({
      'rules/deep/folder/quiet-rule.yml': 'on: {type: asset}\nthen: [{log: {message: hi}}]\n',
    });
    expect(result.problems).toEqual([]);
    expect(result.ruleSet?.rules[0]).toMatchObject({
      id: 'quiet-rule',
      file: 'rules/deep/folder/quiet-rule.yml',
      description: null,
      enabled: true,
      order: 100,
      trigger: {
        types: ['asset'],
        events: ['add', 'update'],
        changed: null,
        self: false,
        schedule: null,
      },
      when: null,
      correlate: null,
      oncePer: null,
      stop: false,
    });
  });

  it('gives a scheduled rule no events', () => {
    const result = load({
      'rules/tick.yaml':
        'on: {type: incident, schedule: "0 * * * *"}\nthen: [{log: {message: hi}}]\n',
    });
    expect(result.ruleSet?.rules[0]?.trigger).toEqual({
      types: ['incident'],
      events: [],
      changed: null,
      self: false,
      schedule: '0 * * * *',
    });
  });

  it('returns the rules sorted by order, then by id', () => {
    const rule = (order: number | null) =>
      `${order === null ? '' : `order: ${order}\n`}on: {type: incident}\nthen: [{log: {message: hi}}]\n`;
    const result = load({
      'rules/a/zeta.yaml': rule(5),
      'rules/b/alpha.yaml': rule(null),
      'rules/c/beta.yaml': rule(5),
      'rules/d/gamma.yaml': rule(-1),
      'rules/e/delta.yaml': rule(100),
    });
    expect(result.ruleSet?.rules.map((r) => r.id)).toEqual([
      'gamma',
      'beta',
      'zeta',
      'alpha',
      'delta',
    ]);
  });
});

describe('problem messages', () => {
  it('formats a problem as file:line /pointer: message', () => {
    const [problem] = loadRules([broken('invalid-levels.yaml')]).problems;
    expect(formatProblem(problem as RuleProblem)).toBe(
      'test/fixtures/broken-rules/invalid-levels.yaml:5 /then/0/escalate/levels: expected a whole number from 1 to 3, got "two"',
    );
  });

  it('formats a problem of the whole file without a line as file /: message', () => {
    expect(
      formatProblem({
        file: 'rules/empty.json',
        pointer: '',
        code: 'RULE_SYNTAX',
        message: 'not valid JSON: Unexpected end of JSON input',
      }),
    ).toBe('rules/empty.json /: not valid JSON: Unexpected end of JSON input');
  });

  it('escapes / and ~ in pointers', () => {
    const problem = onlyProblem(
      'rules/slash.yaml',
      'on: {type: incident}\nthen: [{object: {raw_type: thing, fields: {"a/b~c": {bogus_op: 1}}}}]\n',
    );
    expect(problem.pointer).toBe('/then/0/object/fields/a~1b~0c/bogus_op');
  });

  it('lists every problem in a RuleLoadError', () => {
    const { problems } = loadRules([broken('invalid-levels.yaml'), broken('unknown-action.yaml')]);
    const error = new RuleLoadError(problems);
    expect(error.code).toBe('RULE_LOAD_FAILED');
    expect(error.message.split('\n')).toEqual([
      '2 problems in the rules:',
      `  ${formatProblem(problems[0] as RuleProblem)}`,
      `  ${formatProblem(problems[1] as RuleProblem)}`,
    ]);
  });
});

describe('the JSON Schema of rule files', () => {
  it('is exactly the committed schema/rule.schema.json', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'schema/rule.schema.json'), 'utf8'));
    expect(ruleJsonSchema()).toEqual(committed);
  });
});
