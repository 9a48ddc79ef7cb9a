// The storage contract: one suite that every adapter of the storage port runs unchanged (the
// unjs/db0 pattern). It speaks only the `ItsmStore` interface and the port's named errors, so a
// D1 adapter can call `describeStorageContract('d1', openD1Store)` and prove the same behaviour.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CommitInput,
  IdempotencyConflictError,
  type IdempotencyRecord,
  type ItsmStore,
  type NewEvent,
  StaleWriteError,
  type StoredObject,
} from '../../src/storage/port.js';

const ACCOUNT = 1;
const OTHER_ACCOUNT = 2;
/** Large enough that retention never drops an event unless a test says so. */
const KEEP_ALL = 1_000_000;

let nextId = 0;
/** Ids are unique across the whole run: an adapter may treat object ids as globally unique. */
const uniqueId = (prefix = 'obj') => `${prefix}-${String(++nextId).padStart(6, '0')}`;

/** A minute after a fixed instant, so `created` grows with the order of creation. */
const timestamp = (minute: number) => new Date(Date.UTC(2024, 0, 1, 0, minute)).toISOString();

export function makeObject(overrides: Partial<StoredObject> = {}): StoredObject {
  const id = overrides.id ?? uniqueId();
  return {
    account: ACCOUNT,
    id,
    type: 'incident',
    rawType: null,
    upstreamId: `sys-${id}`,
    number: `INC${id}`,
    fields: { description: `object ${id}`, priority: 'high', tags: ['a', 'b'], nested: { n: 1 } },
    extra: { u_custom: 'x' },
    created: timestamp(0),
    modified: timestamp(0),
    version: 1,
    ...overrides,
  };
}

export function makeEvent(overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    account: ACCOUNT,
    type: 'add',
    action: '+',
    modified: timestamp(1),
    ip: '127.0.0.1',
    userId: null,
    metadata: { id: 'x', type: 'incident' },
    ...overrides,
  };
}

export function makeIdempotencyRecord(
  overrides: Partial<IdempotencyRecord> = {},
): IdempotencyRecord {
  return {
    account: ACCOUNT,
    key: uniqueId('key'),
    requestHash: 'sha256-of-request',
    status: 201,
    body: '{"id":"x"}',
    createdAt: 1_700_000_000_000,
    ...overrides,
  };
}

/**
 * Runs the storage contract against one adapter. `open` must return a new, empty store each
 * time it is called; the suite closes every store it opens.
 */
export function describeStorageContract(name: string, open: () => Promise<ItsmStore>): void {
  describe(`storage contract: ${name}`, () => {
    let store: ItsmStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    /** Creates the object with an `add` event; returns the event seq. */
    const create = async (object: StoredObject, extra: Partial<CommitInput> = {}) => {
      const { eventSeq } = await store.commit({
        write: { kind: 'create', object },
        event: makeEvent({ account: object.account, metadata: { id: object.id } }),
        retention: KEEP_ALL,
        ...extra,
      });
      return eventSeq;
    };

    const createMany = async (objects: StoredObject[]) => {
      for (const object of objects) await create(object);
    };

    const allEvents = async (account: number) =>
      (await store.listEvents(account, 0, 1_000_000)).events;

    const sortById = (objects: StoredObject[]) =>
      [...objects].sort((a, b) => a.id.localeCompare(b.id));

    describe('objects', () => {
      it('returns a created object exactly as it was written', async () => {
        const object = makeObject({ extra: { u_flag: true, u_count: 3 } });
        await create(object);
        expect(await store.getObject(ACCOUNT, object.id)).toEqual(object);
      });

      it('returns a generic object with its raw type and a null number', async () => {
        const object = makeObject({
          type: 'object',
          rawType: 'sys_user',
          number: null,
          fields: { name: 'Ann' },
        });
        await create(object);
        expect(await store.getObject(ACCOUNT, object.id)).toEqual(object);
      });

      it('returns null for an unknown id and for an object of another account', async () => {
        const object = makeObject();
        await create(object);
        expect(await store.getObject(ACCOUNT, uniqueId('missing'))).toBeNull();
        expect(await store.getObject(OTHER_ACCOUNT, object.id)).toBeNull();
      });

      it('getObjects returns the existing objects among the ids of the account, each once', async () => {
        const [a, b, c] = [makeObject(), makeObject(), makeObject()];
        const foreign = makeObject({ account: OTHER_ACCOUNT });
        for (const object of [a, b, c, foreign]) await create(object);
        const found = await store.getObjects(ACCOUNT, [
          c.id,
          a.id,
          uniqueId('missing'),
          foreign.id,
          a.id,
        ]);
        expect(sortById(found)).toEqual(sortById([a, c]));
        expect(await store.getObjects(ACCOUNT, [])).toEqual([]);
      });

      it('getObjects finds more than 500 ids at once', async () => {
        const objects = Array.from({ length: 1001 }, () => makeObject());
        await createMany(objects);
        const found = await store.getObjects(
          ACCOUNT,
          objects.map((o) => o.id),
        );
        expect(found).toHaveLength(1001);
        expect(sortById(found)).toEqual(sortById(objects));
      });

      it('lists a collection oldest first, not by id, with the total of the whole collection', async () => {
        // Ids descend while creation order ascends, so an id order would show up reversed.
        const objects = [5, 4, 3, 2, 1].map((n, minute) =>
          makeObject({
            id: uniqueId(`z${n}`),
            created: timestamp(minute),
            modified: timestamp(minute),
          }),
        );
        for (const object of objects) await create(object);
        const { total, objects: listed } = await store.listObjects({
          account: ACCOUNT,
          type: 'incident',
          offset: 0,
          limit: 100,
        });
        expect(total).toBe(5);
        expect(listed.map((o) => o.id)).toEqual(objects.map((o) => o.id));
        expect(listed[0]).toEqual(objects[0]);
      });

      it('pages a collection with offset and limit, stable across pages', async () => {
        const objects = Array.from({ length: 7 }, () => makeObject());
        for (const object of objects) await create(object);
        const page = (offset: number, limit: number) =>
          store.listObjects({ account: ACCOUNT, type: 'incident', offset, limit });

        const first = await page(0, 3);
        const second = await page(3, 3);
        const third = await page(6, 3);
        const beyond = await page(10, 3);
        expect([first.total, second.total, third.total, beyond.total]).toEqual([7, 7, 7, 7]);
        expect([first, second, third].flatMap((p) => p.objects.map((o) => o.id))).toEqual(
          objects.map((o) => o.id),
        );
        expect(third.objects).toHaveLength(1);
        expect(beyond.objects).toEqual([]);
      });

      it('lists only the objects of the asked account, type and raw type', async () => {
        const incident = makeObject();
        const problem = makeObject({ type: 'problem', number: 'PRB1' });
        const foreignIncident = makeObject({ account: OTHER_ACCOUNT });
        const user = makeObject({ type: 'object', rawType: 'sys_user', number: null });
        const group = makeObject({ type: 'object', rawType: 'sys_user_group', number: null });
        for (const object of [incident, problem, foreignIncident, user, group])
          await create(object);

        const list = async (account: number, type: StoredObject['type'], rawType?: string) => {
          const result = await store.listObjects({
            account,
            type,
            ...(rawType !== undefined && { rawType }),
            offset: 0,
            limit: 100,
          });
          return { total: result.total, ids: result.objects.map((o) => o.id) };
        };
        expect(await list(ACCOUNT, 'incident')).toEqual({ total: 1, ids: [incident.id] });
        expect(await list(ACCOUNT, 'problem')).toEqual({ total: 1, ids: [problem.id] });
        expect(await list(OTHER_ACCOUNT, 'incident')).toEqual({
          total: 1,
          ids: [foreignIncident.id],
        });
        expect(await list(ACCOUNT, 'object', 'sys_user')).toEqual({ total: 1, ids: [user.id] });
        expect(await list(ACCOUNT, 'object', 'sys_user_group')).toEqual({
          total: 1,
          ids: [group.id],
        });
        expect(await list(ACCOUNT, 'object', 'cmdb_ci')).toEqual({ total: 0, ids: [] });
        expect(await list(ACCOUNT, 'change')).toEqual({ total: 0, ids: [] });
      });

      it('finds generic objects by upstream id within one account and raw type', async () => {
        const ann = makeObject({
          type: 'object',
          rawType: 'sys_user',
          number: null,
          upstreamId: 'sys-ann',
        });
        const bob = makeObject({
          type: 'object',
          rawType: 'sys_user',
          number: null,
          upstreamId: 'sys-bob',
        });
        const group = makeObject({
          type: 'object',
          rawType: 'sys_user_group',
          number: null,
          upstreamId: 'sys-ann',
        });
        const foreign = makeObject({
          account: OTHER_ACCOUNT,
          type: 'object',
          rawType: 'sys_user',
          number: null,
          upstreamId: 'sys-bob',
        });
        for (const object of [ann, bob, group, foreign]) await create(object);

        const found = await store.findByUpstreamIds(ACCOUNT, 'sys_user', [
          'sys-bob',
          'sys-ann',
          'sys-nobody',
        ]);
        expect(sortById(found)).toEqual(sortById([ann, bob]));
        expect(await store.findByUpstreamIds(ACCOUNT, 'sys_user', [])).toEqual([]);
        expect(await store.findByUpstreamIds(ACCOUNT, 'cmdb_ci', ['sys-ann'])).toEqual([]);
      });

      it('finds more than 500 upstream ids at once', async () => {
        const users = Array.from({ length: 1001 }, (_, i) =>
          makeObject({
            type: 'object',
            rawType: 'sys_user',
            number: null,
            upstreamId: `sys-user-${i}`,
          }),
        );
        await createMany(users);
        const wanted = [...users.map((u) => u.upstreamId), 'sys-nobody'];
        const found = await store.findByUpstreamIds(ACCOUNT, 'sys_user', wanted);
        expect(found).toHaveLength(1001);
        expect(sortById(found)).toEqual(sortById(users));
      });
    });

    describe('counters', () => {
      it('counts 1, 2, 3 per account and name, independently', async () => {
        expect(await store.nextCounter(ACCOUNT, 'INC')).toBe(1);
        expect(await store.nextCounter(ACCOUNT, 'INC')).toBe(2);
        expect(await store.nextCounter(ACCOUNT, 'PRB')).toBe(1);
        expect(await store.nextCounter(OTHER_ACCOUNT, 'INC')).toBe(1);
        expect(await store.nextCounter(ACCOUNT, 'INC')).toBe(3);
        expect(await store.nextCounter(OTHER_ACCOUNT, 'INC')).toBe(2);
        expect(await store.nextCounter(ACCOUNT, 'PRB')).toBe(2);
      });
    });

    describe('commit', () => {
      it('appends an event with an increasing seq for each create, update and delete', async () => {
        const object = makeObject();
        const createSeq = await create(object);
        const updated = {
          ...object,
          fields: { description: 'changed' },
          modified: timestamp(5),
          version: 2,
        };
        const updateEvent = makeEvent({
          type: 'update',
          action: 'u',
          metadata: { id: object.id, description: 'changed' },
          previousMetadata: { id: object.id, description: object.fields.description },
          userId: 'uUSER',
        });
        const { eventSeq: updateSeq } = await store.commit({
          write: { kind: 'update', object: updated, expectedVersion: 1 },
          event: updateEvent,
          retention: KEEP_ALL,
        });
        const deleteEvent = makeEvent({
          type: 'delete',
          action: '-',
          ip: null,
          metadata: { id: object.id },
        });
        const { eventSeq: deleteSeq } = await store.commit({
          write: { kind: 'delete', account: ACCOUNT, id: object.id, expectedVersion: 2 },
          event: deleteEvent,
          retention: KEEP_ALL,
        });

        expect(createSeq).toBeGreaterThan(0);
        expect(updateSeq).toBeGreaterThan(createSeq);
        expect(deleteSeq).toBeGreaterThan(updateSeq);
        const events = await allEvents(ACCOUNT);
        expect(events.map((e) => [e.seq, e.type])).toEqual([
          [createSeq, 'add'],
          [updateSeq, 'update'],
          [deleteSeq, 'delete'],
        ]);
        expect(events[1]).toEqual({ ...updateEvent, seq: updateSeq });
        expect(events[2]).toEqual({ ...deleteEvent, seq: deleteSeq });
      });

      it('stores the new fields and version of an update', async () => {
        const object = makeObject();
        await create(object);
        const updated: StoredObject = {
          ...object,
          fields: { description: 'changed', priority: 'low' },
          extra: { u_custom: 'y' },
          modified: timestamp(9),
          version: 2,
        };
        await store.commit({
          write: { kind: 'update', object: updated, expectedVersion: 1 },
          event: makeEvent({ type: 'update' }),
          retention: KEEP_ALL,
        });
        expect(await store.getObject(ACCOUNT, object.id)).toEqual(updated);
      });

      it('removes a deleted object from reads and lists', async () => {
        const [kept, gone] = [makeObject(), makeObject()];
        await create(kept);
        await create(gone);
        await store.commit({
          write: { kind: 'delete', account: ACCOUNT, id: gone.id, expectedVersion: 1 },
          event: makeEvent({ type: 'delete' }),
          retention: KEEP_ALL,
        });
        expect(await store.getObject(ACCOUNT, gone.id)).toBeNull();
        const { total, objects } = await store.listObjects({
          account: ACCOUNT,
          type: 'incident',
          offset: 0,
          limit: 10,
        });
        expect(total).toBe(1);
        expect(objects.map((o) => o.id)).toEqual([kept.id]);
      });

      it('rejects an update with a wrong expected version and changes nothing', async () => {
        const object = makeObject();
        await create(object);
        const before = await store.eventBounds(ACCOUNT);
        const key = uniqueId('key');
        const attempt = store.commit({
          write: {
            kind: 'update',
            object: { ...object, fields: { description: 'lost update' }, version: 6 },
            expectedVersion: 5,
          },
          event: makeEvent({ type: 'update' }),
          idempotency: makeIdempotencyRecord({ key }),
          retention: KEEP_ALL,
        });
        await expect(attempt).rejects.toBeInstanceOf(StaleWriteError);
        await expect(attempt).rejects.toMatchObject({
          code: 'STORE_STALE_WRITE',
          account: ACCOUNT,
          objectId: object.id,
        });

        expect(await store.getObject(ACCOUNT, object.id)).toEqual(object);
        expect(await allEvents(ACCOUNT)).toHaveLength(1);
        expect(await store.eventBounds(ACCOUNT)).toEqual(before);
        expect(await store.getIdempotencyRecord(ACCOUNT, key)).toBeNull();
      });

      it('rejects an update of a missing object with StaleWriteError', async () => {
        const ghost = makeObject();
        await expect(
          store.commit({
            write: { kind: 'update', object: { ...ghost, version: 2 }, expectedVersion: 1 },
            event: makeEvent({ type: 'update' }),
            retention: KEEP_ALL,
          }),
        ).rejects.toBeInstanceOf(StaleWriteError);
        expect(await store.getObject(ACCOUNT, ghost.id)).toBeNull();
        expect(await allEvents(ACCOUNT)).toEqual([]);
      });

      it('rejects a delete of a missing object with StaleWriteError and appends no event', async () => {
        await expect(
          store.commit({
            write: {
              kind: 'delete',
              account: ACCOUNT,
              id: uniqueId('missing'),
              expectedVersion: 1,
            },
            event: makeEvent({ type: 'delete' }),
            retention: KEEP_ALL,
          }),
        ).rejects.toBeInstanceOf(StaleWriteError);
        expect(await allEvents(ACCOUNT)).toEqual([]);
        expect((await store.eventBounds(ACCOUNT)).globalLatest).toBe(0);
      });

      it('rejects a delete with a wrong expected version and keeps the object', async () => {
        const object = makeObject();
        await create(object);
        await expect(
          store.commit({
            write: { kind: 'delete', account: ACCOUNT, id: object.id, expectedVersion: 2 },
            event: makeEvent({ type: 'delete' }),
            retention: KEEP_ALL,
          }),
        ).rejects.toBeInstanceOf(StaleWriteError);
        expect(await store.getObject(ACCOUNT, object.id)).toEqual(object);
        expect(await allEvents(ACCOUNT)).toHaveLength(1);
      });

      it('rejects a delete of an object of another account', async () => {
        const object = makeObject();
        await create(object);
        await expect(
          store.commit({
            write: { kind: 'delete', account: OTHER_ACCOUNT, id: object.id, expectedVersion: 1 },
            event: makeEvent({ account: OTHER_ACCOUNT, type: 'delete' }),
            retention: KEEP_ALL,
          }),
        ).rejects.toBeInstanceOf(StaleWriteError);
        expect(await store.getObject(ACCOUNT, object.id)).toEqual(object);
        expect(await allEvents(OTHER_ACCOUNT)).toEqual([]);
      });
    });

    describe('events', () => {
      it('lists the accounts that hold events', async () => {
        expect(await store.listEventAccounts()).toEqual([]);
        await create(makeObject({ account: OTHER_ACCOUNT }));
        await create(makeObject());
        await create(makeObject());
        expect(await store.listEventAccounts()).toEqual(
          [ACCOUNT, OTHER_ACCOUNT].sort((a, b) => a - b),
        );
      });

      it('lists the events after a seq, oldest first, with a limit and the count remaining', async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 5; i++) seqs.push(await create(makeObject()));
        await create(makeObject({ account: OTHER_ACCOUNT }));
        const [s1, s2, s3, s4, s5] = seqs as [number, number, number, number, number];

        const all = await store.listEvents(ACCOUNT, 0, 100);
        expect(all.events.map((e) => e.seq)).toEqual(seqs);
        expect(all.remaining).toBe(0);
        expect(all.events.every((e) => e.account === ACCOUNT)).toBe(true);

        const firstPage = await store.listEvents(ACCOUNT, 0, 2);
        expect(firstPage.events.map((e) => e.seq)).toEqual([s1, s2]);
        expect(firstPage.remaining).toBe(3);

        const afterSecond = await store.listEvents(ACCOUNT, s2, 2);
        expect(afterSecond.events.map((e) => e.seq)).toEqual([s3, s4]);
        expect(afterSecond.remaining).toBe(1);

        const last = await store.listEvents(ACCOUNT, s4, 2);
        expect(last.events.map((e) => e.seq)).toEqual([s5]);
        expect(last.remaining).toBe(0);

        expect(await store.listEvents(ACCOUNT, s5, 2)).toEqual({
          events: [],
          remaining: 0,
          trimmedThrough: 0,
        });
      });

      it('returns each event as it was committed, with its account and seq', async () => {
        const event = makeEvent({
          type: 'update',
          action: 'u',
          userId: 'uABC',
          ip: '10.0.0.7',
          metadata: { id: 'x', raw: { object: { sys_id: 's' } }, list: [1, 2] },
          previousMetadata: { id: 'x', priority: 'low' },
        });
        const object = makeObject();
        await create(object);
        const { eventSeq } = await store.commit({
          write: { kind: 'update', object: { ...object, version: 2 }, expectedVersion: 1 },
          event,
          retention: KEEP_ALL,
        });
        const { events } = await store.listEvents(ACCOUNT, eventSeq - 1, 1);
        expect(events).toEqual([{ ...event, seq: eventSeq }]);
      });

      it('keeps only the newest events beyond the retention and reports the newest dropped seq', async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 5; i++) seqs.push(await create(makeObject(), { retention: 3 }));

        const { events, remaining, trimmedThrough } = await store.listEvents(ACCOUNT, 0, 100);
        expect(events.map((e) => e.seq)).toEqual(seqs.slice(2));
        expect(remaining).toBe(0);
        expect(trimmedThrough).toBe(seqs[1]);
        const bounds = await store.eventBounds(ACCOUNT);
        expect(bounds.trimmedThrough).toBe(seqs[1]);
        expect(bounds.latest).toBe(seqs[4]);
        expect(bounds.globalLatest).toBe(seqs[4]);
      });

      it('applies retention per account', async () => {
        const foreignSeqs: number[] = [];
        for (let i = 0; i < 3; i++)
          foreignSeqs.push(await create(makeObject({ account: OTHER_ACCOUNT })));
        for (let i = 0; i < 4; i++) await create(makeObject(), { retention: 2 });

        expect((await allEvents(OTHER_ACCOUNT)).map((e) => e.seq)).toEqual(foreignSeqs);
        expect((await store.eventBounds(OTHER_ACCOUNT)).trimmedThrough).toBe(0);
        expect(await allEvents(ACCOUNT)).toHaveLength(2);
      });

      it('reports zero bounds for an account with no events', async () => {
        expect(await store.eventBounds(ACCOUNT)).toEqual({
          trimmedThrough: 0,
          latest: 0,
          globalLatest: 0,
        });
      });

      it('reports the account latest and the global latest across two accounts', async () => {
        const a1 = await create(makeObject());
        const b1 = await create(makeObject({ account: OTHER_ACCOUNT }));
        const a2 = await create(makeObject());
        const b2 = await create(makeObject({ account: OTHER_ACCOUNT }));

        expect(await store.eventBounds(ACCOUNT)).toEqual({
          trimmedThrough: 0,
          latest: a2,
          globalLatest: b2,
        });
        expect(await store.eventBounds(OTHER_ACCOUNT)).toEqual({
          trimmedThrough: 0,
          latest: b2,
          globalLatest: b2,
        });
        expect(await store.eventBounds(3)).toEqual({
          trimmedThrough: 0,
          latest: 0,
          globalLatest: b2,
        });
        expect([a1, b1, a2, b2]).toEqual([...[a1, b1, a2, b2]].sort((x, y) => x - y));
        expect(new Set([a1, b1, a2, b2]).size).toBe(4);
      });
    });

    describe('idempotency records', () => {
      it('stores the idempotency record in the same commit', async () => {
        const record = makeIdempotencyRecord({ status: 201, body: '{"id":"abc"}' });
        await create(makeObject(), { idempotency: record });
        expect(await store.getIdempotencyRecord(ACCOUNT, record.key)).toEqual(record);
      });

      it('returns null for an unknown key and for the key of another account', async () => {
        const record = makeIdempotencyRecord();
        await create(makeObject(), { idempotency: record });
        expect(await store.getIdempotencyRecord(ACCOUNT, uniqueId('key'))).toBeNull();
        expect(await store.getIdempotencyRecord(OTHER_ACCOUNT, record.key)).toBeNull();
      });

      it('rejects a second commit with the same key and stores nothing of it', async () => {
        const record = makeIdempotencyRecord();
        const first = makeObject();
        await create(first, { idempotency: record });
        const bounds = await store.eventBounds(ACCOUNT);

        const second = makeObject();
        const attempt = create(second, {
          idempotency: {
            ...record,
            requestHash: 'another-hash',
            status: 200,
            body: '{}',
            createdAt: record.createdAt + 1,
          },
        });
        await expect(attempt).rejects.toBeInstanceOf(IdempotencyConflictError);
        await expect(attempt).rejects.toMatchObject({
          code: 'STORE_IDEMPOTENCY_CONFLICT',
          account: ACCOUNT,
          key: record.key,
        });

        expect(await store.getObject(ACCOUNT, second.id)).toBeNull();
        expect((await allEvents(ACCOUNT)).map((e) => e.metadata.id)).toEqual([first.id]);
        expect(await store.eventBounds(ACCOUNT)).toEqual(bounds);
        expect(await store.getIdempotencyRecord(ACCOUNT, record.key)).toEqual(record);
      });

      it('rolls back an update whose idempotency key is already taken', async () => {
        const record = makeIdempotencyRecord();
        const object = makeObject();
        await create(object, { idempotency: record });
        await expect(
          store.commit({
            write: {
              kind: 'update',
              object: { ...object, fields: { description: 'no' }, version: 2 },
              expectedVersion: 1,
            },
            event: makeEvent({ type: 'update' }),
            idempotency: record,
            retention: KEEP_ALL,
          }),
        ).rejects.toBeInstanceOf(IdempotencyConflictError);
        expect(await store.getObject(ACCOUNT, object.id)).toEqual(object);
        expect(await allEvents(ACCOUNT)).toHaveLength(1);
      });

      it('accepts the same key in another account', async () => {
        const record = makeIdempotencyRecord();
        await create(makeObject(), { idempotency: record });
        const foreign = { ...record, account: OTHER_ACCOUNT, body: '{"other":true}' };
        await create(makeObject({ account: OTHER_ACCOUNT }), { idempotency: foreign });
        expect(await store.getIdempotencyRecord(OTHER_ACCOUNT, record.key)).toEqual(foreign);
        expect(await store.getIdempotencyRecord(ACCOUNT, record.key)).toEqual(record);
      });

      it('purges the records created before the given time, in every account, and counts them', async () => {
        const old = makeIdempotencyRecord({ createdAt: 1_000 });
        const oldForeign = makeIdempotencyRecord({ account: OTHER_ACCOUNT, createdAt: 1_500 });
        const boundary = makeIdempotencyRecord({ createdAt: 2_000 });
        const fresh = makeIdempotencyRecord({ createdAt: 3_000 });
        for (const record of [old, oldForeign, boundary, fresh]) {
          await create(makeObject({ account: record.account }), { idempotency: record });
        }

        expect(await store.purgeIdempotencyRecords(2_000)).toBe(2);
        expect(await store.getIdempotencyRecord(ACCOUNT, old.key)).toBeNull();
        expect(await store.getIdempotencyRecord(OTHER_ACCOUNT, oldForeign.key)).toBeNull();
        expect(await store.getIdempotencyRecord(ACCOUNT, boundary.key)).toEqual(boundary);
        expect(await store.getIdempotencyRecord(ACCOUNT, fresh.key)).toEqual(fresh);
        expect(await store.purgeIdempotencyRecords(2_000)).toBe(0);
      });

      it('frees a purged key for a new commit', async () => {
        const record = makeIdempotencyRecord({ createdAt: 1_000 });
        await create(makeObject(), { idempotency: record });
        await store.purgeIdempotencyRecords(5_000);
        const again = { ...record, createdAt: 6_000 };
        await create(makeObject(), { idempotency: again });
        expect(await store.getIdempotencyRecord(ACCOUNT, record.key)).toEqual(again);
      });
    });

    describe('webhooks', () => {
      const APP = 'app-1';
      const OTHER_APP = 'app-2';

      it('adds a webhook once per url and returns the existing record on a second add', async () => {
        const first = await store.addWebhook(APP, 'https://example.test/hook', timestamp(1));
        expect(first.created).toBe(true);
        expect(first.webhook).toEqual({
          id: expect.any(Number),
          appId: APP,
          url: 'https://example.test/hook',
          created: timestamp(1),
        });

        const again = await store.addWebhook(APP, 'https://example.test/hook', timestamp(2));
        expect(again.created).toBe(false);
        expect(again.webhook).toEqual(first.webhook);
        expect(await store.listWebhooks(APP)).toEqual([first.webhook]);
      });

      it('lists, gets and deletes the webhooks of one application only', async () => {
        const a = (await store.addWebhook(APP, 'https://example.test/a', timestamp(1))).webhook;
        const b = (await store.addWebhook(APP, 'https://example.test/b', timestamp(2))).webhook;
        const foreign = await store.addWebhook(OTHER_APP, 'https://example.test/a', timestamp(3));
        expect(foreign.created).toBe(true);
        expect(new Set([a.id, b.id, foreign.webhook.id]).size).toBe(3);

        const byId = (list: { id: number }[]) => [...list].sort((x, y) => x.id - y.id);
        expect(byId(await store.listWebhooks(APP))).toEqual(byId([a, b]));
        expect(await store.listWebhooks(OTHER_APP)).toEqual([foreign.webhook]);
        expect(await store.listWebhooks('app-none')).toEqual([]);

        expect(await store.getWebhook(APP, a.id)).toEqual(a);
        expect(await store.getWebhook(OTHER_APP, a.id)).toBeNull();
        expect(await store.getWebhook(APP, 999_999)).toBeNull();

        expect(await store.deleteWebhook(OTHER_APP, a.id)).toBe(false);
        expect(await store.getWebhook(APP, a.id)).toEqual(a);
        expect(await store.deleteWebhook(APP, a.id)).toBe(true);
        expect(await store.deleteWebhook(APP, a.id)).toBe(false);
        expect(await store.getWebhook(APP, a.id)).toBeNull();
        expect(await store.listWebhooks(APP)).toEqual([b]);
        expect(await store.listWebhooks(OTHER_APP)).toEqual([foreign.webhook]);
      });

      it('adds a url again after it was deleted', async () => {
        const first = (await store.addWebhook(APP, 'https://example.test/a', timestamp(1))).webhook;
        await store.deleteWebhook(APP, first.id);
        const again = await store.addWebhook(APP, 'https://example.test/a', timestamp(2));
        expect(again.created).toBe(true);
        expect(await store.listWebhooks(APP)).toEqual([again.webhook]);
      });
    });
  });
}
