// What `itsm-rules test` reads from an event file: either a Kloudless event as the ITSM API's
// event log returns it ({id, account, type, metadata, previous_metadata, ...}), or the short
// form {type, action?, object, previous?} written by hand.
import { describeBadAccountId, parseAccountId } from '../itsm/account-id.js';
import { isObjectType, type ObjectType } from '../itsm/fields.js';
import { type EngineEvent, type EngineEventType, eventPlanKey } from './context.js';

export interface EventInput {
  event: EngineEvent;
  objectType: ObjectType;
  object: Record<string, unknown> | null;
  previous: Record<string, unknown> | null;
  key: string;
}

export class EventInputError extends Error {
  readonly code = 'ENGINE_EVENT_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'EventInputError';
  }
}

const EVENT_TYPES: readonly EngineEventType[] = ['add', 'update', 'delete', 'schedule'];
/** Kloudless and ServiceNow action names, as the event type they mean. */
const ACTIONS: Record<string, EngineEventType> = {
  add: 'add',
  insert: 'add',
  create: 'add',
  created: 'add',
  update: 'update',
  updated: 'update',
  delete: 'delete',
  deleted: 'delete',
  schedule: 'schedule',
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function toEventInput(data: unknown, now: Date): EventInput {
  if (!isRecord(data)) {
    throw new EventInputError(
      'expected a JSON object: a Kloudless event, or {type, object, previous}',
    );
  }
  const kloudless = 'metadata' in data;
  const object = kloudless ? data.metadata : data.object;
  const previous = kloudless ? data.previous_metadata : data.previous;
  if (!isRecord(object)) {
    throw new EventInputError(
      kloudless
        ? 'metadata must be the object (a JSON object)'
        : 'object is required: the object as the ITSM API returns it',
    );
  }
  if (previous !== undefined && previous !== null && !isRecord(previous)) {
    throw new EventInputError(
      `${kloudless ? 'previous_metadata' : 'previous'} must be an object or null`,
    );
  }

  let type: EngineEventType | undefined;
  let objectType = typeof object.type === 'string' ? object.type : undefined;
  const rawType = typeof data.type === 'string' ? data.type : undefined;
  const action = typeof data.action === 'string' ? ACTIONS[data.action.toLowerCase()] : undefined;
  if (rawType && (EVENT_TYPES as readonly string[]).includes(rawType))
    type = rawType as EngineEventType;
  else if (rawType && isObjectType(rawType)) {
    objectType ??= rawType;
    type = action;
  } else if (rawType === undefined) type = action;
  if (type === undefined) {
    throw new EventInputError(
      `type must be add, update, delete or schedule (or an object type, with the event type in action), got ${JSON.stringify(data.type ?? null)}`,
    );
  }
  if (objectType === undefined || !isObjectType(objectType)) {
    throw new EventInputError(
      `object.type must be one of incident, problem, change, article, asset, object, got ${JSON.stringify(objectType ?? null)}`,
    );
  }
  const account = data.account === undefined ? 1 : parseAccountId(data.account);
  if (account === null) throw new EventInputError(describeBadAccountId('account', data.account));
  const id =
    data.id === undefined ? (type === 'schedule' ? now.toISOString() : 'test') : String(data.id);
  const at = typeof data.modified === 'string' ? data.modified : now.toISOString();
  return {
    event: {
      id,
      type,
      account,
      at,
      user_id: typeof data.user_id === 'string' ? data.user_id : null,
    },
    objectType,
    object,
    previous: isRecord(previous) ? previous : null,
    key: eventPlanKey(account, id),
  };
}
