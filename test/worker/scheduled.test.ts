// Cron triggers on Workers, as the Node clock: the scheduled rules due at the tick act once per
// rule, tick and object, and a second run of the same tick (a repeated cron delivery) does
// nothing; a tick the API failed part of is queued to run again and then finishes; and the sweep
// queues a drain for an account whose notification was noted but never drained (a lost message),
// or with a parked object due for a retry.
import { createExecutionContext, createScheduledController } from 'cloudflare:test';
import { afterEach, describe, expect, it } from 'vitest';
import { schedulePlanKey } from '../../src/engine/context.js';
import { SCHEDULE_LEASE, SCHEDULE_LEASE_MS } from '../../src/runtime/worker.js';
import {
  clearFaults,
  createIncident,
  deliver,
  engineEvents,
  engineStore,
  eventually,
  injectFault,
  listObjects,
  newWorker,
  notify,
  pipelineStore,
  runsOf,
  workerEnv,
} from './helpers.js';
import { delivered } from './main.js';

const RULE = 'overdue-incident-escalation'; // */15 * * * *, in test/fixtures/example-rules/incident/

afterEach(async () => {
  await clearFaults();
});

async function runCron(worker: ReturnType<typeof newWorker>, at: string): Promise<void> {
  const controller = createScheduledController({
    scheduledTime: new Date(at),
    cron: '* * * * *',
  });
  await worker.scheduled(controller, workerEnv, createExecutionContext());
}

/** An overdue incident in an account the engine knows (it has had a notification from it). */
async function overdueIncident(account: number) {
  const incident = await createIncident(account, {
    description: 'backup job failing',
    impact: 'low',
    urgency: 'low',
    priority: 'medium',
    due_date: '2026-01-05T09:00:00Z',
  });
  const response = await notify(newWorker(), JSON.stringify({ account, subscription: 1 }));
  expect(response.status).toBe(200);
  // Drained by the Queue's consumer (test/worker/main.ts) before the clock comes in.
  await eventually(
    async () => (await runsOf(account)).some((run) => run.key.startsWith('e:')),
    `the add event of account ${account} to be drained`,
  );
  return incident;
}

describe('scheduled rules on Workers', () => {
  it('runs a due rule once per tick; a second run of the same tick does nothing', async () => {
    const account = 701;
    const incident = await overdueIncident(account);
    const logs: string[] = [];
    const worker = newWorker(logs);

    // 10:07 is no tick of */15: nothing is due.
    await runCron(worker, '2026-05-04T10:07:12Z');
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({ escalation: 0 });

    await runCron(worker, '2026-05-04T10:15:03Z');
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({
      id: incident.id,
      priority: 'high',
      escalation: 1,
    });
    const key = schedulePlanKey(account, RULE, '2026-05-04T10:15:00Z', incident.id);
    expect(await pipelineStore.getRun(key)).toMatchObject({ outcome: 'done', rules: [RULE] });
    expect(logs.join('\n')).toMatch(
      /schedule: 2026-05-04T10:15:00Z overdue-incident-escalation: \d+ objects/,
    );

    const writes = (await engineEvents(account)).length;
    const scheduledRuns = async () =>
      (await runsOf(account)).filter((run) => run.key.startsWith('s:')).length;
    const runs = await scheduledRuns();
    await runCron(worker, '2026-05-04T10:15:41Z');
    await runCron(newWorker(), '2026-05-04T10:15:00Z');
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({ escalation: 1 });
    expect(await engineEvents(account)).toHaveLength(writes);
    expect(await scheduledRuns()).toBe(runs);
  });

  it('queues a tick the API failed part of to run again, which finishes it once', async () => {
    const account = 702;
    const incident = await overdueIncident(account);
    const logs: string[] = [];
    const worker = newWorker(logs);
    // The engine's listing of the incidents fails on both of its client's attempts.
    await injectFault({
      status: 503,
      times: 2,
      method: 'GET',
      path: { regex: `^/v1/accounts/${account}/itsm/incidents$` },
    });
    await runCron(worker, '2026-05-04T11:30:00Z');
    expect(logs.join('\n')).toMatch(/unfinished, running it again in 30 s/);
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({ escalation: 0 });

    await clearFaults();
    // The message the cron run queued (delayed 30 s), delivered now.
    const { ids, result } = await deliver(worker, [
      { tick: '2026-05-04T11:30:00.000Z', rules: [RULE] },
    ]);
    expect(result.explicitAcks).toEqual(ids);
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({
      id: incident.id,
      escalation: 1,
    });
    // Delivered twice (at least once is all a Queue promises): still once.
    await deliver(worker, [{ tick: '2026-05-04T11:30:00.000Z', rules: [RULE] }], { attempts: 2 });
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({ escalation: 1 });
  });

  it('leaves a tick another invocation is running to it, and its re-run message waits', async () => {
    const account = 704;
    const incident = await overdueIncident(account);
    const logs: string[] = [];
    const worker = newWorker(logs);
    const tick = '2026-05-04T12:45:00.000Z';
    const other = { ...SCHEDULE_LEASE, key: tick, claimant: 'schedule:another-invocation' };
    expect(
      await engineStore.claimOnce({ ...other, at: Date.now(), windowMs: SCHEDULE_LEASE_MS }),
    ).toBe(true);

    await runCron(worker, '2026-05-04T12:45:02Z');
    expect(logs.join('\n')).toMatch(
      /schedule: 2026-05-04T12:45:00.000Z is being run by another invocation; skipped here/,
    );
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({ escalation: 0 });
    const busy = await deliver(worker, [{ tick, rules: [RULE] }]);
    expect(busy.result.retryMessages).toEqual([{ msgId: busy.ids[0] }]);
    expect(logs.join('\n')).toMatch(/is being run by another invocation; this run waits 30 s/);

    // That invocation ended (without finishing): the re-run does the work, once.
    await engineStore.releaseClaims(SCHEDULE_LEASE.account, other.claimant);
    const rerun = await deliver(worker, [{ tick, rules: [RULE] }], { attempts: 2 });
    expect(rerun.result.explicitAcks).toEqual(rerun.ids);
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({
      id: incident.id,
      escalation: 1,
    });
    // The lease was given back: the cron run of the same tick may run, and does nothing more.
    await runCron(worker, '2026-05-04T12:45:02Z');
    expect(logs.filter((line) => line.includes('skipped here'))).toHaveLength(1);
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({ escalation: 1 });
  });

  it('sweeps an account with a parked object due for a retry into the Queue, whose drain finishes it', async () => {
    const account = 741;
    await createIncident(account, {
      description: 'billing down',
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    // The escalation's PATCH is applied, then answered 500, on every attempt: the incident parks.
    await injectFault({
      status: 500,
      afterWrite: true,
      times: 2,
      method: 'PATCH',
      path: { regex: `^/v1/accounts/${account}/itsm/incidents/` },
    });
    const worker = newWorker();
    await pipelineStore.noteNotification(account, Date.now());
    const first = await deliver(worker, [{ account }]);
    expect(first.result.retryMessages).toEqual([]);
    const [parked] = await pipelineStore.listParked({ account, limit: 10 });
    expect(parked).toMatchObject({ objectType: 'incident', events: 1 });
    // Its time comes (as if the backoff had passed).
    await pipelineStore.rescheduleParked(account, parked?.objectId ?? '', {
      attempts: 1,
      nextAt: Date.now() - 1,
      error: 'http 500',
    });
    const sent = () =>
      delivered.filter((m) => (m.body as { account?: number }).account === account).length;
    const before = sent();

    await runCron(worker, '2026-05-04T12:03:00Z');
    await eventually(
      async () => (await pipelineStore.listParked({ account, limit: 10 })).length === 0,
      'the parked incident to be retried and unparked',
    );
    expect(sent()).toBeGreaterThan(before);
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({
      priority: 'critical',
      escalation: 1,
    });
  });

  it('sweeps an account whose notification was noted but never drained into the Queue', async () => {
    const account = 703;
    const incident = await createIncident(account, {
      description: 'payroll down',
      impact: 'high',
      urgency: 'high',
      priority: 'medium',
    });
    // As if the receiver had noted the notification and its message were lost.
    await pipelineStore.noteNotification(account, Date.now());
    const worker = newWorker();
    const sent = () =>
      delivered.filter((m) => (m.body as { account?: number }).account === account).length;
    expect(sent()).toBe(0);

    await runCron(worker, '2026-05-04T12:01:00Z');
    await eventually(async () => {
      const [current] = await listObjects(account, 'incidents');
      return current.escalation === 1;
    }, 'the swept account to be drained');
    expect(sent()).toBeGreaterThanOrEqual(1);
    expect((await listObjects(account, 'incidents'))[0]).toMatchObject({
      id: incident.id,
      priority: 'critical',
    });
    // Drained: the next sweep leaves it alone.
    await eventually(async () => {
      const state = await pipelineStore.getAccount(account);
      return (
        state !== null && state.drainedAt !== null && state.drainedAt > (state.notifiedAt ?? 0)
      );
    }, 'the account to be drained past its notification');
    const before = sent();
    await runCron(worker, '2026-05-04T12:02:00Z');
    await workerEnv.QUEUE.send({ account: 7999 });
    await eventually(
      () => delivered.some((m) => (m.body as { account?: number }).account === 7999),
      'a later message through the Queue',
    );
    expect(sent()).toBe(before);
  });
});
