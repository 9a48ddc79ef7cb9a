// The unified ITSM object model as data: which fields each type has and what kind of value each
// field holds. The zod schemas, the embedded server's validation and raw mapping, and the rule
// checker all read this one table, so a field is added in exactly one place.

export const OBJECT_TYPES = [
  'incident',
  'problem',
  'change',
  'article',
  'asset',
  'object',
] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

export const UNIFIED_TYPES = ['incident', 'problem', 'change', 'article', 'asset'] as const;
export type UnifiedType = (typeof UNIFIED_TYPES)[number];

export const LEVELS = ['low', 'medium', 'high'] as const;
export const PRIORITIES = ['low', 'medium', 'high', 'critical'] as const;
/**
 * A change's risk, lowest first. ServiceNow keeps it as a choice (1 very high .. 4 low); the seed
 * names the field only ("Risk of the change"), so the words are the project's, taken from the
 * instance's labels.
 */
export const RISKS = ['low', 'moderate', 'high', 'very high'] as const;

/**
 * - `reference`: id of an incident, problem or change in the same account (named by the field)
 * - `user`: written as a user id, read back as a user object
 * - `level`: impact and urgency; `priority`: level plus critical; `risk`: a change's risk
 * - `count`: integer >= 0; `date`: ISO 8601; `status`: number or string
 */
export type FieldKind =
  | 'reference'
  | 'user'
  | 'boolean'
  | 'string'
  | 'number'
  | 'count'
  | 'date'
  | 'level'
  | 'priority'
  | 'risk'
  | 'status';

const TASK_FIELDS = {
  requester: 'user',
  responder: 'user',
  active: 'boolean',
  assignee: 'user',
  category: 'string',
  escalation: 'count',
  impact: 'level',
  priority: 'priority',
  status: 'status',
  urgency: 'level',
  description: 'string',
} as const satisfies Record<string, FieldKind>;

export const TYPE_FIELDS = {
  incident: { change: 'reference', problem: 'reference', ...TASK_FIELDS, due_date: 'date' },
  problem: { change: 'reference', incident: 'reference', ...TASK_FIELDS, due_date: 'date' },
  change: {
    problem: 'reference',
    incident: 'reference',
    ...TASK_FIELDS,
    start_date: 'date',
    end_date: 'date',
    risk: 'risk',
  },
  article: {
    author: 'user',
    active: 'boolean',
    category: 'string',
    rating: 'number',
    roles: 'string',
    topic: 'string',
    text: 'string',
    description: 'string',
  },
  asset: {
    active: 'boolean',
    assignee: 'user',
    department: 'string',
    model: 'string',
    name: 'string',
    quantity: 'count',
    description: 'string',
  },
} as const satisfies Record<UnifiedType, Record<string, FieldKind>>;

/** Fields every object carries that clients cannot write. */
export const READ_ONLY_FIELDS = ['id', 'type', 'api', 'created', 'modified', 'href'] as const;

/** Values the server fills in on create when the body leaves them out. */
export const CREATE_DEFAULTS: Readonly<Record<string, unknown>> = { active: true, escalation: 0 };

/** Collection path segment of each type (`itsm/incidents`), and the singular create path. */
export const COLLECTION_PATHS: Record<ObjectType, { plural: string; singular: string }> = {
  incident: { plural: 'incidents', singular: 'incident' },
  problem: { plural: 'problems', singular: 'problem' },
  change: { plural: 'changes', singular: 'change' },
  article: { plural: 'articles', singular: 'article' },
  asset: { plural: 'assets', singular: 'asset' },
  object: { plural: 'objects', singular: 'object' },
};

export function fieldsOf(type: UnifiedType): Record<string, FieldKind> {
  return TYPE_FIELDS[type];
}

export function isUnifiedType(value: string): value is UnifiedType {
  return (UNIFIED_TYPES as readonly string[]).includes(value);
}

/** Whether a stored value is one of the risk words (stores may hold free text written earlier). */
export function isRisk(value: unknown): value is (typeof RISKS)[number] {
  return (RISKS as readonly unknown[]).includes(value);
}

export function isObjectType(value: string): value is ObjectType {
  return (OBJECT_TYPES as readonly string[]).includes(value);
}
