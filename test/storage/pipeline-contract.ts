// The pipeline storage contract: one suite that every adapter of the pipeline storage port runs
// unchanged (the unjs/db0 pattern, like contract.ts and engine-contract.ts). It speaks only the
// `PipelineStore` interface, so a D1 adapter can call
// `describePipelineStoreContract('d1', openD1PipelineStore)` and prove the same behaviour.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  NewRunRecord,
  PipelineStore,
  RunQuery,
  RunRecord,
  SnapshotRecord,
} from '../../src/storage/pipeline-port.js';

const ACCOUNT = 1;
const OTHER_ACCOUNT = 2;
const T0 = Date.UTC(2026, 2, 2, 10, 0, 0);
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export function makeSnapshot(overrides: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    account: ACCOUNT,
    objectId: 'inc-1',
    objectType: 'incident',
    body: JSON.stringify({ id: 'inc-1', priority: 'high' }),
    eventId: '41',
    at: T0,
    ...overrides,
  };
}

/** A run; its verdicts default to "matched" for each rule of `rules`. */
export function makeRun(overrides: Partial<NewRunRecord> = {}): NewRunRecord {
  const rules = overrides.rules ?? ['escalate'];
  return {
    key: 'e:1:42',
    account: ACCOUNT,
    eventId: '42',
    eventType: 'update',
    objectType: 'incident',
    objectId: 'inc-1',
    objectNumber: null,
    selfHops: 0,
    outcome: 'done',
    rules,
    verdicts: Object.fromEntries(rules.map((rule) => [rule, 'matched' as const])),
    summary: 'escalate: updated incident inc-1',
    detail: JSON.stringify({ rules: [{ id: 'escalate', outcome: 'done' }], calls: [] }),
    at: T0,
    ...overrides,
  };
}

/**
 * Runs the pipeline storage contract against one adapter. `open` must return a new, empty store
 * each time it is called; the suite closes every store it opens.
 */
export function describePipelineStoreContract(
  name: string,
  open: () => Promise<PipelineStore>,
): void {
  describe(`pipeline storage contract: ${name}`, () => {
    let store: PipelineStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    describe('accounts', () => {
      it('answers null for an account it has never heard of, and lists no accounts', async () => {
        expect(await store.getAccount(ACCOUNT)).toBeNull();
        expect(await store.listAccounts()).toEqual([]);
      });

      it('creates the state of an account at its first notification', async () => {
        await store.noteNotification(ACCOUNT, T0);
        expect(await store.getAccount(ACCOUNT)).toEqual({
          account: ACCOUNT,
          cursor: null,
          notifiedAt: T0,
          drainedAt: null,
          pendingSince: T0,
        });
      });

      it.each([
        ['a later notification moves it forward', T0 + MINUTE, T0 + MINUTE],
        ['an earlier notification arriving late leaves it', T0 - MINUTE, T0],
      ])('keeps the latest notification time: %s', async (_name, second, expected) => {
        await store.noteNotification(ACCOUNT, T0);
        await store.noteNotification(ACCOUNT, second);
        expect((await store.getAccount(ACCOUNT))?.notifiedAt).toBe(expected);
      });

      it('stores the cursor of a finished page and keeps the notification time', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.saveCursor(ACCOUNT, 'cursor-1', T0 + MINUTE, false);
        expect(await store.getAccount(ACCOUNT)).toEqual({
          account: ACCOUNT,
          cursor: 'cursor-1',
          notifiedAt: T0,
          drainedAt: null,
          pendingSince: T0,
        });
      });

      it('creates the state of an account at its first cursor, with no notification yet', async () => {
        await store.saveCursor(ACCOUNT, 'cursor-1', T0, true);
        expect(await store.getAccount(ACCOUNT)).toEqual({
          account: ACCOUNT,
          cursor: 'cursor-1',
          notifiedAt: null,
          drainedAt: T0,
          pendingSince: null,
        });
      });

      it('records the first notification of an account that a cursor save created', async () => {
        await store.saveCursor(ACCOUNT, 'cursor-1', T0, false);
        await store.noteNotification(ACCOUNT, T0 + MINUTE);
        expect((await store.getAccount(ACCOUNT))?.notifiedAt).toBe(T0 + MINUTE);
      });

      it('replaces the cursor with each page, and with null to start again from the oldest event', async () => {
        await store.saveCursor(ACCOUNT, 'cursor-1', T0, false);
        await store.saveCursor(ACCOUNT, 'cursor-2', T0 + 1, false);
        expect((await store.getAccount(ACCOUNT))?.cursor).toBe('cursor-2');
        await store.saveCursor(ACCOUNT, null, T0 + 2, false);
        expect((await store.getAccount(ACCOUNT))?.cursor).toBeNull();
      });

      it('takes the request time of a page that reached the end of the log as the drain time', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.saveCursor(ACCOUNT, 'cursor-1', T0 + MINUTE, true);
        expect((await store.getAccount(ACCOUNT))?.drainedAt).toBe(T0 + MINUTE);
      });

      it('keeps the last drain time through pages that did not reach the end of the log', async () => {
        await store.saveCursor(ACCOUNT, 'cursor-1', T0, true);
        await store.saveCursor(ACCOUNT, 'cursor-2', T0 + MINUTE, false);
        expect(await store.getAccount(ACCOUNT)).toEqual({
          account: ACCOUNT,
          cursor: 'cursor-2',
          notifiedAt: null,
          drainedAt: T0,
          pendingSince: null,
        });
        await store.saveCursor(ACCOUNT, 'cursor-3', T0 + 2 * MINUTE, true);
        expect((await store.getAccount(ACCOUNT))?.drainedAt).toBe(T0 + 2 * MINUTE);
      });

      it('leaves a notification noted after the drain request pending (later than the drain)', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.noteNotification(ACCOUNT, T0 + 5);
        await store.saveCursor(ACCOUNT, 'cursor-1', T0 + 3, true);
        expect(await store.getAccount(ACCOUNT)).toEqual({
          account: ACCOUNT,
          cursor: 'cursor-1',
          notifiedAt: T0 + 5,
          drainedAt: T0 + 3,
          pendingSince: T0 + 5,
        });
      });

      it('keeps the state of each account apart', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.saveCursor(ACCOUNT, 'cursor-1', T0 + 1, true);
        await store.noteNotification(OTHER_ACCOUNT, T0 + 2);
        expect(await store.getAccount(OTHER_ACCOUNT)).toEqual({
          account: OTHER_ACCOUNT,
          cursor: null,
          notifiedAt: T0 + 2,
          drainedAt: null,
          pendingSince: T0 + 2,
        });
        expect((await store.getAccount(ACCOUNT))?.notifiedAt).toBe(T0);
        expect((await store.getAccount(ACCOUNT))?.pendingSince).toBeNull();
      });

      it('lists every account with state by account number, whatever order they came in', async () => {
        await store.noteNotification(30, T0);
        await store.saveCursor(4, 'cursor-4', T0 + 1, true);
        await store.noteNotification(200, T0 + 2);
        await store.noteNotification(30, T0 + 3);
        expect(await store.listAccounts()).toEqual([
          {
            account: 4,
            cursor: 'cursor-4',
            notifiedAt: null,
            drainedAt: T0 + 1,
            pendingSince: null,
          },
          { account: 30, cursor: null, notifiedAt: T0 + 3, drainedAt: null, pendingSince: T0 },
          { account: 200, cursor: null, notifiedAt: T0 + 2, drainedAt: null, pendingSince: T0 + 2 },
        ]);
      });

      it('keeps the oldest notification not yet drained as pending, however many came after it', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.noteNotification(ACCOUNT, T0 + MINUTE);
        await store.noteNotification(ACCOUNT, T0 + 2 * MINUTE);
        const state = await store.getAccount(ACCOUNT);
        expect(state?.pendingSince).toBe(T0);
        expect(state?.notifiedAt).toBe(T0 + 2 * MINUTE);
        // An earlier one arriving late is the oldest waiting.
        await store.noteNotification(ACCOUNT, T0 - MINUTE);
        expect((await store.getAccount(ACCOUNT))?.pendingSince).toBe(T0 - MINUTE);
      });

      it('counts from the first notification after the request of the page that reached the end', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.noteNotification(ACCOUNT, T0 + 4);
        await store.noteNotification(ACCOUNT, T0 + 5);
        await store.noteNotification(ACCOUNT, T0 + 9);
        // The page was requested at T0 + 4: the note of that millisecond may be of an event the
        // page does not hold, so it stays with those after it.
        await store.saveCursor(ACCOUNT, 'cursor-1', T0 + 4, true);
        expect(await store.getAccount(ACCOUNT)).toMatchObject({
          drainedAt: T0 + 4,
          notifiedAt: T0 + 9,
          pendingSince: T0 + 4,
        });
        await store.saveCursor(ACCOUNT, 'cursor-2', T0 + 6, true);
        expect((await store.getAccount(ACCOUNT))?.pendingSince).toBe(T0 + 9);
        await store.saveCursor(ACCOUNT, 'cursor-3', T0 + 10, true);
        expect(await store.getAccount(ACCOUNT)).toMatchObject({
          drainedAt: T0 + 10,
          notifiedAt: T0 + 9,
          pendingSince: null,
        });
      });

      it('keeps the oldest notification through pages that do not reach the end, and what came during them', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.noteNotification(ACCOUNT, T0 + 2);
        await store.saveCursor(ACCOUNT, 'cursor-1', T0 + 3, false);
        expect((await store.getAccount(ACCOUNT))?.pendingSince).toBe(T0);
        await store.noteNotification(ACCOUNT, T0 + 7);
        await store.saveCursor(ACCOUNT, 'cursor-2', T0 + 5, false);
        expect((await store.getAccount(ACCOUNT))?.pendingSince).toBe(T0);
        // The last page, requested at T0 + 6, reaches the end: what came before it is drained,
        // the notification of T0 + 7 (noted while that page was read) is not.
        await store.saveCursor(ACCOUNT, 'cursor-3', T0 + 6, true);
        expect((await store.getAccount(ACCOUNT))?.pendingSince).toBe(T0 + 7);
      });

      it('keeps the notes of each account apart when a page of another reaches the end', async () => {
        await store.noteNotification(ACCOUNT, T0);
        await store.noteNotification(OTHER_ACCOUNT, T0 + 1);
        await store.saveCursor(OTHER_ACCOUNT, 'cursor-9', T0 + 2, true);
        expect((await store.getAccount(ACCOUNT))?.pendingSince).toBe(T0);
        expect((await store.getAccount(OTHER_ACCOUNT))?.pendingSince).toBeNull();
      });
    });

    describe('snapshots', () => {
      it('answers null for an object without a snapshot', async () => {
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toBeNull();
      });

      it('stores a snapshot and answers it by account and object', async () => {
        const snapshot = makeSnapshot();
        await store.putSnapshot(snapshot);
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toEqual(snapshot);
      });

      it('replaces the snapshot of an object with the next one put', async () => {
        await store.putSnapshot(makeSnapshot());
        const next = makeSnapshot({
          objectType: 'problem',
          body: '{"id":"inc-1","priority":"low"}',
          eventId: '57',
          at: T0 + MINUTE,
        });
        await store.putSnapshot(next);
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toEqual(next);
      });

      it('deletes the snapshot of an object, and deleting a missing one changes nothing', async () => {
        const kept = makeSnapshot({ objectId: 'inc-2' });
        await store.putSnapshot(makeSnapshot());
        await store.putSnapshot(kept);
        await store.deleteSnapshot(ACCOUNT, 'inc-1');
        await store.deleteSnapshot(ACCOUNT, 'inc-404');
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toBeNull();
        expect(await store.getSnapshot(ACCOUNT, 'inc-2')).toEqual(kept);
      });

      it('keeps the snapshots of the same object id in different accounts apart', async () => {
        const mine = makeSnapshot({ body: '"mine"' });
        const theirs = makeSnapshot({ account: OTHER_ACCOUNT, body: '"theirs"' });
        await store.putSnapshot(mine);
        await store.putSnapshot(theirs);
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toEqual(mine);
        expect(await store.getSnapshot(OTHER_ACCOUNT, 'inc-1')).toEqual(theirs);
        await store.deleteSnapshot(OTHER_ACCOUNT, 'inc-1');
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toEqual(mine);
        expect(await store.getSnapshot(OTHER_ACCOUNT, 'inc-1')).toBeNull();
      });
    });

    describe('runs', () => {
      /** Saves runs in order; each gets the key `r<index>` unless it names one. */
      const saveAll = async (runs: Partial<NewRunRecord>[]) => {
        const saved: RunRecord[] = [];
        for (const [index, run] of runs.entries()) {
          saved.push(await store.saveRun(makeRun({ key: `r${index}`, ...run })));
        }
        return saved;
      };

      const keys = async (query: RunQuery) => (await store.listRuns(query)).map((run) => run.key);

      it('keeps the rule set version of a run and lists the runs of one version, whole or by prefix', async () => {
        const v1 = 'a'.repeat(64);
        const v2 = `${'a'.repeat(12)}${'b'.repeat(52)}`;
        const saved = await saveAll([
          { ruleVersion: v1 },
          { ruleVersion: v2 },
          {},
          { ruleVersion: v1 },
        ]);
        expect(await store.getRun('r0')).toEqual({ ...saved[0], ruleVersion: v1 });
        expect((await store.getRun('r2'))?.ruleVersion).toBeUndefined();
        expect(await keys({ ruleVersion: v1, limit: 10 })).toEqual(['r3', 'r0']);
        expect(await keys({ ruleVersion: v2.slice(0, 13), limit: 10 })).toEqual(['r1']);
        expect(await keys({ ruleVersion: 'a'.repeat(12), limit: 10 })).toEqual(['r3', 'r1', 'r0']);
        expect(await keys({ ruleVersion: v1, account: OTHER_ACCOUNT, limit: 10 })).toEqual([]);
      });

      it('answers null for a run never saved, by key and by id', async () => {
        expect(await store.getRun('e:1:missing')).toBeNull();
        expect(await store.getRunById(1)).toBeNull();
      });

      it('stores a run with an id and answers it by key and by id', async () => {
        const run = makeRun();
        const saved = await store.saveRun(run);
        expect(saved).toEqual({ ...run, id: saved.id });
        expect(Number.isInteger(saved.id)).toBe(true);
        expect(await store.getRun(run.key)).toEqual(saved);
        expect(await store.getRunById(saved.id)).toEqual(saved);
      });

      it('keeps every field of a run, nulls and an empty rule list included', async () => {
        const run = makeRun({
          key: 's:1:nightly:2026-03-02T10:00:00Z:inc-1',
          eventId: '2026-03-02T10:00:00Z',
          eventType: 'schedule',
          objectType: null,
          objectId: null,
          objectNumber: null,
          selfHops: 3,
          outcome: 'skipped',
          rules: [],
          verdicts: {},
          summary: 'skipped: object gone',
          detail: '{"notes":["gone"]}',
          at: T0 + 9,
        });
        const saved = await store.saveRun(run);
        expect(await store.getRun(run.key)).toEqual({ ...run, id: saved.id });
      });

      it('keeps the first run saved under a key and answers it, unchanged, to a later save', async () => {
        const first = await store.saveRun(makeRun({ outcome: 'done', summary: 'first' }));
        const again = await store.saveRun(
          makeRun({ outcome: 'failed', rules: ['other'], summary: 'second', at: T0 + 1 }),
        );
        expect(again).toEqual(first);
        expect(await store.getRun(first.key)).toEqual(first);
        expect(await store.listRuns({ limit: 10 })).toEqual([first]);
        expect(await keys({ ruleId: 'other', limit: 10 })).toEqual([]);
      });

      it('puts or deletes the snapshot given with a run, whichever run the key holds', async () => {
        const first = await store.saveRun(makeRun({ key: 'e:1:41' }), { put: makeSnapshot() });
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toEqual(makeSnapshot());
        // A save that loses to the run stored first still leaves the event's snapshot.
        const next = makeSnapshot({ body: '{"id":"inc-1","priority":"low"}', eventId: '42' });
        const again = await store.saveRun(makeRun({ key: 'e:1:41', summary: 'again' }), {
          put: next,
        });
        expect(again).toEqual(first);
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toEqual(next);
        await store.putSnapshot(makeSnapshot({ objectId: 'inc-2' }));
        await store.saveRun(makeRun({ key: 'e:1:43', eventType: 'delete' }), {
          delete: { account: ACCOUNT, objectId: 'inc-1' },
        });
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toBeNull();
        expect(await store.getSnapshot(ACCOUNT, 'inc-2')).not.toBeNull();
        expect(await keys({ limit: 10 })).toEqual(['e:1:43', 'e:1:41']);
      });

      it('stores neither the run nor its snapshot when the run cannot be stored', async () => {
        const broken = { ...makeRun(), eventType: null } as unknown as NewRunRecord;
        await expect(store.saveRun(broken, { put: makeSnapshot() })).rejects.toThrow();
        expect(await store.getSnapshot(ACCOUNT, 'inc-1')).toBeNull();
        expect(await store.getRun(broken.key)).toBeNull();
      });

      it('indexes the rules of a new run and of a run that replaced a parked one alike', async () => {
        const verdicts = { escalate: 'matched', notify: 'no_match' } as const;
        const fresh = await store.saveRun(makeRun({ key: 'e:1:1', verdicts }));
        await store.saveRun(
          makeRun({ key: 'e:1:2', outcome: 'parked', rules: [], verdicts: { page: 'matched' } }),
        );
        const finished = await store.saveRun(makeRun({ key: 'e:1:2', verdicts }));
        expect(await keys({ ruleId: 'notify', limit: 10 })).toEqual([finished.key, fresh.key]);
        expect(await keys({ ruleId: 'escalate', matched: true, limit: 10 })).toEqual([
          finished.key,
          fresh.key,
        ]);
        expect(await keys({ ruleId: 'page', limit: 10 })).toEqual([]);
      });

      it('gives newer runs larger ids', async () => {
        const ids = (await saveAll([{}, {}, {}])).map((run) => run.id);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        expect(new Set(ids).size).toBe(3);
      });

      it('lists runs newest first, up to the limit', async () => {
        await saveAll([{}, {}, {}, {}]);
        expect(await keys({ limit: 10 })).toEqual(['r3', 'r2', 'r1', 'r0']);
        expect(await keys({ limit: 2 })).toEqual(['r3', 'r2']);
        expect(await keys({ limit: 0 })).toEqual([]);
      });

      it('lists runs by id, not by time, so a run saved late with an older time still comes first', async () => {
        await saveAll([{ at: T0 + MINUTE }, { at: T0 }]);
        expect(await keys({ limit: 10 })).toEqual(['r1', 'r0']);
      });

      describe('filters', () => {
        const runs: Partial<NewRunRecord>[] = [
          { objectId: 'inc-1', rules: ['escalate'], outcome: 'done' },
          { objectId: 'inc-2', rules: ['escalate', 'link-problem'], outcome: 'failed' },
          { account: OTHER_ACCOUNT, objectId: 'inc-1', rules: ['link-problem'], outcome: 'done' },
          { objectId: 'inc-1', rules: [], outcome: 'no_match' },
          { objectType: null, objectId: null, rules: [], outcome: 'skipped' },
          { objectId: 'inc-1', rules: ['notify', 'link-problem', 'escalate'], outcome: 'done' },
          { objectId: 'inc-3', rules: ['notify'], outcome: 'failed' },
          // Rules looked at that did not act: only in the verdicts.
          {
            objectId: 'inc-4',
            rules: [],
            verdicts: { escalate: 'no_match', notify: 'skipped' },
            outcome: 'no_match',
          },
          {
            objectId: 'inc-4',
            rules: ['escalate'],
            verdicts: { escalate: 'failed', 'link-problem': 'no_match' },
            outcome: 'failed',
          },
        ];

        it.each<[string, Omit<RunQuery, 'limit'>, string[]]>([
          ['no filter', {}, ['r8', 'r7', 'r6', 'r5', 'r4', 'r3', 'r2', 'r1', 'r0']],
          ['account', { account: ACCOUNT }, ['r8', 'r7', 'r6', 'r5', 'r4', 'r3', 'r1', 'r0']],
          ['another account', { account: OTHER_ACCOUNT }, ['r2']],
          ['an account without runs', { account: 99 }, []],
          ['object', { objectId: 'inc-1' }, ['r5', 'r3', 'r2', 'r0']],
          ['outcome done', { outcome: 'done' }, ['r5', 'r2', 'r0']],
          ['outcome failed', { outcome: 'failed' }, ['r8', 'r6', 'r1']],
          ['outcome no_match', { outcome: 'no_match' }, ['r7', 'r3']],
          ['outcome skipped', { outcome: 'skipped' }, ['r4']],
          [
            'a rule alone, first or last in its runs, whatever its verdict',
            { ruleId: 'escalate' },
            ['r8', 'r7', 'r5', 'r1', 'r0'],
          ],
          [
            'a rule alone, second or in the middle',
            { ruleId: 'link-problem' },
            ['r8', 'r5', 'r2', 'r1'],
          ],
          ['a rule alone or first', { ruleId: 'notify' }, ['r7', 'r6', 'r5']],
          ['a rule where it matched', { ruleId: 'escalate', matched: true }, ['r5', 'r1', 'r0']],
          ['a rule where it did not match', { ruleId: 'escalate', matched: false }, ['r8', 'r7']],
          [
            'a rule that never matched, where it did not',
            { ruleId: 'notify', matched: false },
            ['r7'],
          ],
          [
            'a rule where it matched, with an object',
            { ruleId: 'link-problem', matched: true, objectId: 'inc-1' },
            ['r5', 'r2'],
          ],
          ['a rule no run names', { ruleId: 'unknown' }, []],
          ['before (exclusive)', { before: 3 }, ['r2', 'r1', 'r0']],
          ['account and object', { account: ACCOUNT, objectId: 'inc-1' }, ['r5', 'r3', 'r0']],
          ['object and outcome', { objectId: 'inc-1', outcome: 'done' }, ['r5', 'r2', 'r0']],
          ['rule and outcome', { ruleId: 'link-problem', outcome: 'done' }, ['r5', 'r2']],
          ['rule and account', { ruleId: 'link-problem', account: ACCOUNT }, ['r8', 'r5', 'r1']],
          ['rule and object', { ruleId: 'escalate', objectId: 'inc-1' }, ['r5', 'r0']],
          [
            'every filter at once',
            { account: ACCOUNT, objectId: 'inc-1', ruleId: 'escalate', outcome: 'done', before: 5 },
            ['r0'],
          ],
          ['filters that no run meets together', { objectId: 'inc-3', outcome: 'done' }, []],
        ])('filters by %s, newest first', async (_name, filter, expected) => {
          const saved = await saveAll(runs);
          // `before` in the table counts runs; the store's ids may start anywhere.
          const before = filter.before === undefined ? undefined : saved[filter.before]?.id;
          expect(
            await keys({ ...filter, ...(before === undefined ? {} : { before }), limit: 100 }),
          ).toEqual(expected);
        });

        it('filters by object number and by time window, newest first', async () => {
          await saveAll([
            { objectNumber: 'INC0010001', at: T0 },
            { objectNumber: 'INC0010002', at: T0 + MINUTE },
            { objectNumber: 'INC0010001', at: T0 + 2 * MINUTE },
            { objectNumber: null, at: T0 + 3 * MINUTE },
          ]);
          expect(await keys({ objectNumber: 'INC0010001', limit: 10 })).toEqual(['r2', 'r0']);
          expect(await keys({ objectNumber: 'INC0099999', limit: 10 })).toEqual([]);
          expect(await keys({ since: T0 + MINUTE, limit: 10 })).toEqual(['r3', 'r2', 'r1']);
          expect(await keys({ until: T0 + MINUTE, limit: 10 })).toEqual(['r0']);
          expect(
            await keys({
              objectNumber: 'INC0010001',
              since: T0 + 1,
              until: T0 + 3 * MINUTE,
              limit: 10,
            }),
          ).toEqual(['r2']);
          expect((await store.getRun('r1'))?.objectNumber).toBe('INC0010002');
        });

        it('applies the limit after the filters', async () => {
          await saveAll(runs);
          expect(await keys({ objectId: 'inc-1', limit: 2 })).toEqual(['r5', 'r3']);
        });
      });

      it('keeps the verdict of every rule looked at', async () => {
        const verdicts = { escalate: 'matched', notify: 'no_match', page: 'skipped' } as const;
        const saved = await store.saveRun(makeRun({ rules: ['escalate'], verdicts }));
        expect(saved.verdicts).toEqual(verdicts);
        expect((await store.getRun(saved.key))?.verdicts).toEqual(verdicts);
        expect(await keys({ ruleId: 'page', limit: 10 })).toEqual([saved.key]);
        expect(await keys({ ruleId: 'page', matched: true, limit: 10 })).toEqual([]);
      });

      it('matches a rule named twice in one run once', async () => {
        const saved = await store.saveRun(makeRun({ rules: ['escalate', 'escalate'] }));
        expect(saved.rules).toEqual(['escalate', 'escalate']);
        expect(await keys({ ruleId: 'escalate', limit: 10 })).toEqual([saved.key]);
      });

      it.each([
        ['without a filter', {}],
        ['with a filter', { account: ACCOUNT, ruleId: 'escalate' }],
      ])(
        'pages through 25 runs with `before`, giving each run exactly once (%s)',
        async (_name, filter) => {
          const saved = await saveAll(Array.from({ length: 25 }, () => ({})));
          const seen: string[] = [];
          let before: number | undefined;
          for (let page = 0; page < 10; page += 1) {
            const runs = await store.listRuns({
              ...filter,
              ...(before === undefined ? {} : { before }),
              limit: 7,
            });
            seen.push(...runs.map((run) => run.key));
            if (runs.length < 7) break;
            before = runs.at(-1)?.id;
          }
          expect(seen).toEqual(saved.map((run) => run.key).reverse());
        },
      );

      // Two queue consumers can run the same event at the same moment (a redelivered message);
      // each must be answered the one run stored, and only that run's rules indexed.
      it('answers every one of several concurrent saves of a key with the run stored first', async () => {
        const names = ['a', 'b', 'c', 'd', 'e'];
        const saved = await Promise.all(
          names.map((name) => store.saveRun(makeRun({ summary: name, rules: [`rule-${name}`] }))),
        );
        const stored = await store.getRun(makeRun().key);
        expect(stored).not.toBeNull();
        expect(saved).toEqual(names.map(() => stored));
        expect(await store.listRuns({ limit: 10 })).toEqual([stored]);
        for (const name of names) {
          expect(await keys({ ruleId: `rule-${name}`, limit: 10 })).toEqual(
            stored?.summary === name ? [stored.key] : [],
          );
        }
      });

      describe('ruleActivity', () => {
        it('counts the runs since a time in which each rule matched or failed, per bucket', async () => {
          await saveAll([
            { rules: ['escalate'], at: T0 - 1 },
            { rules: ['escalate'], at: T0 },
            { rules: ['escalate'], at: T0 + MINUTE - 1 },
            {
              rules: ['escalate'],
              verdicts: { escalate: 'failed', notify: 'no_match' },
              at: T0 + MINUTE,
            },
            { rules: ['escalate', 'notify', 'page'], at: T0 + 2 * MINUTE + 5 },
          ]);
          const cells = await store.ruleActivity({
            ruleIds: ['escalate', 'notify', 'absent'],
            since: T0,
            bucketMs: MINUTE,
          });
          const sorted = [...cells].sort(
            (a, b) =>
              a.ruleId.localeCompare(b.ruleId) ||
              a.bucket - b.bucket ||
              a.verdict.localeCompare(b.verdict),
          );
          // notify's no_match is not counted, nor page, which was not asked for.
          expect(sorted).toEqual([
            { ruleId: 'escalate', verdict: 'matched', bucket: 0, runs: 2 },
            { ruleId: 'escalate', verdict: 'failed', bucket: 1, runs: 1 },
            { ruleId: 'escalate', verdict: 'matched', bucket: 2, runs: 1 },
            { ruleId: 'notify', verdict: 'matched', bucket: 2, runs: 1 },
          ]);
          const later = { ruleIds: ['escalate'], since: T0 + 10 * MINUTE, bucketMs: MINUTE };
          expect(await store.ruleActivity(later)).toEqual([]);
          expect(await store.ruleActivity({ ruleIds: [], since: T0, bucketMs: MINUTE })).toEqual(
            [],
          );
        });
        it('counts a rule that matched but whose call failed as failed, not matched', async () => {
          const calls = (outcomes: Record<string, string>) =>
            JSON.stringify({
              calls: Object.entries(outcomes).map(([ruleId, outcome], index) => ({
                index,
                ruleId,
                outcome,
              })),
            });
          await saveAll([
            // escalate's call failed, notify's was done: only escalate failed.
            {
              rules: ['escalate', 'notify'],
              outcome: 'failed',
              detail: calls({ escalate: 'failed', notify: 'done' }),
              at: T0,
            },
            // A done run whose detail names a failed call (one retried and then done) counts
            // as matched: only the calls of failed runs are read.
            { rules: ['escalate'], detail: calls({ escalate: 'failed' }), at: T0 + 1 },
            // A failed run from before the window is not read.
            {
              rules: ['notify'],
              outcome: 'failed',
              detail: calls({ notify: 'failed' }),
              at: T0 - 1,
            },
          ]);
          const cells = await store.ruleActivity({
            ruleIds: ['escalate', 'notify'],
            since: T0,
            bucketMs: MINUTE,
          });
          expect(
            [...cells].sort(
              (a, b) => a.ruleId.localeCompare(b.ruleId) || a.verdict.localeCompare(b.verdict),
            ),
          ).toEqual([
            { ruleId: 'escalate', verdict: 'failed', bucket: 0, runs: 1 },
            { ruleId: 'escalate', verdict: 'matched', bucket: 0, runs: 1 },
            { ruleId: 'notify', verdict: 'matched', bucket: 0, runs: 1 },
          ]);
        });
      });

      describe('purgeRuns', () => {
        const aged = [
          { key: 'old-1', at: T0, rules: ['escalate'] },
          { key: 'old-2', at: T0 + DAY - 1, rules: ['escalate', 'notify'] },
          { key: 'edge', at: T0 + DAY, rules: ['escalate'] },
          { key: 'new', at: T0 + 2 * DAY, rules: ['notify'] },
        ];

        it('deletes the runs finished before the limit and returns how many', async () => {
          await saveAll(aged);
          expect(await store.purgeRuns(T0 + DAY)).toBe(2);
          expect(await store.getRun('old-1')).toBeNull();
          expect(await store.getRun('old-2')).toBeNull();
          expect(await keys({ limit: 10 })).toEqual(['new', 'edge']);
          expect(await store.purgeRuns(T0 + DAY)).toBe(0);
        });

        it('no longer finds purged runs by id or by rule', async () => {
          const saved = await saveAll(aged);
          await store.purgeRuns(T0 + DAY);
          expect(await store.getRunById(saved[0]?.id ?? -1)).toBeNull();
          expect(await keys({ ruleId: 'escalate', limit: 10 })).toEqual(['edge']);
          expect(await keys({ ruleId: 'notify', limit: 10 })).toEqual(['new']);
        });

        it('never gives a new run the id of a purged one, so newer runs keep larger ids', async () => {
          const saved = await saveAll(aged);
          await store.purgeRuns(T0 + 3 * DAY);
          const next = await store.saveRun(makeRun({ key: 'after-purge', rules: ['escalate'] }));
          expect(next.id).toBeGreaterThan(Math.max(...saved.map((run) => run.id)));
          expect(await keys({ ruleId: 'escalate', limit: 10 })).toEqual(['after-purge']);
        });

        it('lets a purged key be saved again as a new run', async () => {
          await saveAll(aged);
          await store.purgeRuns(T0 + DAY);
          const again = await store.saveRun(
            makeRun({ key: 'old-1', summary: 'again', at: T0 + 3 * DAY }),
          );
          expect(await store.getRun('old-1')).toEqual(again);
          expect(again.summary).toBe('again');
        });
      });
    });
    describe('parked objects', () => {
      const object = {
        account: ACCOUNT,
        objectId: 'inc-1',
        objectType: 'incident',
        parkedAt: T0,
        attempts: 1,
        nextAt: T0 + MINUTE,
        error: 'http: 503',
      };
      const event = (eventId: string, objectId = 'inc-1', account = ACCOUNT) => ({
        account,
        objectId,
        eventId,
        body: JSON.stringify({ id: eventId }),
        at: T0,
      });

      it('keeps the events of a parked object in the order they were parked, each once', async () => {
        const parked = await store.park(object, [event('42'), event('43')]);
        expect(parked).toMatchObject({ ...object, events: 2 });
        // A page run again after a crash parks the same events again: nothing is added twice,
        // and the first park's schedule holds.
        const again = await store.park({ ...object, parkedAt: T0 + DAY, nextAt: T0 + DAY }, [
          event('43'),
          event('44'),
        ]);
        expect(again).toEqual({ ...parked, events: 3 });
        expect((await store.parkedEvents(ACCOUNT, 'inc-1')).map((e) => e.eventId)).toEqual([
          '42',
          '43',
          '44',
        ]);
        expect(await store.getParked(ACCOUNT, 'inc-2')).toBeNull();
      });

      it('lists parked objects by account, object and due time', async () => {
        await store.park(object, [event('42')]);
        await store.park({ ...object, objectId: 'inc-2', nextAt: T0 + DAY }, [
          event('50', 'inc-2'),
        ]);
        await store.park({ ...object, account: OTHER_ACCOUNT }, [
          event('60', 'inc-1', OTHER_ACCOUNT),
        ]);
        const ids = async (query: Parameters<PipelineStore['listParked']>[0]) =>
          (await store.listParked(query)).map((p) => `${p.account}/${p.objectId}`);
        expect(await ids({ limit: 10 })).toEqual(['1/inc-1', '1/inc-2', '2/inc-1']);
        expect(await ids({ account: ACCOUNT, limit: 10 })).toEqual(['1/inc-1', '1/inc-2']);
        expect(await ids({ objectId: 'inc-1', limit: 10 })).toEqual(['1/inc-1', '2/inc-1']);
        expect(await ids({ dueAt: T0 + MINUTE, limit: 10 })).toEqual(['1/inc-1', '2/inc-1']);
        expect(await ids({ limit: 1 })).toEqual(['1/inc-1']);
      });

      it('reschedules a parked object, and makes chosen ones due at once', async () => {
        const parked = await store.park(object, [event('42')]);
        await store.park({ ...object, objectId: 'inc-2' }, [event('50', 'inc-2')]);
        expect(
          await store.rescheduleParked(ACCOUNT, 'inc-1', {
            attempts: 2,
            nextAt: T0 + DAY,
            error: 'http: 502',
          }),
        ).toBe(true);
        expect(await store.getParked(ACCOUNT, 'inc-1')).toMatchObject({
          attempts: 2,
          nextAt: T0 + DAY,
          error: 'http: 502',
        });
        const due = await store.retryParkedAt({ id: parked.id, limit: 10 }, T0);
        expect(due.map((p) => [p.objectId, p.nextAt])).toEqual([['inc-1', T0]]);
        expect((await store.getParked(ACCOUNT, 'inc-2'))?.nextAt).toBe(T0 + MINUTE);
        expect(
          await store.rescheduleParked(ACCOUNT, 'inc-9', { attempts: 2, nextAt: T0, error: '' }),
        ).toBe(false);
      });

      it('unparks an object only once no event waits behind it', async () => {
        await store.park(object, [event('42'), event('43')]);
        await store.removeParkedEvent(ACCOUNT, '42');
        expect(await store.unpark(ACCOUNT, 'inc-1')).toBe(false);
        await store.removeParkedEvent(ACCOUNT, '43');
        expect(await store.unpark(ACCOUNT, 'inc-1')).toBe(true);
        expect(await store.getParked(ACCOUNT, 'inc-1')).toBeNull();
        expect(await store.listParked({ limit: 10 })).toEqual([]);
      });

      it('replaces a parked run by the run that finishes the event, under the same id', async () => {
        const parkedRun = await store.saveRun(
          makeRun({ outcome: 'parked', rules: [], summary: 'parked: http: 503' }),
        );
        const done = await store.saveRun(makeRun({ summary: 'done at last', at: T0 + MINUTE }));
        expect(done).toMatchObject({ id: parkedRun.id, outcome: 'done', summary: 'done at last' });
        expect((await store.listRuns({ ruleId: 'escalate', limit: 10 })).map((r) => r.id)).toEqual([
          parkedRun.id,
        ]);
        // A finished run stays first-wins: neither a parked run nor another run replaces it.
        const later = await store.saveRun(makeRun({ outcome: 'parked', summary: 'parked again' }));
        expect(later).toEqual(done);
      });
    });
  });
}
