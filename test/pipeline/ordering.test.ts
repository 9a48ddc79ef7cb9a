// Order per object, concurrency across objects, end to end all-in-one on 127.0.0.1: the rules'
// `http` calls go to a test receiver that records when each call arrives and leaves, so the
// tests see, by counts and by order (never by durations), that one object's events are taken one
// after another in event order while different objects' are taken at the same time, and that the
// decisions objects share (correlation counts, once_per claims) stay exact under that concurrency.
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Cleanups,
  callOutRule,
  createIncident as create,
  runCleanups,
  listRuns as runs,
  startEngineWithEndpoints,
  startHttpEndpoint,
  updateIncident as update,
} from '../helpers/pipeline.js';
import { startReceiver } from '../helpers/receiver.js';
import { eventually, type TestEngine } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));

async function settle(engine: TestEngine, account: number, expected: number): Promise<Json[]> {
  return eventually(async () => {
    await engine.idle();
    const done = await runs(engine, `account=${account}`);
    return done.length >= expected ? done : undefined;
  }, `${expected} runs in account ${account}`);
}

describe('order per object, concurrency across objects', () => {
  it("takes each object's events one after another in event order, and different objects at the same time", async () => {
    // A receiver that holds every call until 3 are in flight at once: a drain that took one
    // event at a time would have one call open, and each call would wait for the fallback.
    let open = 0;
    const byObject = new Map<string, number>();
    let maxOpen = 0;
    let maxPerObject = 0;
    const arrivals: { object: string; event: string }[] = [];
    const held: (() => void)[] = [];
    const url = await startHttpEndpoint(cleanups, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          object: string;
          event: string;
        };
        arrivals.push(body);
        open++;
        maxOpen = Math.max(maxOpen, open);
        const perObject = (byObject.get(body.object) ?? 0) + 1;
        byObject.set(body.object, perObject);
        maxPerObject = Math.max(maxPerObject, perObject);
        const answer = () => {
          open--;
          byObject.set(body.object, (byObject.get(body.object) ?? 1) - 1);
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          res.end('ok');
        };
        held.push(answer);
        if (open >= 3) {
          for (const next of held.splice(0)) next();
          return;
        }
        // Never a deadlock: a call that finds too few others is answered after a while.
        setTimeout(() => {
          const index = held.indexOf(answer);
          if (index >= 0) held.splice(index, 1)[0]?.();
        }, 1_000);
      });
    });
    const engine = await startEngineWithEndpoints(
      cleanups,
      {
        'incident/call-out.yaml': callOutRule({
          url,
          description: 'Tell the receiver about every change of an incident.',
        }),
      },
      [url],
      { objectConcurrency: 8 },
    );

    const account = 11;
    const incidents: Json[] = [];
    for (let i = 0; i < 6; i++) {
      incidents.push(await create(engine, account, { description: `incident ${i}` }));
    }
    for (let round = 1; round <= 2; round++) {
      for (const incident of incidents) {
        await update(engine, account, incident.id, { description: `round ${round}` });
      }
    }
    await settle(engine, account, 18);
    await eventually(() => arrivals.length >= 18, '18 calls');

    expect(arrivals).toHaveLength(18);
    // One object's calls never overlap, and arrive in the order of its events.
    expect(maxPerObject).toBe(1);
    for (const incident of incidents) {
      const events = arrivals.filter((a) => a.object === incident.id).map((a) => Number(a.event));
      expect(events).toHaveLength(3);
      expect(events).toEqual([...events].sort((a, b) => a - b));
    }
    // Different objects' calls did overlap.
    expect(maxOpen).toBeGreaterThanOrEqual(3);
  });
});

describe('decisions objects share stay exact under concurrency', () => {
  async function setup(rule: string, account: number) {
    // Every call is held a little, so that many objects' evaluations overlap.
    const receiver = await startReceiver({
      answer: () => ({ status: 200, body: 'ok', delayMs: 20 }),
    });
    cleanups.push(() => receiver.close());
    const engine = await startEngineWithEndpoints(
      cleanups,
      { 'incident/shared.yaml': rule.replaceAll('URL', receiver.url) },
      [receiver.url],
      { objectConcurrency: 8 },
    );
    // Ten distinct incidents written at once: their events land in the same pages.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        create(engine, account, { category: 'network', description: `outage ${i}` }),
      ),
    );
    const done = await settle(engine, account, 10);
    return { engine, receiver, done };
  }

  const correlated = (extra: string) => `
description: Three network incidents within 30 minutes call out.
on:
  type: incident
  events: [add]
correlate:
  key: {var: object.category}
  within: 30m
  at_least: 3
${extra}
then:
  - http:
      url: URL
      method: POST
      headers:
        Content-Type: application/json
      body:
        object: {var: object.id}
        count: {var: correlation.count}
`;

  it('fires a "3 in 30 minutes" correlation exactly for the 3rd to the 10th of 10 incidents created at once', async () => {
    const { receiver, done } = await setup(correlated(''), 21);
    expect(done.filter((run: Json) => run.outcome === 'done')).toHaveLength(8);
    expect(receiver.requests).toHaveLength(8);
    // Each object was counted once: the counts the calls carry are 3..10, each once.
    const counts = receiver.requests
      .map((request) => (JSON.parse(request.body.toString('utf8')) as { count: number }).count)
      .sort((a, b) => a - b);
    expect(counts).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('opens one cluster for a correlation with once_per on its key', async () => {
    const { receiver, done } = await setup(
      correlated('once_per:\n  key: {var: correlation.key}\n  within: 1h'),
      22,
    );
    expect(done.filter((run: Json) => run.outcome === 'done')).toHaveLength(1);
    expect(receiver.requests).toHaveLength(1);
  });

  it('acts once for a once_per key several objects share', async () => {
    const { receiver, done } = await setup(
      `
description: One call per category, ever.
on:
  type: incident
  events: [add]
once_per: {var: object.category}
then:
  - http:
      url: URL
      method: POST
      body: {var: object.id}
`,
      23,
    );
    expect(done.filter((run: Json) => run.outcome === 'done')).toHaveLength(1);
    expect(receiver.requests).toHaveLength(1);
  });
});
