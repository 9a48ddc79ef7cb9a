// The queue drain on Workers, as on Node: one drain per account and batch; effects exactly once
// however often a notification is replayed or a message redelivered, even with two consumers
// draining one account at the same time; a transient API failure is retried through the Queue
// (the cursor stays), not lost; a failure that would repeat is acked and logged. All against the
// embedded ITSM API over real HTTP, state in the local D1 database, the example rules.
import { afterEach, describe, expect, it } from 'vitest';
import { eventPlanKey } from '../../src/engine/context.js';
import { DRAIN_LEASE, DRAIN_LEASE_MS } from '../../src/runtime/worker.js';
import {
  allEvents,
  clearFaults,
  createIncident,
  deliver,
  engineEvents,
  engineStore,
  eventually,
  injectFault,
  isEngineEvent,
  type Json,
  listObjects,
  newWorker,
  notify,
  pipelineStore,
  runsOf,
  workerEnv,
} from './helpers.js';

/** The Worker of these tests: the helpers' one, with a fixed retry jitter. */
const drainWorker = (logs: string[] = []) => newWorker(logs, { random: () => 0.5 });

afterEach(async () => {
  await clearFaults();
});

/** Three major incidents of one category: each is escalated, the third opens a linked problem. */
async function majorIncidents(account: number): Promise<Json[]> {
  const incidents: Json[] = [];
  for (let i = 0; i < 3; i++) {
    incidents.push(
      await createIncident(account, {
        description: `disk full on node ${i}`,
        category: 'storage',
        impact: 'high',
        urgency: 'high',
        priority: 'medium',
      }),
    );
  }
  return incidents;
}

/** What the engine did to the account, as the API and D1 hold it. */
async function outcome(account: number) {
  const events = await allEvents(account);
  const incidents = await listObjects(account, 'incidents');
  const problems = await listObjects(account, 'problems');
  const runs = await runsOf(account);
  return {
    events,
    engineWrites: events.filter(isEngineEvent).length,
    incidents: incidents.map((incident) => ({
      priority: incident.priority,
      escalation: incident.escalation,
      problem: incident.problem?.id ?? incident.problem ?? null,
    })),
    problems,
    // Event runs only: a cron tick of another test file may add scheduled runs to any account.
    runKeys: runs
      .map((run) => run.key)
      .filter((key) => key.startsWith('e:'))
      .sort(),
  };
}

describe('the queue drain on Workers', () => {
  it('drains an account once per batch and acks every message of it', async () => {
    const account = 501;
    await majorIncidents(account);
    const worker = drainWorker();
    const { ids, result } = await deliver(worker, [{ account }, { account }, { account }]);
    expect(result.retryMessages).toEqual([]);
    expect([...result.explicitAcks].sort()).toEqual([...ids].sort());
    // The drain stops at the end of the log it saw: the engine's own writes come after.
    await deliver(worker, [{ account }]);
    const state = await outcome(account);
    expect(state.incidents).toEqual([
      expect.objectContaining({ priority: 'critical', escalation: 1 }),
      expect.objectContaining({ priority: 'critical', escalation: 1 }),
      expect.objectContaining({ priority: 'critical', escalation: 1 }),
    ]);
    expect(state.problems).toHaveLength(1);
    const account0 = await pipelineStore.getAccount(account);
    expect(account0?.cursor).not.toBeNull();
  });

  it('acts exactly once when consumers get messages of one account at once, redelivered and replayed', async () => {
    // The smooth run: one consumer, one message at a time, until nothing is left.
    const smooth = 502;
    await majorIncidents(smooth);
    const worker = drainWorker();
    for (let i = 0; i < 4; i++) await deliver(worker, [{ account: smooth }]);
    const expected = await outcome(smooth);
    expect(expected.problems).toHaveLength(1);

    // The same incidents in another account, served by two consumers (two isolates' Workers) at
    // the same time, then by redeliveries of their messages and replayed webhooks.
    const account = 503;
    await majorIncidents(account);
    const [a, b] = [drainWorker(), drainWorker()];
    const first = await Promise.all([
      deliver(a, [{ account }, { account }]),
      deliver(b, [{ account }]),
      deliver(a, [{ account }]),
    ]);
    // One of them drains; a message whose account is being drained waits for a drain of its own.
    const acked = first.flatMap(({ result }) => result.explicitAcks);
    const retried = first.flatMap(({ result }) =>
      result.retryMessages.map((m: { msgId: string }) => m.msgId),
    );
    expect(acked.length).toBeGreaterThan(0);
    expect([...acked, ...retried].sort()).toEqual(first.flatMap(({ ids }) => ids).sort());
    for (let round = 0; round < 3; round++) {
      await Promise.all([
        deliver(a, [{ account }], { attempts: 2 }),
        deliver(b, [{ account }], { attempts: 2 }),
        notify(a, JSON.stringify({ account, subscription: 1 })),
      ]);
    }
    for (let round = 0; round < 3; round++) await deliver(b, [{ account }], { attempts: 3 });
    await eventually(async () => {
      const runs = (await runsOf(account)).filter((run) => run.key.startsWith('e:'));
      return runs.length === (await allEvents(account)).length;
    }, 'a run record for every event');

    const actual = await outcome(account);
    expect(actual.problems).toHaveLength(1);
    expect(actual.incidents).toEqual(
      expected.incidents.map((incident) => ({
        ...incident,
        problem: incident.problem === null ? null : actual.problems[0].id,
      })),
    );
    // Every write of the engine happened once: as many as in the smooth run.
    expect(actual.engineWrites).toBe(expected.engineWrites);
    expect(actual.events.length).toBe(expected.events.length);
    // One run record per event, and no other.
    expect(actual.runKeys).toEqual(
      actual.events.map((event: Json) => eventPlanKey(account, event.id)).sort(),
    );
  });

  it('retries through the Queue when the API fails for a while, then finishes with every effect once', async () => {
    const account = 504;
    const [incident] = await majorIncidents(account);
    const logs: string[] = [];
    const worker = drainWorker(logs);
    await injectFault({
      status: 503,
      times: 10,
      path: { regex: `^/v1/accounts/${account}/events` },
    });

    const failed = await deliver(worker, [{ account }, { account }], { attempts: 3 });
    expect(failed.result.explicitAcks).toEqual([]);
    expect(failed.result.retryMessages).toEqual(failed.ids.map((msgId) => ({ msgId })));
    // The pool's batch does not report retry delays: the log says it. Attempt 3: a backoff
    // ceiling of 4 s, the jitter (random 0.5) at its middle: 3 s.
    expect(logs.join('\n')).toMatch(
      /drain: account 504 stopped: .*503.*the cursor stays, retrying through the queue in 3 s \(attempt 3\)/,
    );
    expect((await pipelineStore.getAccount(account))?.cursor ?? null).toBeNull();
    expect(await runsOf(account)).toEqual([]);

    await clearFaults();
    for (let i = 0; i < 3; i++) {
      const retried = await deliver(worker, [{ account }], { attempts: 4 });
      expect(retried.result.retryMessages).toEqual([]);
    }
    const fetched = await listObjects(account, 'incidents');
    expect(fetched.find((i) => i.id === incident.id)).toMatchObject({
      priority: 'critical',
      escalation: 1,
    });
    expect(await listObjects(account, 'problems')).toHaveLength(1);
  });

  it('finishes a plan cut short mid-way (the write applied, its answer lost) exactly once on redelivery', async () => {
    const account = 505;
    const incident = await createIncident(account, {
      description: 'core switch down',
      category: 'network',
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    const worker = drainWorker();
    // The escalation's PATCH is applied by the API, then answered 500, on every attempt.
    await injectFault({
      status: 500,
      afterWrite: true,
      times: 2,
      method: 'PATCH',
      path: { regex: `^/v1/accounts/${account}/itsm/incidents/` },
    });
    // The incident is parked (its account goes on): the message is acked, not retried.
    const cut = await deliver(worker, [{ account }]);
    expect(cut.result.retryMessages).toEqual([]);
    expect(await pipelineStore.listParked({ account, limit: 10 })).toHaveLength(1);
    // Its retry comes due (its time, or POST /admin/parked/retry): a drain finishes the plan.
    await pipelineStore.retryParkedAt({ account, limit: 10 }, Date.now());
    for (let i = 0; i < 3; i++) {
      const again = await deliver(worker, [{ account }], { attempts: 2 + i });
      expect(again.result.retryMessages).toEqual([]);
    }
    expect(await pipelineStore.listParked({ account, limit: 10 })).toEqual([]);
    const after = (await listObjects(account, 'incidents'))[0];
    expect(after).toMatchObject({ id: incident.id, priority: 'critical', escalation: 1 });
    // The PATCH whose answer was lost is sent again (a PATCH carries absolute values): the same
    // write, never a second escalation.
    const writes = await engineEvents(account);
    expect(writes.length).toBeGreaterThan(0);
    for (const write of writes) {
      expect(write.metadata).toMatchObject({ priority: 'critical', escalation: 1 });
    }
    const escalationRuns = (await runsOf(account)).filter((run) =>
      run.rules.includes('escalate-major-incidents'),
    );
    expect(escalationRuns).toHaveLength(1);
    expect(escalationRuns[0]?.outcome).toBe('done');
  });

  it('leaves an account another consumer is draining to it, and waits for a drain of its own', async () => {
    const account = 508;
    await createIncident(account, { description: 'vpn flaky', impact: 'low' });
    const logs: string[] = [];
    const worker = drainWorker(logs);
    const other = 'drain:another-consumer';
    const lease = { account, ...DRAIN_LEASE, claimant: other, windowMs: DRAIN_LEASE_MS };
    expect(await engineStore.claimOnce({ ...lease, at: Date.now() })).toBe(true);

    const busy = await deliver(worker, [{ account }]);
    expect(busy.result.retryMessages).toEqual([{ msgId: busy.ids[0] }]);
    expect(busy.result.explicitAcks).toEqual([]);
    expect(await runsOf(account)).toEqual([]);
    expect(logs.join('\n')).toMatch(
      /account 508 is being drained by another consumer; this message waits 2 s/,
    );

    await engineStore.releaseClaims(account, other);
    const served = await deliver(worker, [{ account }], { attempts: 2 });
    expect(served.result.explicitAcks).toEqual(served.ids);
    expect(await runsOf(account)).toHaveLength(1);
    // The lease was given back: the next message drains at once.
    const next = await deliver(worker, [{ account }]);
    expect(next.result.explicitAcks).toEqual(next.ids);
  });

  it('takes over the lease of a consumer that died holding it, once the lease has lapsed', async () => {
    const account = 509;
    await createIncident(account, { description: 'laptop slow', impact: 'low' });
    const worker = drainWorker();
    const dead = { account, ...DRAIN_LEASE, claimant: 'drain:dead', windowMs: DRAIN_LEASE_MS };
    expect(await engineStore.claimOnce({ ...dead, at: Date.now() - DRAIN_LEASE_MS - 1 })).toBe(
      true,
    );
    const { ids, result } = await deliver(worker, [{ account }]);
    expect(result.explicitAcks).toEqual(ids);
    expect(await runsOf(account)).toHaveLength(1);
  });

  it('stops before its next event once its lease was taken, and leaves the new holder alone', async () => {
    const account = 510;
    for (let i = 0; i < 3; i++) {
      await createIncident(account, { description: `disk ${i}`, impact: 'low' });
    }
    const logs: string[] = [];
    const worker = newWorker(logs, { random: () => 0.5, leaseRenewMs: 0 });
    // The first event's object is slow to come: meanwhile the lease lapses and another
    // consumer takes it (done here by hand).
    await injectFault({ latencyMs: 2500, method: 'GET', path: { regex: 'itsm/incidents/' } });
    // One object at a time, so that "the event in hand" is one event.
    const delivery = deliver(worker, [{ account }], {
      env: { ...workerEnv, ITSM_RULES_OBJECT_CONCURRENCY: '1' },
    });
    const leaseRow = () =>
      workerEnv.DB.prepare(
        'SELECT claimant FROM engine_once WHERE account = ? AND rule_id = ? AND key = ?',
      )
        .bind(account, DRAIN_LEASE.ruleId, DRAIN_LEASE.key)
        .first<{ claimant: string }>();
    await eventually(async () => (await leaseRow()) !== null, 'the drain took its lease');
    // The page comes at once; the first event's object takes 2.5 s: take the lease meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 800));
    await workerEnv.DB.prepare(
      "UPDATE engine_once SET claimant = 'drain:thief' WHERE account = ? AND rule_id = ?",
    )
      .bind(account, DRAIN_LEASE.ruleId)
      .run();

    const { ids, result } = await delivery;
    expect(result.retryMessages).toEqual([{ msgId: ids[0] }]);
    expect(result.explicitAcks).toEqual([]);
    // The event in hand was finished; none after it was started.
    expect(await runsOf(account)).toHaveLength(1);
    expect(logs.join('\n')).toMatch(
      /account 510 stopped: the drain lease lapsed and another consumer took it; this message waits 2 s/,
    );
    expect((await leaseRow())?.claimant).toBe('drain:thief');
    expect((await pipelineStore.getAccount(account))?.cursor ?? null).toBeNull();
  });

  it('acks and logs a failure that would repeat, leaving the cursor where it was', async () => {
    const account = 506;
    await createIncident(account, { description: 'printer jam', impact: 'low' });
    const logs: string[] = [];
    const worker = drainWorker(logs);
    // A refused key fails every try the same way.
    const env = { ...workerEnv, ITSM_API_KEY: 'a-revoked-key' };
    const { ids, result } = await deliver(worker, [{ account }], { env });
    expect(result.explicitAcks).toEqual(ids);
    expect(result.retryMessages).toEqual([]);
    expect(logs.join('\n')).toMatch(
      /drain: ERROR account 506: .*401.*the cursor stays; the message is dropped and the cron sweep drains the account again/,
    );
    expect(await pipelineStore.getAccount(account)).toBeNull();
  });

  it('acks and logs a message that is not one of its own', async () => {
    const logs: string[] = [];
    const { ids, result } = await deliver(drainWorker(logs), [{ account: 'seven' }, 'hello']);
    expect(result.explicitAcks).toEqual(ids);
    expect(logs.filter((line) => line.includes('queue: ERROR dropped a message'))).toHaveLength(2);
  });

  it('hands a long backlog on to a new message after its page budget', async () => {
    const account = 507;
    for (let i = 0; i < 5; i++)
      await createIncident(account, { description: `n${i}`, impact: 'low' });
    const worker = drainWorker();
    const env = { ...workerEnv, ITSM_RULES_PAGE_SIZE: '2', ITSM_RULES_PAGES_PER_MESSAGE: '1' };
    const { result } = await deliver(worker, [{ account }], { env });
    expect(result.retryMessages).toEqual([]);
    expect(await runsOf(account)).toHaveLength(2);
    // The continuation went to the real Queue, whose consumer (test/worker/main.ts) drains the rest.
    await eventually(async () => (await runsOf(account)).length === 5, 'the rest of the backlog');
  });
});
