// zod schemas of everything the ITSM API sends and accepts (docs/api.md):
// the five unified types, generic objects, users, object lists, events, webhooks and the error
// body. Read schemas are loose (a newer server may add fields); write schemas are strict (an
// unknown field is a 400 naming it). Both are derived from the field table in fields.ts.
import { z } from 'zod';
import {
  type FieldKind,
  LEVELS,
  PRIORITIES,
  RISKS,
  TYPE_FIELDS,
  UNIFIED_TYPES,
  type UnifiedType,
} from './fields.js';

const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Parses an ISO 8601 date or date-time and returns it in the API's canonical form
 * (`2017-11-27T09:01:33Z`, UTC, whole seconds), or null when it is not a real date.
 * A date-time without a zone is taken as UTC, as ServiceNow stores it.
 */
export function normalizeIsoDate(value: string): string | null {
  const m = ISO_DATE_TIME.exec(value.trim());
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', , zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return null;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return null;
  // Date.UTC maps years 0-99 to 1900-1999; setting the year afterwards keeps it as written.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  date.setUTCFullYear(year, month - 1, day);
  let ms = date.getTime();
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offset = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4));
    if (Number(digits.slice(0, 2)) > 23 || Number(digits.slice(2, 4)) > 59) return null;
    ms -= sign * offset * 60_000;
  }
  return formatIsoDate(new Date(ms));
}

/** `2017-11-27T09:01:33Z`: the API's timestamp form. */
export function formatIsoDate(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

// ---------------------------------------------------------------------------------------------
// Users

export const userSchema = z.looseObject({
  type: z.literal('user'),
  api: z.literal('team'),
  id: z.string(),
  name: z.string().optional(),
  email: z.string().optional(),
});
export type User = z.infer<typeof userSchema>;

// ---------------------------------------------------------------------------------------------
// Read schemas (what the API returns)

const rawSchema = z.record(z.string(), z.unknown());

const READ_KINDS = {
  user: userSchema,
  reference: z.string(),
  boolean: z.boolean(),
  string: z.string(),
  number: z.number(),
  count: z.number().int().min(0),
  date: z.string(),
  level: z.enum(LEVELS),
  priority: z.enum(PRIORITIES),
  risk: z.enum(RISKS),
  status: z.union([z.number(), z.string()]),
} as const satisfies Record<FieldKind, z.ZodType>;

type ReadShape<F extends Record<string, FieldKind>> = {
  [K in keyof F]: z.ZodOptional<z.ZodNullable<(typeof READ_KINDS)[F[K]]>>;
};

function readSchemaOf<T extends UnifiedType>(type: T) {
  const fields: Record<string, FieldKind> = TYPE_FIELDS[type];
  const shape: Record<string, z.ZodType> = {};
  for (const [field, kind] of Object.entries(fields)) shape[field] = READ_KINDS[kind].nullish();
  return z.looseObject({
    id: z.string(),
    type: z.literal(type),
    api: z.literal('itsm'),
    created: z.string(),
    modified: z.string(),
    href: z.string(),
    raw: rawSchema.optional(),
    ...(shape as ReadShape<(typeof TYPE_FIELDS)[T]>),
  });
}

export const incidentSchema = readSchemaOf('incident');
export const problemSchema = readSchemaOf('problem');
export const changeSchema = readSchemaOf('change');
export const articleSchema = readSchemaOf('article');
export const assetSchema = readSchemaOf('asset');

export type Incident = z.infer<typeof incidentSchema>;
export type Problem = z.infer<typeof problemSchema>;
export type Change = z.infer<typeof changeSchema>;
export type Article = z.infer<typeof articleSchema>;
export type Asset = z.infer<typeof assetSchema>;

export const genericObjectSchema = z.looseObject({
  id: z.string(),
  type: z.literal('object'),
  api: z.literal('itsm'),
  raw: z.looseObject({
    type: z.string(),
    id: z.string(),
    object: rawSchema,
  }),
  href: z.string(),
});
export type GenericObject = z.infer<typeof genericObjectSchema>;

export const READ_SCHEMAS = {
  incident: incidentSchema,
  problem: problemSchema,
  change: changeSchema,
  article: articleSchema,
  asset: assetSchema,
  object: genericObjectSchema,
} as const;

export type ItsmObject = Incident | Problem | Change | Article | Asset | GenericObject;

export function objectListSchema<T extends z.ZodType>(item: T) {
  return z.object({
    total: z.number().int().min(0).optional(),
    count: z.number().int().min(0),
    page: z.union([z.number(), z.string()]).nullish(),
    next_page: z.union([z.number(), z.string()]).nullable(),
    objects: z.array(item),
    type: z.literal('object_list'),
    api: z.string(),
  });
}
export type ObjectList<T> = {
  total?: number;
  count: number;
  page?: number | string | null;
  next_page: number | string | null;
  objects: T[];
  type: 'object_list';
  api: string;
};

// ---------------------------------------------------------------------------------------------
// Write schemas (what the API accepts on create and update)

/** An error message naming the field, what it must be, and what was sent. */
const expected =
  (field: string, what: string) =>
  (issue: { input?: unknown }): string =>
    `${field} must be ${what}, got ${JSON.stringify(issue.input) ?? 'nothing'}`;

function writeKind(field: string, kind: FieldKind): z.ZodType {
  switch (kind) {
    case 'user':
      return z.string({ error: expected(field, 'a user id (a string)') });
    case 'reference':
      return z.string({ error: expected(field, `the id of a ${field} (a string)`) });
    case 'boolean':
      return z.boolean({ error: expected(field, 'true or false') });
    case 'string':
      return z.string({ error: expected(field, 'a string') });
    case 'number':
      return z.number({ error: expected(field, 'a number') }).finite();
    case 'count': {
      const error = expected(field, 'a whole number >= 0');
      return z.number({ error }).int({ error }).min(0, { error });
    }
    case 'level':
      return z.enum(LEVELS, { error: expected(field, `one of ${LEVELS.join(', ')}`) });
    case 'priority':
      return z.enum(PRIORITIES, { error: expected(field, `one of ${PRIORITIES.join(', ')}`) });
    case 'risk':
      return z.enum(RISKS, { error: expected(field, `one of ${RISKS.join(', ')}`) });
    case 'status':
      return z.union([z.number().finite(), z.string()], {
        error: expected(field, 'a number or a string'),
      });
    case 'date': {
      const error = expected(field, 'an ISO 8601 date such as 2017-10-04T20:15:37Z');
      return z.string({ error }).transform((value, ctx) => {
        const normalized = normalizeIsoDate(value);
        if (normalized === null) {
          ctx.addIssue({ code: 'custom', message: error({ input: value }) });
          return z.NEVER;
        }
        return normalized;
      });
    }
  }
}

/** The `raw` part of a write body: upstream fields the unified model lacks. */
export const rawWriteSchema = z.strictObject({
  object: z.record(z.string(), z.unknown(), { error: 'raw.object must be a JSON object' }),
});

function writeSchemaOf(type: UnifiedType) {
  const shape: Record<string, z.ZodType> = {};
  for (const [field, kind] of Object.entries(TYPE_FIELDS[type])) {
    shape[field] = writeKind(field, kind).nullable().optional();
  }
  return z.strictObject({ ...shape, raw: rawWriteSchema.optional() });
}

export const WRITE_SCHEMAS = Object.fromEntries(
  UNIFIED_TYPES.map((type) => [type, writeSchemaOf(type)]),
) as unknown as Record<UnifiedType, z.ZodType<Record<string, unknown>>>;

/** A generic object's body is the upstream record itself: any JSON object. */
export const genericWriteSchema = z.record(z.string(), z.unknown());

/**
 * Turns zod issues into one plain sentence each, naming the field:
 * `unknown field(s): foo, bar` or `impact must be one of low, medium, high`.
 */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? ` in ${issue.path.join('.')}` : '';
      return `unknown field${issue.keys.length > 1 ? 's' : ''}${where}: ${issue.keys.join(', ')}`;
    }
    const path = issue.path.join('.');
    return issue.message.startsWith(String(issue.path[0] ?? '\u0000')) || !path
      ? issue.message
      : `${path}: ${issue.message}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Events, webhooks, errors

export const EVENT_TYPES = ['add', 'update', 'delete'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const eventSchema = z.looseObject({
  id: z.string(),
  account: z.number().int(),
  type: z.enum(EVENT_TYPES),
  action: z.string(),
  modified: z.string(),
  ip: z.string().nullable(),
  user_id: z.string().nullable(),
  api: z.literal('itsm'),
  metadata: z.looseObject({ id: z.string(), type: z.string(), api: z.string() }),
  previous_metadata: z.looseObject({ id: z.string(), type: z.string() }).optional(),
});
export type ItsmEvent = z.infer<typeof eventSchema>;

export const eventListSchema = z.object({
  objects: z.array(eventSchema),
  cursor: z.string(),
  remaining: z.number().int().min(0),
  count: z.number().int().min(0),
  type: z.literal('object_list'),
  api: z.string(),
});
export type EventList = z.infer<typeof eventListSchema>;

export const latestCursorSchema = z.object({ cursor: z.string() });

export const webhookSchema = z.object({ id: z.number().int(), url: z.string() });
export type Webhook = z.infer<typeof webhookSchema>;

export const webhookNotificationSchema = z.object({
  account: z.number().int(),
  subscription: z.number().int().optional(),
});
export type WebhookNotification = z.infer<typeof webhookNotificationSchema>;

export const ERROR_CODES = {
  invalid_parameters: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  rate_limit_exceeded: 429,
  internal_error: 500,
  /** The connector's ServiceNow instance is down, slow or refused the connector itself. */
  service_unavailable: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export const errorBodySchema = z.looseObject({
  error_code: z.string(),
  message: z.string(),
  id: z.string().optional(),
  status_code: z.number().int(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
