// The generated parts of the documentation (`npm run docs`): the sections of docs/*.md between
// `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` are written from the code's own tables
// (object types and fields, operators, the rule schema, actions, the command line's flag tables,
// the OpenAPI documents, error codes), so they cannot drift from it. test/docs/generated.test.ts
// fails when a file is out of date; run `npm run docs` to regenerate.
//
//   tsx scripts/gen-docs.ts            rewrite the generated sections in place
//   tsx scripts/gen-docs.ts --check    exit 1 naming every file that is out of date
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { ENGINE_OPERATORS, STANDARD_OPERATORS } from '../src/engine/expression.js';
import {
  ACTION_KINDS,
  ACTION_SCHEMAS,
  type ActionKind,
  ruleFileSchema,
  triggerSchema,
} from '../src/engine/rule-schema.js';
import {
  COLLECTION_PATHS,
  CREATE_DEFAULTS,
  type FieldKind,
  LEVELS,
  PRIORITIES,
  READ_ONLY_FIELDS,
  RISKS,
  TYPE_FIELDS,
  UNIFIED_TYPES,
} from '../src/itsm/fields.js';
import { ERROR_CODES } from '../src/itsm/schemas.js';
import { COMMANDS } from '../src/runtime/cli.js';
import type { Command } from '../src/runtime/command.js';
import { itsmOpenApi } from '../src/server/openapi.js';
import {
  DEFAULT_RUNS_PAGE_SIZE,
  MAX_ADMIN_BODY_BYTES,
  MAX_RUNS_PAGE_SIZE,
} from '../src/webhook/app.js';
import { ENGINE_ERROR_CODES } from '../src/webhook/errors.js';
import { engineOpenApi } from '../src/webhook/openapi.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The files with generated sections, relative to the repository root. */
export const GENERATED_FILES = ['docs/rules.md', 'docs/api.md'] as const;

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
const code = (text: string) => `\`${text}\``;

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Words the code does not hold. Each table is typed by the code's own list, so a new field kind,
// operator or action does not compile until it is described here.

const KIND_WORDS: Record<FieldKind, { reads: string; writes: string }> = {
  reference: {
    reads: 'the id of the linked object of that type (same account), or null',
    writes: 'an id of an existing object of that type; `""` or null clears the link',
  },
  user: {
    reads: 'a user object `{type: "user", api: "team", id, name?, email?}`',
    writes: 'a user id (a string)',
  },
  boolean: { reads: 'true or false', writes: 'true or false' },
  string: { reads: 'text', writes: 'text' },
  number: { reads: 'a number', writes: 'a number' },
  count: { reads: 'a whole number >= 0', writes: 'a whole number >= 0' },
  date: {
    reads: 'ISO 8601 UTC, `2017-10-04T20:15:37Z`',
    writes: 'an ISO 8601 date or date-time (no zone: UTC)',
  },
  level: { reads: LEVELS.join(', '), writes: `one of ${LEVELS.join(', ')}` },
  priority: { reads: PRIORITIES.join(', '), writes: `one of ${PRIORITIES.join(', ')}` },
  risk: {
    reads: `${RISKS.join(', ')} (ServiceNow's 4 to 1)`,
    writes: `one of ${RISKS.join(', ')}`,
  },
  status: {
    reads: 'a number or a string (the embedded API keeps what was written)',
    writes: 'a number or a string',
  },
};

type EngineOperator = (typeof ENGINE_OPERATORS)[number];
const OPERATOR_WORDS: Record<EngineOperator, { syntax: string; meaning: string }> = {
  rank: {
    syntax: '{"rank": x}',
    meaning:
      'low 1, medium 2, high 3, critical 4, anything else null: compare priorities, impacts and urgencies in order; a change risk is on the same scale (moderate 2, very high 4)',
  },
  hours_since: {
    syntax: '{"hours_since": iso}',
    meaning:
      'hours from that time to `now` (negative when it is in the future); null when it is not an ISO 8601 date (no zone means UTC)',
  },
  changed: {
    syntax: '{"changed": "field"}',
    meaning: 'true when that field is in `changed` (an add changes every field)',
  },
  matches: {
    syntax: '{"matches": [text, pattern]} or [text, pattern, "i"]',
    meaning:
      'regular-expression test in RE2 syntax (linear time: no backreferences, no lookaround); the pattern must be a literal, checked at load; "i" ignores case; very long text is cut before matching; false for null',
  },
  lower: { syntax: '{"lower": text}', meaning: 'the text in lower case; null for null' },
  lookup: {
    syntax: '{"lookup": [table, column, value]}',
    meaning:
      'the sys_id of the record of a generic table (sys_user_group, sys_user, cmdb_ci, ...) whose column equals value, or null; read through the ITSM API before the actions are planned (cached per drain), so only in action values',
  },
};

const ACTION_WORDS: Record<ActionKind, string> = {
  update: 'PATCH the triggering object with these fields (only those whose value differs)',
  escalate:
    'raise `priority` by `levels` steps (capped at critical), add 1 to `escalation`, set `assignee` and `fields`; nothing is written when nothing would change',
  create:
    'create an object of `type` in the same account, linked to the triggering one with `link`',
  object: 'create a generic object of `raw_type`, or with `id` update that one',
  http: 'call an outside URL whose host is on the allow-list (`--http-allow`), with the action\u2019s Idempotency-Key',
  log: 'write a line to the run record (never to the server\u2019s output)',
  note: 'append a work note (`visible: false`, the default) or a comment the caller sees (`visible: true`) to the triggering incident, problem or change',
};

// ---------------------------------------------------------------------------------------------
// Sections

function descriptionOf(schema: z.ZodType): string {
  return (schema as { description?: string }).description ?? '';
}

/** Whether a key must be written: its schema is not `.optional()` (an expression may be null). */
function isRequired(schema: z.ZodType): boolean {
  return (schema as unknown as { _zod: { def: { type: string } } })._zod.def.type !== 'optional';
}

function shapeRows(shape: Record<string, z.ZodType>): string[][] {
  return Object.entries(shape)
    .filter(([key]) => key !== '$schema')
    .map(([key, schema]) => [code(key), isRequired(schema) ? 'yes' : '', descriptionOf(schema)]);
}

function ruleKeysSection(): string {
  return table(
    ['key', 'required', 'meaning'],
    shapeRows(ruleFileSchema.shape as unknown as Record<string, z.ZodType>),
  );
}

function triggerSection(): string {
  return table(
    ['`on` key', 'required', 'meaning'],
    shapeRows(triggerSchema.shape as unknown as Record<string, z.ZodType>),
  );
}

function operatorsSection(): string {
  const standard = STANDARD_OPERATORS.map(code).join(' ');
  return [
    `Standard JSON Logic operators (json-logic-js semantics): ${standard}.`,
    '',
    'The engine\u2019s own:',
    '',
    table(
      ['operator', 'meaning'],
      ENGINE_OPERATORS.map((name) => [
        code(OPERATOR_WORDS[name].syntax),
        OPERATOR_WORDS[name].meaning,
      ]),
    ),
  ].join('\n');
}

function actionsSection(): string {
  const rows = ACTION_KINDS.map((kind) => {
    const outer = ACTION_SCHEMAS[kind].shape as unknown as Record<string, z.ZodType>;
    const inner = outer[kind] as z.ZodType & { shape?: Record<string, z.ZodType> };
    const fields = inner.shape
      ? Object.entries(inner.shape)
          .map(([key, schema]) => {
            const note = descriptionOf(schema);
            return `${code(key)}${isRequired(schema) ? '' : '?'}${note ? ` (${note})` : ''}`;
          })
          .join('; ')
      : `${code('field: value')}, ... (${descriptionOf(inner)})`;
    return [code(kind), fields, ACTION_WORDS[kind]];
  });
  return table(['action', 'fields (`?`: optional)', 'does'], rows);
}

function fieldsSection(): string {
  const parts = [
    `Every object also carries ${READ_ONLY_FIELDS.map(code).join(', ')} (read-only: an action may not write them) and \`raw\` (the upstream record, only when asked for). On create the server fills in ${Object.entries(
      CREATE_DEFAULTS,
    )
      .map(([field, value]) => `${code(field)} = ${code(JSON.stringify(value))}`)
      .join(', ')} when the body leaves them out.`,
  ];
  for (const type of UNIFIED_TYPES) {
    parts.push('', `**${type}** (\`itsm/${COLLECTION_PATHS[type].plural}\`)`, '');
    parts.push(
      table(
        ['field', 'kind', 'reads as', 'written as'],
        Object.entries(TYPE_FIELDS[type] as Record<string, FieldKind>).map(([field, kind]) => [
          code(field),
          kind,
          KIND_WORDS[kind].reads,
          KIND_WORDS[kind].writes,
        ]),
      ),
    );
  }
  parts.push(
    '',
    '**object** (`itsm/objects?raw_type=T`): a generic object has no unified fields; everything is in `raw.object`.',
  );
  return parts.join('\n');
}

function flagsTable(command: Command): string {
  return table(
    ['flag', 'environment', 'default', 'meaning'],
    command.flags.map((flag) => {
      const [first, ...more] = flag.description.split('\n');
      return [
        code(`--${flag.name}${flag.placeholder ? ` ${flag.placeholder}` : ''}`),
        flag.env ? code(flag.env) : '',
        flag.default !== undefined ? code(flag.default) : '',
        more.length > 0 ? `${first} (more: \`itsm-rules ${command.name} --help\`)` : (first ?? ''),
      ];
    }),
  );
}

function commandSection(names: string[]): string {
  return names
    .map((name) => {
      const command = COMMANDS.find((c) => c.name === name);
      if (!command) throw new Error(`no command ${name}`);
      const flags = command.flags.length > 0 ? flagsTable(command) : 'No flags.';
      return `\`itsm-rules ${name}\`: ${command.summary}.\n\n${flags}`;
    })
    .join('\n\n');
}

function endpointsTable(doc: { paths: Record<string, Record<string, unknown>> }): string {
  const rows: string[][] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const op = operation as { summary?: string; security?: unknown[] };
      const open = Array.isArray(op.security) && op.security.length === 0;
      rows.push([
        `${method.toUpperCase()} ${code(path)}`,
        `${op.summary ?? ''}${open ? ' (no credentials)' : ''}`,
      ]);
    }
  }
  return table(['endpoint', 'what'], rows);
}

function errorCodesSection(): string {
  const engine = ENGINE_ERROR_CODES as Record<string, number>;
  const codes = [...new Set([...Object.keys(ERROR_CODES), ...Object.keys(engine)])];
  return table(
    ['error_code', 'status', 'ITSM API', 'engine'],
    codes.map((name) => {
      const status = (ERROR_CODES as Record<string, number>)[name] ?? engine[name];
      return [
        code(name),
        String(status),
        name in ERROR_CODES ? 'yes' : '',
        name in engine ? 'yes' : '',
      ];
    }),
  );
}

/** Every generated section by name: its Markdown body. */
export function generatedSections(): Record<string, string> {
  return {
    'rule-keys': ruleKeysSection(),
    trigger: triggerSection(),
    operators: operatorsSection(),
    actions: actionsSection(),
    fields: fieldsSection(),
    'cli-rules': commandSection(['check', 'test', 'schema']),
    'cli-replay': commandSection(['replay']),
    'cli-servers': commandSection(['serve', 'itsm-server']),
    'itsm-endpoints': endpointsTable(itsmOpenApi({ faults: true })),
    'engine-endpoints': endpointsTable(
      engineOpenApi({
        runsPageSize: { default: DEFAULT_RUNS_PAGE_SIZE, max: MAX_RUNS_PAGE_SIZE },
        maxAdminBodyBytes: MAX_ADMIN_BODY_BYTES,
      }) as { paths: Record<string, Record<string, unknown>> },
    ),
    'error-codes': errorCodesSection(),
  };
}

const MARKER = /<!-- generated:([a-z-]+) -->\n[\s\S]*?<!-- \/generated:\1 -->/g;

/** `text` with each generated section rewritten; throws on a section name the script lacks. */
export function renderGenerated(text: string, sections = generatedSections()): string {
  return text.replace(MARKER, (_whole, name: string) => {
    const body = sections[name];
    if (body === undefined) throw new Error(`unknown generated section "${name}"`);
    return `<!-- generated:${name} -->\n<!-- by npm run docs from the code; do not edit by hand -->\n\n${body}\n\n<!-- /generated:${name} -->`;
  });
}

/**
 * The file as `npm run docs` writes it: its sections regenerated, then formatted by the project's
 * formatter (biome aligns Markdown tables), so that `biome check` and this script agree.
 */
export function renderFile(file: string, text: string, sections = generatedSections()): string {
  const biome = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome');
  return execFileSync(process.execPath, [biome, 'format', `--stdin-file-path=${file}`], {
    cwd: ROOT,
    input: renderGenerated(text, sections),
    encoding: 'utf8',
  });
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const sections = generatedSections();
  const stale: string[] = [];
  for (const file of GENERATED_FILES) {
    const path = `${ROOT}${file}`;
    const text = readFileSync(path, 'utf8');
    const next = renderFile(file, text, sections);
    if (next === text) continue;
    stale.push(file);
    if (!check) writeFileSync(path, next);
  }
  if (check && stale.length > 0) {
    console.error(`out of date: ${stale.join(', ')}; run npm run docs`);
    return 1;
  }
  console.log(check ? 'docs: up to date' : `docs: ${stale.length} file(s) regenerated`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exit(main(process.argv.slice(2)));
}
