// The connector's local-state contract: what the ServiceNow connector keeps beside its instance
// (events of upstream writes with their version marks, idempotency records, webhooks, the
// feed's watermarks), one suite run unchanged against every adapter that can hold it: SQLite on
// Node (test/storage/connector-local.test.ts) and D1 inside workerd (test/worker/d1-itsm.test.ts).
// It speaks only the port, so the two adapters' shared SQL (src/storage/sql-itsm.ts) is proven
// to behave the same on both engines.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type CommitInput,
  IdempotencyConflictError,
  type ItsmStore,
  type NewEvent,
  type UpstreamMark,
  type UpstreamStateStore,
} from '../../src/storage/port.js';

type LocalStore = ItsmStore & UpstreamStateStore;

const ACCOUNT = 1;
const OTHER_ACCOUNT = 2;
const KEEP_ALL = 1_000_000;

let nextSysId = 0;
/** A fresh 32-hex sys_id. */
const newSysId = () => (++nextSysId).toString(16).padStart(32, '0');

function event(overrides: Partial<NewEvent> = {}): NewEvent {
  return {
    account: ACCOUNT,
    type: 'update',
    action: 'update',
    modified: '2026-05-04T10:00:00Z',
    ip: null,
    userId: 'u-ann',
    metadata: { id: 'incident.x', description: 'as the event shows it' },
    ...overrides,
  };
}

function mark(sysId: string, modCount: number, deleted = false): UpstreamMark {
  return {
    table: 'incident',
    sysId,
    modCount,
    metadata: deleted ? null : { id: `incident.${sysId}`, version: modCount },
  };
}

export function describeConnectorLocalContract(name: string, open: () => Promise<LocalStore>) {
  describe(`connector local-state contract: ${name}`, () => {
    let store: LocalStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    /** Commits the event of an upstream write reporting `upstream`; returns its seq (0: none). */
    const report = async (
      upstream: UpstreamMark,
      extra: Partial<CommitInput> = {},
      account = ACCOUNT,
    ) =>
      (
        await store.commit({
          write: { kind: 'upstream' },
          event: event({ account, metadata: upstream.metadata ?? { id: upstream.sysId } }),
          upstream,
          retention: KEEP_ALL,
          ...extra,
        })
      ).eventSeq;

    const events = async (account = ACCOUNT) =>
      (await store.listEvents(account, 0, 1_000_000)).events;

    describe('upstream versions', () => {
      it('appends the event of a version with its mark, in one commit', async () => {
        const sysId = newSysId();
        const seq = await report(mark(sysId, 0));
        expect(seq).toBeGreaterThan(0);
        expect(await events()).toEqual([
          { seq, ...event({ metadata: { id: `incident.${sysId}`, version: 0 } }) },
        ]);
        expect(await store.getUpstreamMarks(ACCOUNT, 'incident', [sysId])).toEqual([
          mark(sysId, 0),
        ]);
      });

      it('stores nothing for a version already reported, or an older one', async () => {
        const sysId = newSysId();
        await report(mark(sysId, 3));
        expect(await report(mark(sysId, 3))).toBe(0);
        expect(await report(mark(sysId, 2))).toBe(0);
        expect(await events()).toHaveLength(1);
        expect(await store.getUpstreamMarks(ACCOUNT, 'incident', [sysId])).toEqual([
          mark(sysId, 3),
        ]);
      });

      it('reports a newer version and keeps its object as the mark', async () => {
        const sysId = newSysId();
        const first = await report(mark(sysId, 0));
        const second = await report(mark(sysId, 4));
        expect(second).toBeGreaterThan(first);
        expect(await store.getUpstreamMarks(ACCOUNT, 'incident', [sysId])).toEqual([
          mark(sysId, 4),
        ]);
      });

      it('keeps a delete as the last word: no later version or second delete is reported', async () => {
        const sysId = newSysId();
        await report(mark(sysId, 1));
        expect(await report(mark(sysId, 1, true))).toBeGreaterThan(0);
        expect(await report(mark(sysId, 7))).toBe(0);
        expect(await report(mark(sysId, 1, true))).toBe(0);
        expect(await events()).toHaveLength(2);
        expect(await store.getUpstreamMarks(ACCOUNT, 'incident', [sysId])).toEqual([
          { table: 'incident', sysId, modCount: -1, metadata: null },
        ]);
      });

      it('keeps marks per account and table', async () => {
        const sysId = newSysId();
        await report(mark(sysId, 2));
        expect(await report(mark(sysId, 2), {}, OTHER_ACCOUNT)).toBeGreaterThan(0);
        expect(await report({ ...mark(sysId, 2), table: 'problem' })).toBeGreaterThan(0);
        expect(await store.getUpstreamMarks(OTHER_ACCOUNT, 'incident', [sysId])).toHaveLength(1);
        expect(await store.getUpstreamMarks(ACCOUNT, 'change_request', [sysId])).toEqual([]);
      });

      it('finds the marks of many records at once, each once, leaving out unknown ones', async () => {
        const known = Array.from({ length: 150 }, () => newSysId());
        for (const sysId of known) await report(mark(sysId, 1));
        const asked = [...known, ...known.slice(0, 10), newSysId(), newSysId()];
        const found = await store.getUpstreamMarks(ACCOUNT, 'incident', asked);
        expect(found.map((m) => m.sysId).sort()).toEqual([...known].sort());
        expect(await store.getUpstreamMarks(ACCOUNT, 'incident', [])).toEqual([]);
      });
    });

    describe('idempotency records', () => {
      const record = (key: string) => ({
        account: ACCOUNT,
        key,
        requestHash: 'sha256-of-request',
        status: 200,
        body: '{"id":"incident.x"}',
        createdAt: 1_700_000_000_000,
      });

      it('stores the record in the same commit as the event', async () => {
        await report(mark(newSysId(), 1), { idempotency: record('k-stored') });
        expect(await store.getIdempotencyRecord(ACCOUNT, 'k-stored')).toEqual(record('k-stored'));
        expect(await store.getIdempotencyRecord(OTHER_ACCOUNT, 'k-stored')).toBeNull();
      });

      it('rejects a taken key and stores neither the event nor the mark', async () => {
        await report(mark(newSysId(), 1), { idempotency: record('k-taken') });
        const sysId = newSysId();
        await expect(report(mark(sysId, 1), { idempotency: record('k-taken') })).rejects.toThrow(
          IdempotencyConflictError,
        );
        expect(await events()).toHaveLength(1);
        expect(await store.getUpstreamMarks(ACCOUNT, 'incident', [sysId])).toEqual([]);
      });

      it('stores no record when the version was reported already', async () => {
        const sysId = newSysId();
        await report(mark(sysId, 2));
        expect(await report(mark(sysId, 2), { idempotency: record('k-late') })).toBe(0);
        expect(await store.getIdempotencyRecord(ACCOUNT, 'k-late')).toBeNull();
      });

      it('purges the records created before a time and counts them', async () => {
        await report(mark(newSysId(), 1), { idempotency: { ...record('k-old'), createdAt: 10 } });
        await report(mark(newSysId(), 1), { idempotency: { ...record('k-new'), createdAt: 30 } });
        expect(await store.purgeIdempotencyRecords(20)).toBe(1);
        expect(await store.getIdempotencyRecord(ACCOUNT, 'k-old')).toBeNull();
        expect(await store.getIdempotencyRecord(ACCOUNT, 'k-new')).not.toBeNull();
      });
    });

    describe('Idempotency-Key holds', () => {
      it('gives a key to one holder at a time until its hold expires or is released', async () => {
        expect(await store.holdKey(ACCOUNT, 'k', 'a', 1_000, 2_000)).toBe(true);
        // Another server meanwhile: refused, however often it asks, while the hold lasts.
        expect(await store.holdKey(ACCOUNT, 'k', 'b', 1_500, 2_500)).toBe(false);
        expect(await store.holdKey(ACCOUNT, 'k', 'b', 1_999, 2_999)).toBe(false);
        // The same key of another account is another hold.
        expect(await store.holdKey(OTHER_ACCOUNT, 'k', 'b', 1_500, 2_500)).toBe(true);
        // The holder renews its own hold, which then outlasts the first expiry.
        expect(await store.holdKey(ACCOUNT, 'k', 'a', 1_900, 3_000)).toBe(true);
        expect(await store.holdKey(ACCOUNT, 'k', 'b', 2_500, 3_500)).toBe(false);
        // Once expired, another server takes it over, and the first one no longer has it.
        expect(await store.holdKey(ACCOUNT, 'k', 'b', 3_000, 4_000)).toBe(true);
        expect(await store.holdKey(ACCOUNT, 'k', 'a', 3_100, 4_100)).toBe(false);
        // Only the holder gives it back.
        await store.releaseKey(ACCOUNT, 'k', 'a');
        expect(await store.holdKey(ACCOUNT, 'k', 'c', 3_200, 4_200)).toBe(false);
        await store.releaseKey(ACCOUNT, 'k', 'b');
        expect(await store.holdKey(ACCOUNT, 'k', 'c', 3_200, 4_200)).toBe(true);
      });

      it('drops holds long expired with the records they guarded', async () => {
        expect(await store.holdKey(ACCOUNT, 'old', 'a', 0, 10)).toBe(true);
        expect(await store.holdKey(ACCOUNT, 'live', 'a', 0, 50)).toBe(true);
        await store.purgeIdempotencyRecords(20);
        // The expired hold is gone (a new holder takes it even at a time it would still have
        // been refused by a hold that was kept); the live one stays.
        expect(await store.holdKey(ACCOUNT, 'old', 'b', 5, 100)).toBe(true);
        expect(await store.holdKey(ACCOUNT, 'live', 'b', 5, 100)).toBe(false);
      });
    });

    describe('events', () => {
      it('lists the events after a seq, oldest first, with the count remaining', async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 5; i++) seqs.push(await report(mark(newSysId(), 0)));
        const page = await store.listEvents(ACCOUNT, seqs[0] as number, 2);
        expect(page.events.map((e) => e.seq)).toEqual(seqs.slice(1, 3));
        expect(page.remaining).toBe(2);
        expect(page.trimmedThrough).toBe(0);
        const rest = await store.listEvents(ACCOUNT, seqs[2] as number, 10);
        expect(rest.events.map((e) => e.seq)).toEqual(seqs.slice(3));
        expect(rest.remaining).toBe(0);
      });

      it('keeps only the newest events beyond the retention and reports the newest dropped', async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 5; i++) {
          seqs.push(await report(mark(newSysId(), 0), { retention: 3 }));
        }
        const page = await store.listEvents(ACCOUNT, 0, 100);
        expect(page.events.map((e) => e.seq)).toEqual(seqs.slice(2));
        expect(page.trimmedThrough).toBe(seqs[1]);
        expect(await store.eventBounds(ACCOUNT)).toMatchObject({
          trimmedThrough: seqs[1],
          latest: seqs[4],
        });
      });

      it('keeps exactly the newest events as the log turns over many times', async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 12; i++) {
          seqs.push(await report(mark(newSysId(), 0), { retention: 3 }));
          const kept = seqs.slice(-3);
          const page = await store.listEvents(ACCOUNT, 0, 100);
          expect(page.events.map((e) => e.seq)).toEqual(kept);
          expect(page.trimmedThrough).toBe(seqs.length > 3 ? seqs[seqs.length - 4] : 0);
        }
      });

      it('does not count a version another writer reported first, nor trim for it', async () => {
        const sysId = newSysId();
        const seqs = [await report(mark(sysId, 1), { retention: 2 })];
        seqs.push(await report(mark(newSysId(), 0), { retention: 2 }));
        // The same version again: no event, so nothing of the two is dropped.
        expect(await report(mark(sysId, 1), { retention: 2 })).toBe(0);
        expect(await events(ACCOUNT)).toHaveLength(2);
        seqs.push(await report(mark(newSysId(), 0), { retention: 2 }));
        expect((await events(ACCOUNT)).map((e) => e.seq)).toEqual(seqs.slice(1));
      });

      it('trims down to a lowered retention at the next write, and keeps more once it is raised', async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 6; i++) seqs.push(await report(mark(newSysId(), 0), { retention: 6 }));
        seqs.push(await report(mark(newSysId(), 0), { retention: 2 }));
        expect((await events(ACCOUNT)).map((e) => e.seq)).toEqual(seqs.slice(-2));
        for (let i = 0; i < 3; i++) seqs.push(await report(mark(newSysId(), 0), { retention: 4 }));
        expect((await events(ACCOUNT)).map((e) => e.seq)).toEqual(seqs.slice(-4));
      });

      it('applies retention per account', async () => {
        await report(mark(newSysId(), 0), { retention: 1 }, OTHER_ACCOUNT);
        for (let i = 0; i < 3; i++) await report(mark(newSysId(), 0), { retention: 1 });
        expect(await events(ACCOUNT)).toHaveLength(1);
        expect(await events(OTHER_ACCOUNT)).toHaveLength(1);
      });

      it('reports the bounds of each account and the newest seq of all, and who has events', async () => {
        expect(await store.eventBounds(ACCOUNT)).toEqual({
          trimmedThrough: 0,
          latest: 0,
          globalLatest: expect.any(Number),
        });
        const first = await report(mark(newSysId(), 0));
        const other = await report(mark(newSysId(), 0), {}, OTHER_ACCOUNT);
        expect(await store.eventBounds(ACCOUNT)).toEqual({
          trimmedThrough: 0,
          latest: first,
          globalLatest: other,
        });
        expect(await store.listEventAccounts()).toEqual([ACCOUNT, OTHER_ACCOUNT]);
      });
    });

    describe('watermarks', () => {
      it('sets the floor with the first position and then moves the position only', async () => {
        expect(await store.getWatermark(ACCOUNT, 'incident')).toBeNull();
        await store.setWatermark(ACCOUNT, 'incident', '2026-05-04 10:00:00');
        await store.setWatermark(ACCOUNT, 'incident', '2026-05-04 10:05:00');
        expect(await store.getWatermark(ACCOUNT, 'incident')).toEqual({
          position: '2026-05-04 10:05:00',
          floor: '2026-05-04 10:00:00',
        });
        expect(await store.getWatermark(ACCOUNT, 'problem')).toBeNull();
        expect(await store.getWatermark(OTHER_ACCOUNT, 'incident')).toBeNull();
      });
    });

    describe('webhooks', () => {
      it('adds a URL once, lists, gets and deletes the webhooks of one application', async () => {
        const added = await store.addWebhook(
          'app',
          'https://a.example/hook',
          '2026-05-04T10:00:00Z',
        );
        expect(added.created).toBe(true);
        const again = await store.addWebhook('app', 'https://a.example/hook', 'later');
        expect(again).toEqual({ webhook: added.webhook, created: false });
        await store.addWebhook('other-app', 'https://a.example/hook', 'x');
        expect(await store.listWebhooks('app')).toEqual([added.webhook]);
        expect(await store.getWebhook('app', added.webhook.id)).toEqual(added.webhook);
        expect(await store.getWebhook('other-app', added.webhook.id)).toBeNull();
        expect(await store.deleteWebhook('app', added.webhook.id)).toBe(true);
        expect(await store.deleteWebhook('app', added.webhook.id)).toBe(false);
        expect(await store.listWebhooks('app')).toEqual([]);
        expect((await store.addWebhook('app', 'https://a.example/hook', 'again')).created).toBe(
          true,
        );
      });
    });
  });
}
