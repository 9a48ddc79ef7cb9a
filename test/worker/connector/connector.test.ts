// The engine Worker all-in-one over a ServiceNow instance (ITSM_SERVICENOW_URL), inside workerd:
// the instance is the Table API face of an embedded server in Node (scripts/worker-test-setup.ts)
// reached over real HTTP on 127.0.0.1; the Worker's state (events, version marks, watermarks,
// cursors, runs) is in this project's local D1, and the drains the cron poll and the push queue
// are served by its own Queue consumer (test/worker/connector/main.ts). Incidents are made on the
// instance by a person through the Table API, and what the rule did is read back there. The
// tests share the instance and the D1 database and run in order: the push first, while no drain
// holds the account's lease.
import { createExecutionContext, createScheduledController } from 'cloudflare:test';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  createWorker,
  DRAIN_LEASE,
  DRAIN_LEASE_MS,
  type EngineWorker,
  type WorkerEnv,
} from '../../../src/runtime/worker.js';
import { isPending } from '../../../src/storage/drain-lag.js';
import { DEFAULT_ENGINE_USER } from '../../../src/webhook/drain.js';
import {
  engineStore,
  eventually,
  type Json,
  pipelineStore,
  request,
  workerEnv,
} from '../helpers.js';
import { mainLogs, mainWorker } from './main.js';
import { serviceNowRules, serviceNowScheduleRules } from './rules.js';

const NOTE = 'Triaged by itsm-rules: the category is network.';
const PUSH_SECRET = workerEnv.ITSM_SN_PUSH_SECRET as string;

/** A Worker of its own over the same env (another isolate, as far as memory goes). */
function connectorWorker(
  logs: string[] = [],
  feedLeaseWaitMs = 200,
  rules = serviceNowRules,
): EngineWorker {
  return createWorker({
    rules,
    clientRetry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
    servicenow: { retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 } },
    feedLeaseWaitMs,
    log: (line) => logs.push(line),
  });
}

/** POST /servicenow/push of one incident to the main Worker. */
function push(sysId: string, auth = `Bearer ${PUSH_SECRET}`): Promise<Response> {
  return request(mainWorker, 'POST', '/servicenow/push', {
    headers: { Authorization: auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ table: 'incident', sys_id: sysId }),
  });
}

/** A Table API call on the instance as a person who works there; anything but a 2xx throws. */
async function onInstance(method: string, path: string, body?: unknown): Promise<Json> {
  const { username, password } = inject('snPerson');
  const response = await fetch(`${inject('snUrl')}/api/now/table/${path}`, {
    method,
    headers: {
      Authorization: `Basic ${btoa(`${username}:${password}`)}`,
      Accept: 'application/json',
      ...(body !== undefined && { 'Content-Type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

async function newIncident(shortDescription: string): Promise<string> {
  const made = await onInstance('POST', 'incident', {
    short_description: shortDescription,
    category: 'network',
  });
  return made.result.sys_id as string;
}

/** The work notes of one record, from sys_journal_field. */
async function workNotes(sysId: string): Promise<Json[]> {
  return (
    await onInstance(
      'GET',
      `sys_journal_field?sysparm_query=element_id=${sysId}^element=work_notes&sysparm_fields=value,sys_created_by`,
    )
  ).result;
}

/** Waits for the rule's two writes on the incident (the custom column, the work note). */
async function triaged(sysId: string): Promise<Json> {
  return eventually(async () => {
    const record = (await onInstance('GET', `incident/${sysId}`)).result;
    return record.u_triaged === 'yes' && (await workNotes(sysId)).length > 0 && record;
  }, `the rule to act on incident ${sysId}`);
}

/** The Worker's /v1 event log of one record as [type, written by the engine], oldest first. */
async function eventsOf(sysId: string): Promise<[string, boolean][]> {
  const response = await request(mainWorker, 'GET', '/v1/accounts/1/events?page_size=1000', {
    auth: true,
  });
  expect(response.status).toBe(200);
  const page = (await response.json()) as Json;
  return page.objects
    .filter((event: Json) => String(event.metadata.id).endsWith(`.${sysId}`))
    .map((event: Json) => [event.type, event.user_id === DEFAULT_ENGINE_USER]);
}

/** A cron tick now, as Cloudflare calls `scheduled`. */
async function tick(worker: EngineWorker, env: WorkerEnv = workerEnv): Promise<void> {
  const controller = createScheduledController({ scheduledTime: new Date(), cron: '* * * * *' });
  await worker.scheduled(controller, env, createExecutionContext());
}

/** Every drain the account was queued for has run (none is noted and not finished). */
async function drained(): Promise<void> {
  await eventually(async () => {
    const state = await pipelineStore.getAccount(1);
    return state !== null && !isPending(state);
  }, 'account 1 to be drained');
}

async function instanceFaults(path: '/faults' | '/faults/clear', fault?: object): Promise<void> {
  const response = await fetch(`${inject('controlUrl')}/sn${path}`, {
    method: 'POST',
    body: JSON.stringify(fault ?? {}),
  });
  if (!response.ok) throw new Error(`scripting the instance's faults: ${await response.text()}`);
}

afterEach(async () => {
  await instanceFaults('/faults/clear');
});

describe('the engine Worker over a ServiceNow instance', () => {
  it('reads a pushed record at once, and the rule acts on it once', async () => {
    const sysId = await newIncident('vpn down');
    expect((await push(sysId, 'Bearer not-the-secret')).status).toBe(401);
    const pushed = await push(sysId);
    expect(pushed.status).toBe(200);
    expect(await pushed.json()).toEqual({ table: 'incident', sys_id: sysId, events: 1 });

    const record = await triaged(sysId);
    expect(record.sys_updated_by).toBe(workerEnv.ITSM_SN_USERNAME);
    await eventually(
      async () => (await eventsOf(sysId)).length === 3,
      'the engine writes to be in the log',
    );
    // The person's add, then the engine's two writes as its own user: echoes, not changes.
    expect(await eventsOf(sysId)).toEqual([
      ['add', false],
      ['update', true],
      ['update', true],
    ]);
    await drained();
    // A push of a version already reported (the engine's own write) reports nothing.
    const again = await push(sysId);
    expect(await again.json()).toMatchObject({ events: 0 });
    expect(await workNotes(sysId)).toEqual([
      expect.objectContaining({ value: NOTE, sys_created_by: workerEnv.ITSM_SN_USERNAME }),
    ]);
  });

  it('queues the read of a push that comes during a drain, and a tick waits for the drain', async () => {
    await drained();
    // A drain of the account in progress, as another consumer would hold it.
    const claimant = 'drain:held-by-the-test';
    const held = { account: 1, ...DRAIN_LEASE, claimant };
    expect(await engineStore.claimOnce({ ...held, at: Date.now(), windowMs: DRAIN_LEASE_MS })).toBe(
      true,
    );
    let sysId: string;
    try {
      sysId = await newIncident('pushed during a drain');
      const pushed = await push(sysId);
      expect(pushed.status).toBe(200);
      expect(await pushed.json()).toEqual({ table: 'incident', sys_id: sysId, events: 0 });
      expect(mainLogs.join('\n')).toContain(
        `servicenow push: account 1 is being drained; reading incident ${sysId} once it is done`,
      );
      const logs: string[] = [];
      await tick(connectorWorker(logs, 1));
      expect(logs.join('\n')).toMatch(
        /servicenow feed: account 1 is still being drained; the feed polls at the next tick/,
      );
      // The engine may be writing that very record: the feed read nothing of it meanwhile.
      expect(await eventsOf(sysId)).toEqual([]);
    } finally {
      await engineStore.releaseClaims(1, claimant);
    }
    // The queued read comes back every 2 s until the drain is over, then reads the record.
    await triaged(sysId);
    expect((await eventsOf(sysId))[0]).toEqual(['add', false]);
  });

  it('queues a drain for a write through its /v1 API, and the rule acts on it', async () => {
    await drained();
    const response = await request(mainWorker, 'POST', '/v1/accounts/1/itsm/incidents', {
      auth: true,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ description: 'made through /v1', category: 'network' }),
    });
    expect(response.status).toBe(201);
    const made = (await response.json()) as Json;
    const sysId = String(made.id).replace(/^incident\./, '');
    await triaged(sysId);
    await drained();
    expect(await eventsOf(sysId)).toEqual([
      ['add', false],
      ['update', true],
      ['update', true],
    ]);
  });

  it('acts once on an incident the cron poll sees; its own writes and a second tick repeat nothing', async () => {
    await drained();
    const logs: string[] = [];
    const worker = connectorWorker(logs);
    await tick(worker);
    const sysId = await newIncident('core switch down');
    await tick(worker);
    expect(logs.join('\n')).toMatch(/servicenow feed: 1 new events in account 1/);

    await triaged(sysId);
    await eventually(
      async () => (await eventsOf(sysId)).length === 3,
      'the engine writes to be in the log',
    );
    await drained();

    // Two more ticks, by Workers that share nothing in memory with the first (new isolates):
    // the watermark and the version marks are in D1, so nothing is reported or acted on again.
    await tick(connectorWorker());
    await tick(connectorWorker());
    await drained();
    expect(await eventsOf(sysId)).toEqual([
      ['add', false],
      ['update', true],
      ['update', true],
    ]);
    expect(await workNotes(sysId)).toHaveLength(1);
    // The instance saw the insert and exactly the engine's two writes.
    expect((await onInstance('GET', `incident/${sysId}`)).result.sys_mod_count).toBe('2');
    const runs = await pipelineStore.listRuns({ account: 1, limit: 1000 });
    const ofIncident = runs.filter((run) => run.objectId === `incident.${sysId}`);
    expect(ofIncident.filter((run) => run.outcome === 'done')).toEqual([
      expect.objectContaining({ eventType: 'add', rules: ['triage-network'] }),
    ]);
    expect(ofIncident.filter((run) => run.outcome !== 'done').map((run) => run.outcome)).toEqual([
      'skipped',
      'skipped',
    ]);
  });

  it("makes a scheduled rule's writes under the account's drain lease, so they come back as its own", async () => {
    await drained();
    const made = await onInstance('POST', 'incident', {
      short_description: 'disk failing',
      category: 'hardware',
    });
    const sysId = made.result.sys_id as string;
    const logs: string[] = [];
    const worker = connectorWorker(logs, 1, serviceNowScheduleRules);
    // A drain in progress, as another consumer would hold it: the engine may be writing and the
    // feed must not read in between, so the scheduled writes wait as the feed does.
    const claimant = 'drain:held-by-the-test';
    const held = { account: 1, ...DRAIN_LEASE, claimant };
    expect(await engineStore.claimOnce({ ...held, at: Date.now(), windowMs: DRAIN_LEASE_MS })).toBe(
      true,
    );
    try {
      await tick(worker);
      expect(logs.join('\n')).toMatch(
        /schedule: \S+: account 1 is still being drained; running the tick again in \d+ s/,
      );
      const record = (await onInstance('GET', `incident/${sysId}`)).result;
      expect(record.u_swept ?? '').toBe('');
      expect(record.sys_mod_count).toBe('0');
    } finally {
      await engineStore.releaseClaims(1, claimant);
    }

    // The lease free: the tick's poll reads the person's add, the sweep writes, and the next
    // poll finds the engine's own write already reported as the engine's.
    await tick(worker);
    await eventually(
      async () => (await onInstance('GET', `incident/${sysId}`)).result.u_swept === 'yes',
      'the scheduled rule to act',
    );
    await tick(worker);
    await drained();
    expect(await eventsOf(sysId)).toEqual([
      ['add', false],
      ['update', true],
    ]);
    expect((await onInstance('GET', `incident/${sysId}`)).result.sys_mod_count).toBe('1');
  });

  /** How the instance fails the feed's reads at a tick, and the env that tick runs with. */
  const failures: [string, RegExp, () => Promise<WorkerEnv>][] = [
    [
      'answering 503',
      /ServiceNow GET \/api\/now\/table\/\w+ answered 503/,
      async () => {
        await instanceFaults('/faults', {
          status: 503,
          times: 50,
          method: 'GET',
          path: { regex: '^/api/now/table/' },
        });
        return workerEnv;
      },
    ],
    [
      'refusing the password (401)',
      /answered 401/,
      // A password changed on the instance before the secret was: this env's Worker is refused.
      async () => ({ ...workerEnv, ITSM_SN_PASSWORD: 'the-old-password' }),
    ],
  ];

  it.each(failures)(
    'logs an instance %s at a tick, and catches up at a later one with nothing lost',
    async (_what, cause, fail) => {
      await drained();
      const logs: string[] = [];
      const worker = connectorWorker(logs);
      await tick(worker);
      const failingEnv = await fail();
      // Made while the feed cannot read the instance (a person's writes still go through).
      const sysId = await newIncident('made while the feed cannot read');
      await expect(tick(worker, failingEnv)).resolves.toBeUndefined();
      expect(logs.join('\n')).toMatch(
        /servicenow feed: ERROR the poll of account 1 failed; the watermark stays and the next tick polls again/,
      );
      expect(logs.join('\n')).toMatch(cause);
      expect(await eventsOf(sysId)).toEqual([]);

      await instanceFaults('/faults/clear');
      await tick(worker);
      await triaged(sysId);
      await drained();
      await tick(worker);
      await drained();
      expect((await eventsOf(sysId)).filter(([type]) => type === 'add')).toEqual([['add', false]]);
      expect(await workNotes(sysId)).toHaveLength(1);
      // The credentials are never logged.
      for (const password of [workerEnv.ITSM_SN_PASSWORD, failingEnv.ITSM_SN_PASSWORD]) {
        expect(logs.join('\n')).not.toContain(password as string);
      }
    },
  );
});
