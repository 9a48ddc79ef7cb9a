// No head-of-line blocking, end to end all-in-one on 127.0.0.1: an `http` endpoint that is down
// parks the object whose rule calls it (that event and every later event of the object), while
// the account's other objects are acted on and its cursor moves on. The parked work is visible
// (GET /admin/parked, /runs outcome parked, metrics, the log), survives a restart, is retried on
// its schedule or by an operator, and once the endpoint is back each of its events acts exactly
// once, in order. Everything is checked by counts, never by durations.
import { mkdtempSync, rmSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StartEngineOptions } from '../../src/runtime/engine.js';
import {
  type Cleanups,
  callOutRule,
  createIncident as create,
  runCleanups,
  listRuns as runs,
  startEngineWithEndpoints,
  startHttpEndpoint,
  updateIncident,
} from '../helpers/pipeline.js';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';
import { eventually, startTestEngine, type TestEngine } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));

interface Call {
  object: string;
  event: string;
}

/** An outside endpoint that answers 503 while it is down; it records the calls it accepted. */
async function startEndpoint(down: boolean) {
  const state = { down };
  const accepted: Call[] = [];
  const refused: Call[] = [];
  const receiver = await startReceiver({
    answer: (request) => {
      const call = JSON.parse(request.body.toString('utf8')) as Call;
      if (state.down) {
        refused.push(call);
        return { status: 503, body: 'down for maintenance' };
      }
      accepted.push(call);
      return { status: 200, body: 'ok' };
    },
  });
  cleanups.push(() => receiver.close());
  return { receiver, state, accepted, refused };
}

/** Incidents of category `dead` call the first endpoint, every other incident the second. */
const rulesFor = (dead: string, live: string) => ({
  'incident/to-dead.yaml': callOutRule({
    url: dead,
    when: '{"==": [{var: object.category}, dead]}',
  }),
  'incident/to-live.yaml': callOutRule({
    url: live,
    when: '{"!=": [{var: object.category}, dead]}',
  }),
});

function start(
  dead: TestReceiver,
  live: TestReceiver,
  overrides: Partial<StartEngineOptions> = {},
): Promise<TestEngine> {
  return startEngineWithEndpoints(
    cleanups,
    rulesFor(dead.url, live.url),
    [dead.url, live.url],
    overrides,
  );
}

const update = (engine: TestEngine, account: number, id: string, description: string) =>
  updateIncident(engine, account, id, { description });

async function parked(engine: TestEngine, query = ''): Promise<Json[]> {
  const response = await engine.call('GET', `/admin/parked${query}`);
  expect(response.status, response.text).toBe(200);
  expect(response.json.type).toBe('parked_list');
  return response.json.objects;
}

async function eventIdsOf(engine: TestEngine, account: number, objectId: string) {
  const response = await engine.call('GET', `/v1/accounts/${account}/events?page_size=1000`);
  return (response.json.objects as Json[])
    .filter((event) => event.metadata.id === objectId)
    .map((event) => String(event.id));
}

describe('an object whose action keeps failing is parked', () => {
  it("lets the account's other objects go on, and acts exactly once per event after an operator's retry", async () => {
    const dead = await startEndpoint(true);
    const live = await startEndpoint(false);
    // No retry on the clock within the test: the operator's retry is what brings it back.
    const engine = await start(dead.receiver, live.receiver, { parkRetry: { baseMs: 600_000 } });
    const account = 31;

    const stuck = await create(engine, account, { category: 'dead', description: 'first' });
    const others: Json[] = [];
    for (let i = 0; i < 4; i++) {
      others.push(await create(engine, account, { category: 'network', description: `n${i}` }));
    }
    await update(engine, account, stuck.id, 'second');
    for (const other of others) await update(engine, account, other.id, 'changed');
    await update(engine, account, stuck.id, 'third');

    // The other objects' 8 changes are acted on; the stuck object's 3 events are parked.
    await eventually(async () => {
      await engine.idle();
      return (await runs(engine, `account=${account}`)).length === 11;
    }, 'a run for each of the 11 events');
    expect(live.accepted).toHaveLength(8);
    const doneRuns = await runs(engine, `account=${account}&outcome=done`);
    expect(doneRuns).toHaveLength(8);
    expect(doneRuns.every((run: Json) => run.object.id !== stuck.id)).toBe(true);
    const parkedRuns = await runs(engine, `account=${account}&outcome=parked`);
    expect(parkedRuns.map((run: Json) => run.object.id)).toEqual([stuck.id, stuck.id, stuck.id]);
    expect(parkedRuns.at(-1).summary).toMatch(/^parked: .*503/);
    expect(parkedRuns[0].summary).toMatch(/waits behind an earlier event/);

    // The cursor moved past the parked events: the account is drained to the end.
    const state = await engine.pipelineStore.getAccount(account);
    expect(state?.drainedAt).not.toBeNull();

    const list = await parked(engine, `?account=${account}`);
    expect(list).toEqual([
      expect.objectContaining({
        account,
        object: { type: 'incident', id: stuck.id },
        attempts: 1,
        events: 3,
        error: expect.stringContaining('503'),
      }),
    ]);
    expect(await parked(engine, '?object_id=someone-else')).toEqual([]);
    // Only the first event was tried (the client's own retries included); the later ones wait.
    const [first, second, third] = await eventIdsOf(engine, account, stuck.id);
    expect(dead.refused.length).toBeGreaterThan(0);
    expect(dead.refused.every((call) => call.event === first)).toBe(true);

    const metrics = await engine.call('GET', '/metrics');
    expect(metrics.text).toMatch(/^itsm_rules_parked_objects 1$/m);
    expect(metrics.text).toMatch(/^itsm_rules_parked_total 1$/m);
    expect(engine.logs.some((line) => line.includes(`incident ${stuck.id} PARKED`))).toBe(true);

    // The endpoint is back; the operator retries that object.
    dead.state.down = false;
    const retry = await engine.call('POST', '/admin/parked/retry', {
      body: { account, object_id: stuck.id },
    });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json).toMatchObject({ retried: 1 });

    await eventually(async () => {
      await engine.idle();
      return (await parked(engine)).length === 0;
    }, 'the object to be unparked');
    // Each of its events acted exactly once, in the order they happened.
    expect(dead.accepted).toEqual([
      { object: stuck.id, event: first },
      { object: stuck.id, event: second },
      { object: stuck.id, event: third },
    ]);
    expect(await runs(engine, `account=${account}&outcome=parked`)).toEqual([]);
    expect(await runs(engine, `account=${account}&object_id=${stuck.id}`)).toHaveLength(3);
    expect(
      (await runs(engine, `account=${account}&object_id=${stuck.id}`)).every(
        (run: Json) => run.outcome === 'done',
      ),
    ).toBe(true);
    expect(live.accepted).toHaveLength(8);
    const after = await engine.call('GET', '/metrics');
    expect(after.text).toMatch(/^itsm_rules_parked_objects 0$/m);
    expect(after.text).toMatch(/^itsm_rules_parked_retries_total\{result="done"\} 1$/m);
  });

  it('adds a later event of a parked object behind it, in a later drain', async () => {
    const dead = await startEndpoint(true);
    const live = await startEndpoint(false);
    const engine = await start(dead.receiver, live.receiver, { parkRetry: { baseMs: 600_000 } });
    const account = 32;
    const stuck = await create(engine, account, { category: 'dead', description: 'first' });
    await eventually(async () => (await parked(engine)).length === 1, 'the object to be parked');
    await engine.idle();
    await update(engine, account, stuck.id, 'second');
    await eventually(async () => {
      await engine.idle();
      return (await parked(engine))[0]?.events === 2;
    }, 'the later event to wait behind it');
    expect(dead.refused.every((call) => call.event === dead.refused[0]?.event)).toBe(true);

    dead.state.down = false;
    const retry = await engine.call('POST', '/admin/parked/retry', { body: {} });
    expect(retry.json).toMatchObject({ retried: 1 });
    await eventually(async () => {
      await engine.idle();
      return (await parked(engine)).length === 0;
    }, 'the object to be unparked');
    expect(dead.accepted.map((call) => call.event)).toEqual(
      await eventIdsOf(engine, account, stuck.id),
    );
  });

  it("does not hold the account's other objects while a parked object's retry waits on a slow endpoint", async () => {
    // An endpoint that is down (503), then, once back, holds its answers until the test lets go.
    const mode = { down: true, hold: false };
    const accepted: Call[] = [];
    const held: { call: Call; res: ServerResponse }[] = [];
    const slow = await startHttpEndpoint(cleanups, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const call = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Call;
        if (mode.down) {
          res.writeHead(503).end('down');
          return;
        }
        if (mode.hold) {
          held.push({ call, res });
          return;
        }
        accepted.push(call);
        res.writeHead(200).end('ok');
      });
    });
    const live = await startEndpoint(false);
    const engine = await startEngineWithEndpoints(
      cleanups,
      rulesFor(slow, live.receiver.url),
      [slow, live.receiver.url],
      { parkRetry: { baseMs: 600_000 } },
    );
    const account = 34;
    const stuck = await create(engine, account, { category: 'dead', description: 'first' });
    await eventually(async () => (await parked(engine)).length === 1, 'the object to be parked');

    // Back, but slow: the retry's call hangs.
    mode.down = false;
    mode.hold = true;
    await engine.call('POST', '/admin/parked/retry');
    await eventually(() => held.length === 1, 'the retry to be waiting on the endpoint');

    // Meanwhile another incident of the account is acted on, and a new change of the stuck one
    // waits behind it.
    const other = await create(engine, account, { category: 'network', description: 'n' });
    await update(engine, account, stuck.id, 'second');
    await eventually(
      () => live.accepted.some((call) => call.object === other.id),
      "the other incident's call while the retry still waits",
    );
    expect(held).toHaveLength(1);
    expect((await parked(engine))[0]).toMatchObject({ object: { id: stuck.id } });

    // The endpoint answers: the stuck incident's two events act once each, in order.
    mode.hold = false;
    for (const { call, res } of held.splice(0)) {
      accepted.push(call);
      res.writeHead(200).end('ok');
    }
    await eventually(async () => {
      await engine.idle();
      return (await parked(engine)).length === 0 && accepted.length === 2;
    }, 'the object to be unparked');
    expect(accepted.map((call) => call.event)).toEqual(await eventIdsOf(engine, account, stuck.id));
  });

  it('keeps parked work over a restart and retries it on its schedule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'itsm-parking-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, 'engine.db');
    const dead = await startEndpoint(true);
    const live = await startEndpoint(false);
    const schedule = { parkRetry: { baseMs: 200, maxMs: 400 }, parkCheckMs: 50, db };
    const account = 33;

    const first = await start(dead.receiver, live.receiver, schedule);
    const stuck = await create(first, account, { category: 'dead', description: 'first' });
    // Retried on its schedule while the endpoint is still down: the attempts go up.
    await eventually(
      async () => ((await parked(first))[0]?.attempts ?? 0) >= 2,
      'a scheduled retry that fails again',
    );
    await first.close();

    dead.state.down = false;
    const second = await start(dead.receiver, live.receiver, schedule);
    await eventually(async () => {
      await second.idle();
      return (await parked(second)).length === 0;
    }, 'the object to be unparked after the restart');
    expect(dead.accepted).toEqual([
      { object: stuck.id, event: (await eventIdsOf(second, account, stuck.id))[0] },
    ]);
    const done = await runs(second, `account=${account}&object_id=${stuck.id}`);
    expect(done.map((run: Json) => run.outcome)).toEqual(['done']);
  });
});

describe('the parked admin routes refuse bad input', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine();
  });
  afterAll(async () => {
    await engine?.close();
  });

  it.each([
    ['GET', '/admin/parked?bogus=1', undefined, 400, /unknown query parameter "bogus"/],
    ['GET', '/admin/parked?account=abc', undefined, 400, /account/],
    ['POST', '/admin/parked/retry', { id: 'seven' }, 400, /id must be the id of a parked object/],
    ['POST', '/admin/parked/retry', { id: 0 }, 400, /id must be the id of a parked object/],
    ['POST', '/admin/parked/retry', { account: -1 }, 400, /account/],
    ['POST', '/admin/parked/retry', { object_id: '' }, 400, /object_id must be/],
    ['POST', '/admin/parked/retry', { colour: 'red' }, 400, /unknown field "colour"/],
    ['POST', '/admin/parked/retry', '[1]', 400, /JSON object/],
    ['POST', '/admin/parked/retry', '{', 400, /must be a JSON object/],
    ['GET', '/admin/parked/retry', undefined, 405, /use POST/],
    ['POST', '/admin/parked', undefined, 405, /use GET/],
  ])('%s %s %j: %i', async (method, path, body, status, message) => {
    const response = await engine.call(method, path, body === undefined ? {} : { body });
    expect(response.status, response.text).toBe(status);
    expect(response.json.message).toMatch(message);
  });

  it('needs the API key', async () => {
    expect((await engine.call('GET', '/admin/parked', { auth: null })).status).toBe(401);
    expect((await engine.call('POST', '/admin/parked/retry', { auth: null })).status).toBe(401);
  });
});
