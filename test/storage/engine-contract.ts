// The engine storage contract: one suite that every adapter of the engine storage port runs
// unchanged (the unjs/db0 pattern, like contract.ts for the ITSM store). It speaks only the
// `EngineStore` interface, so a D1 adapter can call
// `describeEngineStoreContract('d1', openD1EngineStore)` and prove the same behaviour.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  CorrelationInput,
  EffectRecord,
  EngineStore,
  OnceClaim,
  StoredPlan,
} from '../../src/storage/engine-port.js';

const ACCOUNT = 1;
const OTHER_ACCOUNT = 2;
const T0 = Date.UTC(2026, 2, 2, 10, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function makeCorrelation(overrides: Partial<CorrelationInput> = {}): CorrelationInput {
  return {
    account: ACCOUNT,
    ruleId: 'recurring',
    key: 'network',
    objectId: 'inc-1',
    objectType: 'incident',
    at: T0,
    windowMs: HOUR,
    ...overrides,
  };
}

export function makeClaim(overrides: Partial<OnceClaim> = {}): OnceClaim {
  return {
    account: ACCOUNT,
    ruleId: 'once',
    key: 'inc-1',
    claimant: 'e:1:evt-1:once',
    at: T0,
    windowMs: HOUR,
    ...overrides,
  };
}

/** The effect latestEffectWithPlan answers, without its plan. */
async function latestEffect(store: EngineStore, objectId: string): Promise<EffectRecord | null> {
  return (await store.latestEffectWithPlan(objectId))?.effect ?? null;
}

export function makeStoredPlan(overrides: Partial<StoredPlan> = {}): StoredPlan {
  return {
    key: 'e:1:evt-1',
    account: ACCOUNT,
    body: JSON.stringify({ key: 'e:1:evt-1', calls: [] }),
    createdAt: T0,
    ...overrides,
  };
}

export function makeEffect(overrides: Partial<EffectRecord> = {}): EffectRecord {
  return {
    planKey: 'e:1:evt-1',
    callIndex: 0,
    idempotencyKey: 'e:1:evt-1:rule:0',
    ruleId: 'rule',
    outcome: 'done',
    status: 200,
    objectType: 'incident',
    objectId: 'inc-1',
    detail: null,
    at: T0,
    ...overrides,
  };
}

/**
 * Runs the engine storage contract against one adapter. `open` must return a new, empty store
 * each time it is called; the suite closes every store it opens.
 */
export function describeEngineStoreContract(name: string, open: () => Promise<EngineStore>): void {
  describe(`engine storage contract: ${name}`, () => {
    let store: EngineStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    /** Counts objects in turn and returns the ids the last count answered. */
    const countAll = async (inputs: Partial<CorrelationInput>[]) => {
      let members: string[] = [];
      for (const input of inputs) {
        members = (await store.correlate(makeCorrelation(input))).map((member) => member.id);
      }
      return members;
    };

    describe('correlate', () => {
      it('answers the first object counted under a key as the only member', async () => {
        expect(await store.correlate(makeCorrelation({ objectId: 'inc-1' }))).toEqual([
          { id: 'inc-1', type: 'incident' },
        ]);
      });

      it('counts distinct objects: the same object counted twice is one member', async () => {
        expect(
          await countAll([
            { objectId: 'inc-1', at: T0 },
            { objectId: 'inc-2', at: T0 + MINUTE },
            { objectId: 'inc-1', at: T0 + 2 * MINUTE },
          ]),
        ).toEqual(['inc-1', 'inc-2']);
      });

      it('lists members first counted first, whatever the order of their ids', async () => {
        expect(
          await countAll([
            { objectId: 'inc-c', at: T0 },
            { objectId: 'inc-a', at: T0 + MINUTE },
            { objectId: 'inc-b', at: T0 + 2 * MINUTE },
            { objectId: 'inc-c', at: T0 + 3 * MINUTE },
          ]),
        ).toEqual(['inc-c', 'inc-a', 'inc-b']);
      });

      it('drops objects counted before the window that ends at the new count', async () => {
        expect(
          await countAll([
            { objectId: 'inc-1', at: T0 },
            { objectId: 'inc-2', at: T0 + 30 * MINUTE },
            { objectId: 'inc-3', at: T0 + 61 * MINUTE },
          ]),
        ).toEqual(['inc-2', 'inc-3']);
      });

      it('no longer counts an object counted exactly one window earlier', async () => {
        expect(
          await countAll([
            { objectId: 'inc-1', at: T0 },
            { objectId: 'inc-2', at: T0 + HOUR },
          ]),
        ).toEqual(['inc-2']);
      });

      it('keeps an object in the window when it is counted again (its time moves forward)', async () => {
        expect(
          await countAll([
            { objectId: 'inc-1', at: T0 },
            { objectId: 'inc-1', at: T0 + 50 * MINUTE },
            { objectId: 'inc-2', at: T0 + 70 * MINUTE },
          ]),
        ).toEqual(['inc-1', 'inc-2']);
      });

      it('counts an object anew after it dropped out of the window', async () => {
        expect(
          await countAll([
            { objectId: 'inc-1', at: T0 },
            { objectId: 'inc-2', at: T0 + 10 * MINUTE },
            { objectId: 'inc-1', at: T0 + 2 * HOUR },
          ]),
        ).toEqual(['inc-1']);
      });

      it('never moves an object back in time when an older count arrives late', async () => {
        expect(
          await countAll([
            { objectId: 'inc-1', at: T0 + 50 * MINUTE },
            { objectId: 'inc-1', at: T0 },
            { objectId: 'inc-2', at: T0 + 100 * MINUTE },
          ]),
        ).toEqual(['inc-1', 'inc-2']);
      });

      it.each([
        ['another rule', { ruleId: 'other-rule' }],
        ['another key', { key: 'database' }],
        ['another account', { account: OTHER_ACCOUNT }],
      ])('keeps the members of %s apart', async (_name, other) => {
        await countAll([
          { objectId: 'inc-1', at: T0 },
          { objectId: 'inc-2', at: T0 + MINUTE },
        ]);
        expect(
          await store.correlate(
            makeCorrelation({ ...other, objectId: 'inc-3', at: T0 + 2 * MINUTE }),
          ),
        ).toEqual([{ id: 'inc-3', type: 'incident' }]);
        expect(await countAll([{ objectId: 'inc-4', at: T0 + 3 * MINUTE }])).toEqual([
          'inc-1',
          'inc-2',
          'inc-4',
        ]);
      });

      it('keeps the object type of each member', async () => {
        await store.correlate(makeCorrelation({ objectId: 'inc-1', objectType: 'incident' }));
        expect(
          await store.correlate(
            makeCorrelation({ objectId: 'prb-1', objectType: 'problem', at: T0 + MINUTE }),
          ),
        ).toEqual([
          { id: 'inc-1', type: 'incident' },
          { id: 'prb-1', type: 'problem' },
        ]);
      });
    });

    describe('releaseClaims', () => {
      it('releases the claims of one evaluation, so that another claimant can take the keys', async () => {
        await store.claimOnce(makeClaim({ claimant: 'e:1:42:rule-a', windowMs: null }));
        await store.claimOnce(
          makeClaim({ claimant: 'e:1:42:rule-b', ruleId: 'rule-b', windowMs: null }),
        );
        expect(await store.releaseClaims(ACCOUNT, 'e:1:42:')).toBe(2);
        expect(
          await store.claimOnce(makeClaim({ claimant: 'e:1:43:rule-a', windowMs: null })),
        ).toBe(true);
      });

      it('releases exactly the claims whose claimant starts with the prefix, around its bounds', async () => {
        const claimants = ['k', 'k:', 'k:a', 'k:\u{10FFFF}', 'k;', 'k9', 'é:x', 'é;', 'ê'];
        for (const [index, claimant] of claimants.entries()) {
          await store.claimOnce(makeClaim({ claimant, key: `key-${index}`, windowMs: null }));
        }
        expect(await store.releaseClaims(ACCOUNT, 'k:')).toBe(3);
        expect(await store.releaseClaims(ACCOUNT, 'é:')).toBe(1);
        // What is left is still held: another claimant is refused each of those keys.
        const kept = claimants.flatMap((claimant, index) =>
          ['k', 'k;', 'k9', 'é;', 'ê'].includes(claimant) ? [index] : [],
        );
        for (const [index] of claimants.entries()) {
          expect(
            await store.claimOnce(
              makeClaim({ claimant: 'other', key: `key-${index}`, windowMs: null }),
            ),
            claimants[index],
          ).toBe(!kept.includes(index));
        }
      });

      it.each([
        ['another event whose id starts the same', 'e:1:420:rule-a', ACCOUNT, 'e:1:42:'],
        ['another account', 'e:1:42:rule-a', OTHER_ACCOUNT, 'e:1:42:'],
        // With LIKE, _ would match any character: s:1:r:t:a_b: must not release s:1:r:t:aXb:...
        ['an id that differs where the prefix has an _', 's:1:r:t:aXb:r', ACCOUNT, 's:1:r:t:a_b:'],
      ])('keeps the claims of %s', async (_name, claimant, account, prefix) => {
        await store.claimOnce(makeClaim({ claimant, account, windowMs: null }));
        expect(await store.releaseClaims(ACCOUNT, prefix)).toBe(0);
        expect(
          await store.claimOnce(makeClaim({ claimant: 'other', account, windowMs: null })),
        ).toBe(false);
      });
    });

    describe('renewClaim', () => {
      const lease = { claimant: 'drain:a', windowMs: 2 * MINUTE };

      it('keeps a held claim alive past its first window', async () => {
        expect(await store.claimOnce(makeClaim({ ...lease, at: T0 }))).toBe(true);
        expect(await store.renewClaim(makeClaim({ ...lease, at: T0 + MINUTE }))).toBe(true);
        // Two minutes after the claim, but one after the renewal: still held.
        expect(
          await store.claimOnce(makeClaim({ ...lease, claimant: 'drain:b', at: T0 + 2 * MINUTE })),
        ).toBe(false);
        expect(
          await store.claimOnce(makeClaim({ ...lease, claimant: 'drain:b', at: T0 + 3 * MINUTE })),
        ).toBe(true);
      });

      it('fails for a claimant that no longer holds the claim, and changes nothing', async () => {
        await store.claimOnce(makeClaim({ ...lease, at: T0 }));
        await store.claimOnce(makeClaim({ ...lease, claimant: 'drain:b', at: T0 + 3 * MINUTE }));
        expect(await store.renewClaim(makeClaim({ ...lease, at: T0 + 4 * MINUTE }))).toBe(false);
        expect(
          await store.claimOnce(makeClaim({ ...lease, claimant: 'drain:c', at: T0 + 4 * MINUTE })),
        ).toBe(false);
      });

      it('fails for a claim that was never taken or was released', async () => {
        expect(await store.renewClaim(makeClaim({ ...lease, at: T0 }))).toBe(false);
        await store.claimOnce(makeClaim({ ...lease, at: T0 }));
        await store.releaseClaims(ACCOUNT, 'drain:a');
        expect(await store.renewClaim(makeClaim({ ...lease, at: T0 + MINUTE }))).toBe(false);
      });

      it('never moves a claim back in time', async () => {
        await store.claimOnce(makeClaim({ ...lease, at: T0 }));
        await store.renewClaim(makeClaim({ ...lease, at: T0 + MINUTE }));
        expect(await store.renewClaim(makeClaim({ ...lease, at: T0 }))).toBe(true);
        expect(
          await store.claimOnce(makeClaim({ ...lease, claimant: 'drain:b', at: T0 + 2 * MINUTE })),
        ).toBe(false);
      });
    });

    describe('claimOnce', () => {
      it('grants the first claim of a key', async () => {
        expect(await store.claimOnce(makeClaim())).toBe(true);
      });

      it.each([
        ['a window', HOUR],
        ['no window', null],
      ])('refuses another claimant while the claim holds (%s)', async (_name, windowMs) => {
        await store.claimOnce(makeClaim({ claimant: 'first', windowMs }));
        expect(
          await store.claimOnce(makeClaim({ claimant: 'second', windowMs, at: T0 + 59 * MINUTE })),
        ).toBe(false);
      });

      it('lets the same claimant pass again, so that a re-run of the same event finishes', async () => {
        await store.claimOnce(makeClaim({ claimant: 'first' }));
        await store.claimOnce(makeClaim({ claimant: 'second', at: T0 + MINUTE }));
        expect(await store.claimOnce(makeClaim({ claimant: 'first', at: T0 + 2 * MINUTE }))).toBe(
          true,
        );
      });

      it('lets another claimant take the key once the window has passed, and holds it for them', async () => {
        await store.claimOnce(makeClaim({ claimant: 'first' }));
        expect(await store.claimOnce(makeClaim({ claimant: 'second', at: T0 + HOUR }))).toBe(true);
        expect(await store.claimOnce(makeClaim({ claimant: 'first', at: T0 + HOUR + 1 }))).toBe(
          false,
        );
        expect(
          await store.claimOnce(makeClaim({ claimant: 'third', at: T0 + HOUR + 59 * MINUTE })),
        ).toBe(false);
        expect(await store.claimOnce(makeClaim({ claimant: 'third', at: T0 + 2 * HOUR }))).toBe(
          true,
        );
      });

      it('counts the window from when the claim was taken, not from a later pass of the holder', async () => {
        await store.claimOnce(makeClaim({ claimant: 'first' }));
        expect(await store.claimOnce(makeClaim({ claimant: 'first', at: T0 + 30 * MINUTE }))).toBe(
          true,
        );
        expect(await store.claimOnce(makeClaim({ claimant: 'second', at: T0 + HOUR }))).toBe(true);
      });

      it('never lets a claim without a window lapse', async () => {
        await store.claimOnce(makeClaim({ claimant: 'first', windowMs: null }));
        expect(
          await store.claimOnce(
            makeClaim({ claimant: 'second', windowMs: null, at: T0 + 3650 * DAY }),
          ),
        ).toBe(false);
      });

      it.each([
        ['another rule', { ruleId: 'other-rule' }],
        ['another key', { key: 'inc-2' }],
        ['another account', { account: OTHER_ACCOUNT }],
      ])('keeps the claims of %s apart', async (_name, other) => {
        await store.claimOnce(makeClaim({ claimant: 'first', windowMs: null }));
        expect(await store.claimOnce(makeClaim({ ...other, claimant: 'second' }))).toBe(true);
        expect(await store.claimOnce(makeClaim({ claimant: 'second' }))).toBe(false);
      });
    });

    describe('plans', () => {
      it('answers null for a plan that was never saved', async () => {
        expect(await store.getPlan('e:1:missing')).toBeNull();
      });

      it('stores a plan and answers it by key', async () => {
        const plan = makeStoredPlan();
        expect(await store.savePlan(plan)).toEqual(plan);
        expect(await store.getPlan(plan.key)).toEqual(plan);
      });

      it('keeps the first plan saved under a key and answers it to a later save', async () => {
        const first = makeStoredPlan({ body: '{"calls":["first"]}' });
        await store.savePlan(first);
        expect(
          await store.savePlan(makeStoredPlan({ body: '{"calls":["second"]}', createdAt: T0 + 1 })),
        ).toEqual(first);
        expect(await store.getPlan(first.key)).toEqual(first);
      });

      it('keeps plans of different keys apart', async () => {
        const a = makeStoredPlan({ key: 'e:1:a', body: '"a"' });
        const b = makeStoredPlan({ key: 'e:2:a', account: OTHER_ACCOUNT, body: '"b"' });
        await store.savePlan(a);
        await store.savePlan(b);
        expect(await store.getPlan('e:1:a')).toEqual(a);
        expect(await store.getPlan('e:2:a')).toEqual(b);
      });
    });

    describe('effects', () => {
      it('answers no effects for a plan without any', async () => {
        expect(await store.listEffects('e:1:nothing')).toEqual([]);
      });

      it('keeps every field of an effect, nulls included', async () => {
        const done = makeEffect();
        const failed = makeEffect({
          callIndex: 1,
          idempotencyKey: 'e:1:evt-1:rule:1',
          outcome: 'failed',
          status: null,
          objectType: null,
          objectId: null,
          detail: 'connection refused',
          at: T0 + 5,
        });
        await store.recordEffect(done);
        await store.recordEffect(failed);
        expect(await store.listEffects(done.planKey)).toEqual([done, failed]);
      });

      it('keeps the first record of a call and ignores a later one', async () => {
        const first = makeEffect({ outcome: 'done', status: 201, objectId: 'prb-1' });
        await store.recordEffect(first);
        await store.recordEffect(
          makeEffect({ outcome: 'failed', status: 500, objectId: null, at: T0 + 1 }),
        );
        expect(await store.listEffects(first.planKey)).toEqual([first]);
      });

      it('lists the effects of a plan by call index, whatever order they were recorded in', async () => {
        for (const callIndex of [2, 0, 1]) {
          await store.recordEffect(
            makeEffect({ callIndex, idempotencyKey: `e:1:evt-1:rule:${callIndex}` }),
          );
        }
        await store.recordEffect(makeEffect({ planKey: 'e:1:evt-2', callIndex: 0 }));
        expect((await store.listEffects('e:1:evt-1')).map((effect) => effect.callIndex)).toEqual([
          0, 1, 2,
        ]);
        expect((await store.listEffects('e:1:evt-2')).map((effect) => effect.planKey)).toEqual([
          'e:1:evt-2',
        ]);
      });
    });

    describe('latestEffectWithPlan: the effect', () => {
      /** Records effects in the order given, each in its own plan unless it names one. */
      const recordAll = async (effects: Partial<EffectRecord>[]) => {
        for (const [index, effect] of effects.entries()) {
          await store.recordEffect(
            makeEffect({
              planKey: `e:1:evt-${index}`,
              idempotencyKey: `e:1:evt-${index}:rule:0`,
              ...effect,
            }),
          );
        }
      };

      it.each<[string, Partial<EffectRecord>[], string | null]>([
        ['nothing for an object no effect touched', [{ objectId: 'inc-2', detail: 'a' }], null],
        [
          'the successful effect, ignoring a later failed one',
          [
            { detail: 'done', at: T0 },
            { detail: 'failed', outcome: 'failed', at: T0 + MINUTE },
          ],
          'done',
        ],
        ['nothing when every effect on the object failed', [{ outcome: 'failed' }], null],
        [
          'the latest by time, whatever order they were recorded in',
          [
            { detail: 'latest', at: T0 + 2 * MINUTE },
            { detail: 'earlier', at: T0 + MINUTE },
          ],
          'latest',
        ],
        [
          'the last recorded of effects at the same time',
          [
            { detail: 'first', at: T0 },
            { detail: 'second', at: T0 },
            { detail: 'third', at: T0 },
          ],
          'third',
        ],
        [
          'an effect on this object, not a later one on another',
          [
            { detail: 'this', at: T0 },
            { detail: 'other', objectId: 'inc-2', at: T0 + MINUTE },
          ],
          'this',
        ],
      ])('answers %s', async (_name, effects, detail) => {
        await recordAll(effects);
        const latest = await latestEffect(store, 'inc-1');
        expect(latest?.detail ?? null).toBe(detail);
        const withPlan = await store.latestEffectWithPlan('inc-1');
        expect(withPlan?.effect ?? null).toEqual(latest);
      });

      it('answers the latest effect with its plan, and with none once the plan is gone', async () => {
        const plan = makeStoredPlan({ body: JSON.stringify({ selfHops: 2 }) });
        const effect = makeEffect({ detail: 'planned' });
        await store.savePlan(plan);
        await store.recordEffect(effect);
        expect(await store.latestEffectWithPlan('inc-1')).toEqual({ effect, plan });
        // An effect whose plan is not stored (purged, or never saved) stands alone.
        const orphan = makeEffect({
          planKey: 'e:1:evt-9',
          idempotencyKey: 'e:1:evt-9:rule:0',
          at: T0 + MINUTE,
        });
        await store.recordEffect(orphan);
        expect(await store.latestEffectWithPlan('inc-1')).toEqual({ effect: orphan, plan: null });
        expect(await store.latestEffectWithPlan('inc-404')).toBeNull();
      });

      it('answers every field of the effect', async () => {
        const effect = makeEffect({ callIndex: 3, status: 201, detail: 'created', at: T0 + 7 });
        await store.recordEffect(effect);
        expect(await latestEffect(store, 'inc-1')).toEqual(effect);
      });

      it('answers an effect of another plan call on the same object when it is later', async () => {
        const first = makeEffect({ callIndex: 0, at: T0 });
        const second = makeEffect({ callIndex: 1, idempotencyKey: 'e:1:evt-1:rule:1', at: T0 + 1 });
        await store.recordEffect(first);
        await store.recordEffect(second);
        expect(await latestEffect(store, 'inc-1')).toEqual(second);
      });
    });

    // Two Worker invocations (or queue consumers) can act on the same key at the same moment;
    // what each of them is answered must be as if the calls had run one after the other.
    describe('concurrent calls', () => {
      const CLAIMANTS = ['first', 'second', 'third', 'fourth', 'fifth'];

      it('grants exactly one of several concurrent claims of a key, and holds it for that claimant', async () => {
        const granted = await Promise.all(
          CLAIMANTS.map((claimant) => store.claimOnce(makeClaim({ claimant }))),
        );
        const winners = CLAIMANTS.filter((_claimant, index) => granted[index]);
        expect(winners).toHaveLength(1);
        for (const claimant of CLAIMANTS) {
          expect(await store.claimOnce(makeClaim({ claimant, at: T0 + MINUTE }))).toBe(
            claimant === winners[0],
          );
        }
      });

      it('grants exactly one of several concurrent claims of a lapsed key', async () => {
        await store.claimOnce(makeClaim({ claimant: 'holder' }));
        const granted = await Promise.all(
          CLAIMANTS.map((claimant) => store.claimOnce(makeClaim({ claimant, at: T0 + HOUR }))),
        );
        expect(granted.filter(Boolean)).toHaveLength(1);
      });

      it('answers every one of several concurrent saves of a plan with the plan stored first', async () => {
        const saved = await Promise.all(
          CLAIMANTS.map((name) => store.savePlan(makeStoredPlan({ body: JSON.stringify(name) }))),
        );
        const stored = await store.getPlan(makeStoredPlan().key);
        expect(stored).not.toBeNull();
        expect(saved).toEqual(CLAIMANTS.map(() => stored));
      });

      it('lets exactly one of two concurrent counts see the other object', async () => {
        const answers = await Promise.all([
          store.correlate(makeCorrelation({ objectId: 'inc-1' })),
          store.correlate(makeCorrelation({ objectId: 'inc-2' })),
        ]);
        expect(answers.map((members) => members.length).sort()).toEqual([1, 2]);
      });
    });

    describe('purge', () => {
      const oldPlan = makeStoredPlan({ key: 'e:1:old', createdAt: T0 });
      const recentPlan = makeStoredPlan({ key: 'e:1:recent', createdAt: T0 + DAY });
      const oldEffect = makeEffect({ planKey: 'e:1:old', idempotencyKey: 'e:1:old:rule:0' });
      const recentEffect = makeEffect({
        planKey: 'e:1:recent',
        idempotencyKey: 'e:1:recent:rule:0',
        objectId: 'inc-2',
        at: T0 + DAY,
      });

      const saveBoth = async () => {
        await store.savePlan(oldPlan);
        await store.savePlan(recentPlan);
        await store.recordEffect(oldEffect);
        await store.recordEffect(recentEffect);
      };

      it('deletes the plans created before the limit with their effects, and keeps the rest', async () => {
        await saveBoth();
        expect(await store.purge(T0 + HOUR)).toBe(1);
        expect(await store.getPlan(oldPlan.key)).toBeNull();
        expect(await store.listEffects(oldPlan.key)).toEqual([]);
        expect(await latestEffect(store, 'inc-1')).toBeNull();
        expect(await store.getPlan(recentPlan.key)).toEqual(recentPlan);
        expect(await store.listEffects(recentPlan.key)).toEqual([recentEffect]);
        expect(await latestEffect(store, 'inc-2')).toEqual(recentEffect);
      });

      it.each([
        ['nothing was created before the limit', T0, 0],
        ['keeps a plan created exactly at the limit', T0 + DAY, 1],
        ['counts every plan created before the limit', T0 + DAY + 1, 2],
      ])('returns the number of plans deleted: %s', async (_name, before, deleted) => {
        await saveBoth();
        expect(await store.purge(before)).toBe(deleted);
        expect(await store.purge(before)).toBe(0);
      });

      it('keeps once-only claims, so a claim without a window still holds', async () => {
        await store.claimOnce(makeClaim({ claimant: 'first', windowMs: null, at: T0 }));
        await store.purge(T0 + 365 * DAY);
        expect(
          await store.claimOnce(
            makeClaim({ claimant: 'second', windowMs: null, at: T0 + 366 * DAY }),
          ),
        ).toBe(false);
      });

      it('deletes correlation rows counted before the limit, so a later count starts without them', async () => {
        const week = 7 * DAY;
        await countAll([
          { objectId: 'inc-1', at: T0, windowMs: week },
          { objectId: 'inc-2', at: T0 + 2 * MINUTE, windowMs: week },
        ]);
        await store.purge(T0 + MINUTE);
        expect(
          await countAll([{ objectId: 'inc-3', at: T0 + 3 * MINUTE, windowMs: week }]),
        ).toEqual(['inc-2', 'inc-3']);
      });
    });
  });
}
