// The spacing of the drain queue's passes. The deferral, the timer and the clock are the
// function's own arguments, written here: the test runs each deferred pass itself and moves the
// clock, so each "turn" and each wait ends exactly where the test says.
import { describe, expect, it } from 'vitest';
import { pacedPasses } from './paced-passes.js';
import { createDrainQueue } from './queue.js';

function setup(intervalMs: number) {
  let clock = 1000;
  const endOfTurn: (() => void)[] = [];
  const waits: { ms: number; pass: () => void }[] = [];
  const defer = pacedPasses({
    intervalMs,
    defer: (pass) => endOfTurn.push(pass),
    wait: (pass, ms) => waits.push({ ms, pass }),
    now: () => clock,
  });
  return {
    defer,
    endOfTurn,
    waits,
    advance: (ms: number) => {
      clock += ms;
    },
    endTurn: () => {
      for (const pass of endOfTurn.splice(0)) pass();
    },
  };
}

describe('paced drain passes', () => {
  it('runs the first pass, and one after a quiet spell, at the end of the turn', () => {
    const paced = setup(5);
    const ran: string[] = [];
    paced.defer(() => ran.push('first'));
    expect(paced.endOfTurn).toHaveLength(1);
    paced.endTurn();
    paced.advance(5);
    paced.defer(() => ran.push('after the interval'));
    paced.endTurn();
    expect(ran).toEqual(['first', 'after the interval']);
    expect(paced.waits).toEqual([]);
  });

  it('makes a pass asked for within the interval of the last one wait for the rest of it', () => {
    const paced = setup(5);
    const ran: string[] = [];
    paced.defer(() => ran.push('first'));
    paced.endTurn();
    paced.advance(2);
    paced.defer(() => ran.push('second'));
    expect(paced.endOfTurn).toHaveLength(0);
    expect(paced.waits.map((w) => w.ms)).toEqual([3]);
    paced.advance(3);
    paced.waits[0]?.pass();
    // The interval counts from the pass that ran last.
    paced.defer(() => ran.push('third'));
    expect(paced.waits.map((w) => w.ms)).toEqual([3, 5]);
    expect(ran).toEqual(['first', 'second']);
  });

  it('runs every pass at the end of its turn with an interval of 0', () => {
    const paced = setup(0);
    let passes = 0;
    for (let turn = 0; turn < 3; turn++) {
      paced.defer(() => passes++);
      paced.endTurn();
    }
    expect(passes).toBe(3);
    expect(paced.waits).toEqual([]);
  });

  it('starts the drains of accounts notified in quick turns in fewer passes, each taking every notification of its account', async () => {
    const paced = setup(5);
    const started: number[] = [];
    const queue = createDrainQueue({
      drain: async (account) => {
        started.push(account);
      },
      concurrency: 16,
      startsPerPass: 2,
      defer: paced.defer,
    });
    // Turn 1: two accounts notified; the pass at its end starts both.
    queue.notify(1);
    queue.notify(2);
    paced.endTurn();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(started).toEqual([1, 2]);
    // The two drains ended at once and asked for the next pass: it waits out the interval.
    expect(paced.waits.map((w) => w.ms)).toEqual([5]);
    // Turns 2 to 4, each 1 ms after the last: accounts 1 and 2 notified again, with 3, in every
    // turn. No pass runs before the interval, so each waits once, whatever its notifications.
    for (let turn = 0; turn < 3; turn++) {
      paced.advance(1);
      for (const account of [1, 2, 3]) queue.notify(account);
      paced.endTurn();
    }
    expect(started).toEqual([1, 2]);
    expect(queue.status().pending).toEqual([1, 2, 3]);
    expect(paced.waits.map((w) => w.ms)).toEqual([5]);
    expect(paced.endOfTurn).toHaveLength(0);
    paced.advance(2);
    paced.waits[0]?.pass();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(started).toEqual([1, 2, 1, 2]);
    await queue.close();
  });
});
