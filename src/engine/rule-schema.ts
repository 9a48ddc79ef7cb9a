// The rule file format (docs/rules.md) as one zod schema. The loader validates files
// with it, and `itsm-rules schema` / schema/rule.schema.json are generated from it, so the editor
// schema and the loader can never disagree. Expressions are JSON-logic and typed `unknown` here;
// the rule checks (check.ts) walk them.
import { z } from 'zod';
import { OBJECT_TYPES, UNIFIED_TYPES } from '../itsm/fields.js';
import { DURATION_PATTERN } from './duration.js';

const expr = z
  .unknown()
  .meta({ description: 'JSON-logic: a literal, or an object with one operator key' });

const duration = z
  .string()
  .regex(DURATION_PATTERN, 'expected a duration such as 30s, 15m, 1h or 7d')
  .meta({ description: 'a duration: a whole number and s, m, h or d (30s, 15m, 1h, 7d)' });

const fieldMap = z
  .record(z.string(), expr)
  .meta({ description: 'field name to JSON-logic value; a literal stays a literal' });

export const RULE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const TRIGGER_EVENTS = ['add', 'update', 'delete'] as const;
export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

const objectType = z.enum(OBJECT_TYPES);

export const triggerSchema = z
  .strictObject({
    type: z
      .union([objectType, z.array(objectType).min(1)])
      .meta({ description: 'object type(s) the rule watches' }),
    events: z
      .array(z.enum(TRIGGER_EVENTS))
      .min(1)
      .optional()
      .meta({ description: 'default [add, update]; not with schedule' }),
    changed: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'only when one of these fields changed (an add changes every field)' }),
    self: z
      .boolean()
      .optional()
      .meta({ description: 'also run on changes the engine itself made (chains stop at 5 hops)' }),
    schedule: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'five-field cron expression in UTC: a scheduled rule' }),
  })
  .meta({ description: 'when the rule runs' });

export const correlateSchema = z.strictObject({
  key: expr.meta({ description: 'JSON-logic giving the grouping key' }),
  within: duration,
  at_least: z.number().int().min(1).max(10_000),
});

export const oncePerObjectSchema = z.strictObject({
  key: expr.meta({ description: 'JSON-logic giving the dedup key' }),
  within: duration.optional(),
});

export const updateActionSchema = z.strictObject({
  update: fieldMap.meta({
    description:
      'field name to JSON-logic value; `raw: {column: value}` writes upstream (ServiceNow) columns the unified model lacks, in the same PATCH',
  }),
});

export const noteActionSchema = z.strictObject({
  note: z.strictObject({
    text: expr.meta({ description: 'the entry: a string, or JSON-logic giving one' }),
    visible: z.boolean().optional().meta({
      description:
        'false (default): a work note (work_notes, agents only); true: a comment the caller sees (comments)',
    }),
  }),
});

export const escalateActionSchema = z.strictObject({
  escalate: z.strictObject({
    levels: z.number().int().min(1).max(3).optional().meta({ description: 'default 1' }),
    assignee: expr.optional(),
    fields: fieldMap.optional(),
  }),
});

export const createActionSchema = z.strictObject({
  create: z.strictObject({
    type: z.enum(UNIFIED_TYPES),
    fields: fieldMap.optional(),
    link: z
      .boolean()
      .optional()
      .meta({ description: 'set the references both ways (and on every correlated object)' }),
  }),
});

export const objectActionSchema = z.strictObject({
  object: z.strictObject({
    raw_type: z.string().min(1),
    fields: fieldMap,
    id: expr.optional().meta({ description: 'with an id, update that generic object' }),
  }),
});

/**
 * An HTTP field name (an RFC 9110 token), which fetch would refuse at run time otherwise. A
 * `__proto__` name never reaches this schema (a record cannot hold it): the loader refuses it.
 */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, {
  error: (issue) =>
    `${JSON.stringify(issue.input)} is not a header name (letters, digits and !#$%&'*+-.^_\`|~ only)`,
});

export const httpActionSchema = z.strictObject({
  http: z.strictObject({
    url: expr.meta({ description: 'http(s) URL; its host must be on the allow-list' }),
    method: z.enum(HTTP_METHODS).optional().meta({ description: 'default POST' }),
    headers: z.record(headerName, expr).optional(),
    body: z.unknown().optional().meta({
      description:
        'JSON template: objects and arrays are walked, and an object whose only key is an operator is evaluated',
    }),
  }),
});

export const logActionSchema = z.strictObject({ log: z.strictObject({ message: expr }) });

/** Each action, by its key; the loader uses this to report the issues of the action written. */
export const ACTION_SCHEMAS = {
  update: updateActionSchema,
  escalate: escalateActionSchema,
  create: createActionSchema,
  object: objectActionSchema,
  http: httpActionSchema,
  log: logActionSchema,
  note: noteActionSchema,
} as const;
export type ActionKind = keyof typeof ACTION_SCHEMAS;
export const ACTION_KINDS = Object.keys(ACTION_SCHEMAS) as ActionKind[];

export const actionSchema = z.union([
  updateActionSchema,
  escalateActionSchema,
  createActionSchema,
  objectActionSchema,
  httpActionSchema,
  logActionSchema,
  noteActionSchema,
]);

/** live: the rule acts; shadow: it is evaluated and recorded, never acts (remove the line to promote it). */
export const RULE_MODES = ['live', 'shadow'] as const;

export const ruleFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    id: z
      .string()
      .regex(RULE_ID_PATTERN, 'expected a kebab-case id: a-z, 0-9 and -, at most 64 characters')
      .optional()
      .meta({ description: 'default: the file name without extension' }),
    description: z.string().optional(),
    enabled: z.boolean().optional().meta({ description: 'default true' }),
    mode: z.enum(RULE_MODES).optional().meta({
      description: 'live (default), or shadow: evaluated and recorded, never acts',
    }),
    order: z
      .number()
      .int()
      .optional()
      .meta({ description: 'ascending; default 100; ties broken by id' }),
    on: triggerSchema,
    when: expr.optional().meta({ description: 'JSON-logic condition; default true' }),
    correlate: correlateSchema.optional(),
    once_per: z
      .union([oncePerObjectSchema, expr])
      .optional()
      .meta({ description: '{key, within?}, or the key expression itself' }),
    // biome-ignore lint/suspicious/noThenProperty: `then` is the rule format's key (spec section 1); it holds a list, never a function, so a rule is not thenable.
    then: z.array(actionSchema).min(1).meta({ description: 'actions, run in this order' }),
    stop: z
      .boolean()
      .optional()
      .meta({ description: 'true: once this rule matched, no later rule runs for the event' }),
  })
  .meta({ title: 'itsm-rules rule file', description: 'One rule (docs/rules.md)' });

export type RuleFile = z.infer<typeof ruleFileSchema>;
export type RuleAction = z.infer<typeof actionSchema>;
export type Trigger = z.infer<typeof triggerSchema>;

/** The JSON Schema of rule files (draft 2020-12), for editors and `itsm-rules schema`. */
export function ruleJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ruleFileSchema, { target: 'draft-2020-12', io: 'input' });
  return {
    ...schema,
    $id: 'https://itsm-rules.dev/schema/rule.schema.json',
  };
}
