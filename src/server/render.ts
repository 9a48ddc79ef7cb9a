// Stored objects to API JSON: user ids expanded to user objects from the account's team users,
// `href` built from the public base URL, and `raw` (the upstream record) when asked for. One
// batch lookup per call for users and one for references, however many objects are rendered.
import {
  COLLECTION_PATHS,
  type FieldKind,
  isRisk,
  TYPE_FIELDS,
  type UnifiedType,
} from '../itsm/fields.js';
import type { User } from '../itsm/schemas.js';
import type { ItsmStore, StoredObject } from '../storage/port.js';
import { toRawRecord, toUpstreamDate } from './raw.js';
import { USER_RAW_TYPE, userFromRecord, userIdToSysId } from './users.js';

export interface RenderOptions {
  /** `https://host` (no trailing slash) used to build `href`. */
  baseUrl: string;
  includeRaw: boolean;
}

export function objectHref(baseUrl: string, object: StoredObject): string {
  const path = `${baseUrl}/v1/accounts/${object.account}/itsm/${COLLECTION_PATHS[object.type].plural}/${object.id}`;
  return object.rawType === null ? path : `${path}?raw_type=${encodeURIComponent(object.rawType)}`;
}

function kindsOf(object: StoredObject): Record<string, FieldKind> {
  return object.type === 'object' ? {} : TYPE_FIELDS[object.type as UnifiedType];
}

/** A generic object's upstream record: its fields, with the sys_id and times the server keeps. */
export function genericRecord(object: StoredObject): Record<string, unknown> {
  // A remote system of record's own record is shown as it came.
  if (object.upstreamRecord) return { ...object.upstreamRecord };
  return {
    ...object.fields,
    sys_id: object.upstreamId,
    sys_created_on: toUpstreamDate(object.created),
    sys_updated_on: toUpstreamDate(object.modified),
  };
}

/** Referenced object id -> its sys_id, for the `raw` records of these objects (one batch read). */
export async function referenceSysIdsOf(
  store: ItsmStore,
  objects: readonly StoredObject[],
): Promise<Map<string, string>> {
  const ids = new Set<string>();
  for (const object of objects) {
    for (const [field, kind] of Object.entries(kindsOf(object))) {
      const value = object.fields[field];
      if (kind === 'reference' && typeof value === 'string' && value !== '') ids.add(value);
    }
  }
  const sysIds = new Map<string, string>();
  const first = objects[0];
  if (first && ids.size > 0) {
    for (const target of await store.getObjects(first.account, [...ids])) {
      sysIds.set(target.id, target.upstreamId);
    }
  }
  return sysIds;
}

export async function renderObjects(
  store: ItsmStore,
  objects: readonly StoredObject[],
  options: RenderOptions,
): Promise<Record<string, unknown>[]> {
  const first = objects[0];
  if (!first) return [];
  const account = first.account;

  const sysIds = new Set<string>();
  for (const object of objects) {
    for (const [field, kind] of Object.entries(kindsOf(object))) {
      const value = object.fields[field];
      if (kind !== 'user' || typeof value !== 'string' || value === '') continue;
      const sysId = userIdToSysId(value);
      if (sysId) sysIds.add(sysId);
    }
  }
  const users = new Map<string, User>();
  for (const record of await store.findByUpstreamIds(account, USER_RAW_TYPE, [...sysIds])) {
    users.set(record.upstreamId, userFromRecord(record));
  }
  const referenceSysIds = options.includeRaw
    ? await referenceSysIdsOf(store, objects)
    : new Map<string, string>();

  return objects.map((object) => {
    const href = objectHref(options.baseUrl, object);
    if (object.type === 'object') {
      return {
        id: object.id,
        type: 'object',
        api: 'itsm',
        raw: { type: object.rawType, id: object.upstreamId, object: genericRecord(object) },
        href,
      };
    }
    const body: Record<string, unknown> = {
      id: object.id,
      type: object.type,
      api: 'itsm',
      created: object.created,
      modified: object.modified,
    };
    for (const [field, kind] of Object.entries(kindsOf(object))) {
      const value = object.fields[field];
      if (value === undefined || value === null) continue;
      // A risk stored while it was free text ("medium", a face's "3"): no word of the unified
      // model, so left out, as an instance's code outside 1-4 is; `raw` still shows it.
      if (kind === 'risk' && !isRisk(value)) continue;
      if (kind === 'user') {
        const sysId = userIdToSysId(String(value));
        body[field] = (sysId && users.get(sysId)) ?? { type: 'user', api: 'team', id: value };
      } else {
        body[field] = value;
      }
    }
    if (options.includeRaw) {
      body.raw = toRawRecord(object as StoredObject & { type: UnifiedType }, referenceSysIds);
    }
    body.href = href;
    return body;
  });
}

export async function renderObject(
  store: ItsmStore,
  object: StoredObject,
  options: RenderOptions,
): Promise<Record<string, unknown>> {
  const [body] = await renderObjects(store, [object], options);
  if (!body) throw new Error(`rendering ${object.id} produced nothing`);
  return body;
}

/**
 * The object as a request without `X-Kloudless-Raw-Data` sees it: `raw` dropped, except on
 * generic objects, whose data lives in `raw`. Lets one render (with raw) serve both the event
 * log and the response.
 */
export function withoutRaw(body: Record<string, unknown>): Record<string, unknown> {
  if (body.type === 'object' || !('raw' in body)) return body;
  const { raw: _raw, ...rest } = body;
  return rest;
}
