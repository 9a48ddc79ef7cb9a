// The per-turn batch of notification notes. The write and the deferral are the batch's own
// arguments, written here: the write records each call (or fails when told to), and the test
// runs the deferred flush itself, so each "turn" ends exactly where the test says.
import { describe, expect, it } from 'vitest';
import { createNoteBatch, type NoteBatchOptions } from './note-batch.js';

function setup(options: { fail?: () => Error | null } = {}) {
  const writes: { accounts: number[]; at: number }[] = [];
  const written: { accounts: number[]; at: number }[] = [];
  const failures: unknown[] = [];
  const deferred: (() => void)[] = [];
  let clock = 1000;
  const batch = createNoteBatch({
    write(accounts, at) {
      const error = options.fail?.() ?? null;
      if (error) throw error;
      writes.push({ accounts: [...accounts], at });
    },
    defer: (flush) => deferred.push(flush),
    onWritten: (accounts, at) => written.push({ accounts: [...accounts], at }),
    onFailed: (error) => failures.push(error),
    now: () => clock,
  } satisfies NoteBatchOptions);
  /** Ends the turn: runs the flushes deferred so far, and lets their promises settle. */
  const endTurn = async () => {
    for (const flush of deferred.splice(0)) flush();
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return {
    batch,
    writes,
    written,
    failures,
    deferred,
    endTurn,
    tick: () => {
      clock += 5;
    },
  };
}

describe('the per-turn batch of notification notes', () => {
  it('writes every account of a turn in one write, each once, and answers none before it', async () => {
    const t = setup();
    const settled: number[] = [];
    const adds = [7, 8, 7, 9].map((account) =>
      t.batch.add(account).then(() => settled.push(account)),
    );
    // One flush deferred for the whole turn, nothing written or answered yet.
    expect(t.deferred).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(t.writes).toEqual([]);
    expect(settled).toEqual([]);

    await t.endTurn();
    await Promise.all(adds);
    expect(t.writes).toEqual([{ accounts: [7, 8, 9], at: 1000 }]);
    expect(t.written).toEqual([{ accounts: [7, 8, 9], at: 1000 }]);
    expect(settled).toEqual([7, 8, 7, 9]);
  });

  it('starts a new batch for a notification after the flush', async () => {
    const t = setup();
    const first = t.batch.add(1);
    await t.endTurn();
    await first;
    t.tick();
    const second = t.batch.add(1);
    expect(t.deferred).toHaveLength(1);
    await t.endTurn();
    await second;
    expect(t.writes).toEqual([
      { accounts: [1], at: 1000 },
      { accounts: [1], at: 1005 },
    ]);
  });

  it('refuses every notification of a batch whose write failed, and takes the next turn afresh', async () => {
    let failing = true;
    const t = setup({
      fail: () => (failing ? new Error('attempt to write a readonly database') : null),
    });
    const refused = [3, 4].map((account) => t.batch.add(account));
    await t.endTurn();
    for (const add of refused) {
      await expect(add).rejects.toThrow('attempt to write a readonly database');
    }
    expect(t.failures).toHaveLength(1);
    expect(t.written).toEqual([]);

    failing = false;
    const again = t.batch.add(3);
    await t.endTurn();
    await again;
    expect(t.written).toEqual([{ accounts: [3], at: 1000 }]);
  });

  it('waits for a write that answers later (a D1-like store) before answering', async () => {
    let finish: () => void = () => {};
    const written: number[][] = [];
    const deferred: (() => void)[] = [];
    const batch = createNoteBatch({
      write: (accounts) =>
        new Promise<void>((resolve) => {
          finish = () => {
            written.push([...accounts]);
            resolve();
          };
        }),
      defer: (flush) => deferred.push(flush),
    });
    let answered = false;
    const add = batch.add(5).then(() => {
      answered = true;
    });
    for (const flush of deferred.splice(0)) flush();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(answered).toBe(false);
    finish();
    await add;
    expect(written).toEqual([[5]]);
  });
});
