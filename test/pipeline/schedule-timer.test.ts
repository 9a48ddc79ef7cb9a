// End to end, the Node engine's timer of scheduled rules: every minute it fires gets its tick run,
// in order, and a tick the API failed part of waits for its retry without holding up the ticks of
// later minutes. The timer fires every second here, on a clock the test sets (the engine's test
// seam `scheduleTimer`), so that distinct minutes come a second apart; the embedded API is
// faulted by script. All over real HTTP on 127.0.0.1 against an all-in-one engine.
import { afterEach, describe, expect, it } from 'vitest';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';
import { eventually, startTestEngine, type TestEngine, writeRules } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const account = 71;

/** Incidents at 10:15 UTC, problems at 10:16 and 10:17: each minute has a rule of its own. */
const RULES = {
  'incident/at-quarter-past.yaml': `on: {type: incident, schedule: "15 10 * * *"}
then:
  - escalate: {levels: 1}
`,
  'problem/just-after.yaml': `on: {type: problem, schedule: "16,17 10 * * *"}
then:
  - escalate: {levels: 1}
`,
};

async function create(engine: TestEngine, type: string, body: object): Promise<Json> {
  const response = await engine.call('POST', `/v1/accounts/${account}/itsm/${type}`, { body });
  expect(response.status, response.text).toBe(201);
  return response.json;
}

async function get(engine: TestEngine, type: string, id: string): Promise<Json> {
  const response = await engine.call('GET', `/v1/accounts/${account}/itsm/${type}/${id}`);
  expect(response.status, response.text).toBe(200);
  return response.json;
}

/** The ticks (event ids) of the runs where the rule acted, oldest first. */
async function ticksActed(engine: TestEngine, rule: string): Promise<string[]> {
  const response = await engine.call(
    'GET',
    `/runs?account=${account}&rule_id=${rule}&matched=true&page_size=100`,
  );
  expect(response.status, response.text).toBe(200);
  return response.json.objects
    .filter((run: Json) => run.event.type === 'schedule')
    .map((run: Json) => run.event.id)
    .reverse();
}

/** Index of the first log line starting with `prefix`, or undefined while there is none. */
/** Waits until the account has `count` run records (its adds drained: the engine knows it). */
async function runsRecorded(engine: TestEngine, count: number, what: string): Promise<void> {
  await eventually(
    async () => (await engine.call('GET', `/runs?account=${account}`)).json.count >= count,
    what,
  );
}

/** Listing incidents answers 503 until the faults are cleared: the incidents' ticks fail. */
function failIncidentLists(engine: TestEngine): void {
  engine.itsm?.faults?.inject({
    status: 503,
    method: 'GET',
    path: /\/itsm\/incidents$/,
    times: 1_000_000,
  });
}

function lineAt(engine: TestEngine, prefix: string): number | undefined {
  const index = engine.logs.findIndex((line) => line.startsWith(prefix));
  return index >= 0 ? index : undefined;
}

describe('the timer of scheduled rules', () => {
  let engine: TestEngine | undefined;
  let rules: { dir: string; remove(): void } | undefined;
  let receiver: TestReceiver | undefined;

  afterEach(async () => {
    await engine?.close();
    engine = undefined;
    await receiver?.close();
    receiver = undefined;
    rules?.remove();
    rules = undefined;
  });

  it('runs the next minutes on time while a failed tick waits for its retry, skipping none', async () => {
    rules = writeRules(RULES);
    let clock = new Date('2026-11-28T10:14:00Z');
    engine = await startTestEngine({
      rulesDir: rules.dir,
      faults: {},
      schedules: true,
      scheduleTimer: { pattern: '* * * * * *', now: () => clock },
      // The failed tick is run again every 0.1 s until the test lets the API answer: never
      // within the test's time does it run out of attempts.
      scheduleRetryMs: 100,
      scheduleAttempts: 100_000,
    });
    const running = engine;
    const incident = await create(running, 'incidents', { priority: 'low' });
    const problem = await create(running, 'problems', { priority: 'low' });
    // The engine knows the account (it sweeps the accounts it has had a notification from).
    await runsRecorded(running, 2, 'the two adds drained');

    // Listing incidents fails until cleared: 10:15 (the incidents' minute) cannot finish.
    failIncidentLists(running);
    clock = new Date('2026-11-28T10:15:00Z');
    await eventually(
      () => lineAt(running, 'schedule: running 2026-11-28T10:15:00Z again in 0.1 s'),
      "10:15's retry pending",
    );

    // The next minutes run on time, each acting, while 10:15 still waits for the API.
    clock = new Date('2026-11-28T10:16:00Z');
    await eventually(
      () =>
        lineAt(
          running,
          'schedule: 2026-11-28T10:16:00Z just-after: 1 objects in 1 accounts (1 acted on)',
        ),
      '10:16 run while 10:15 waits',
    );
    clock = new Date('2026-11-28T10:17:00Z');
    await eventually(
      () =>
        lineAt(
          running,
          'schedule: 2026-11-28T10:17:00Z just-after: 1 objects in 1 accounts (1 acted on)',
        ),
      '10:17 run while 10:15 waits',
    );
    expect(await ticksActed(running, 'just-after')).toEqual([
      '2026-11-28T10:16:00Z',
      '2026-11-28T10:17:00Z',
    ]);
    expect((await get(running, 'problems', problem.id)).escalation).toBe(2);
    expect(await ticksActed(running, 'at-quarter-past')).toEqual([]);
    expect((await get(running, 'incidents', incident.id)).escalation).toBe(0);

    // The API answers again: 10:15's next retry finishes it, acting once.
    running.itsm?.faults?.clear();
    const done = await eventually(
      () =>
        lineAt(
          running,
          'schedule: 2026-11-28T10:15:00Z at-quarter-past: 1 objects in 1 accounts (1 acted on)',
        ),
      "10:15's retry",
    );
    const later = running.logs.slice(done + 1);
    expect(later.filter((line) => line.startsWith('schedule: 2026-11-28T10:15:00Z'))).toEqual([]);
    expect(later.filter((line) => line.startsWith('schedule: running 2026-11-28T10:15'))).toEqual(
      [],
    );
    expect(await ticksActed(running, 'at-quarter-past')).toEqual(['2026-11-28T10:15:00Z']);
    const escalated = await get(running, 'incidents', incident.id);
    expect(escalated.escalation).toBe(1);
    expect(escalated.priority).toBe('medium');
    // Every minute the timer saw has its line, in order, none twice.
    const ticks = running.logs
      .map((line) => /^schedule: (2026-\S+) /.exec(line)?.[1])
      .filter((tick) => tick !== undefined);
    expect([...new Set(ticks)]).toEqual([
      '2026-11-28T10:15:00Z',
      '2026-11-28T10:16:00Z',
      '2026-11-28T10:17:00Z',
    ]);
  });

  it('runs the minutes the timer missed late, saying so; a longer gap is down time, a clock stepped back runs nothing twice', async () => {
    rules = writeRules({
      'incident/every-minute.yaml': `on: {type: incident, schedule: "* 10-11 * * *"}
then:
  - log: {message: {cat: ["tick for ", {var: object.id}]}}
`,
    });
    let clock = new Date('2026-11-28T09:59:00Z');
    engine = await startTestEngine({
      rulesDir: rules.dir,
      schedules: true,
      scheduleTimer: { pattern: '* * * * * *', now: () => clock },
    });
    const running = engine;
    await create(running, 'incidents', { priority: 'low' });
    await runsRecorded(running, 1, 'the add drained');
    clock = new Date('2026-11-28T10:20:00Z');
    await eventually(
      () => lineAt(running, 'schedule: 2026-11-28T10:20:00Z every-minute: 1 objects'),
      '10:20',
    );

    // The timer next fires at 10:23:30, as after a loop held for three minutes.
    clock = new Date('2026-11-28T10:23:30Z');
    await eventually(
      () => lineAt(running, 'schedule: 2026-11-28T10:23:00Z every-minute: 1 objects'),
      '10:23',
    );
    const lines = running.logs.filter((line) => line.startsWith('schedule: 2026-11-28T10:2'));
    expect(lines).toEqual([
      'schedule: 2026-11-28T10:20:00Z every-minute: 1 objects in 1 accounts (1 acted on)',
      'schedule: 2026-11-28T10:21:00Z starts 150 s late: the timer fired late (the process was busy)',
      'schedule: 2026-11-28T10:21:00Z every-minute: 1 objects in 1 accounts (1 acted on)',
      'schedule: 2026-11-28T10:22:00Z starts 90 s late: the timer fired late (the process was busy)',
      'schedule: 2026-11-28T10:22:00Z every-minute: 1 objects in 1 accounts (1 acted on)',
      'schedule: 2026-11-28T10:23:00Z every-minute: 1 objects in 1 accounts (1 acted on)',
    ]);

    // Next at 11:00: 36 minutes without a tick is the engine not running; they are not run.
    clock = new Date('2026-11-28T11:00:10Z');
    await eventually(
      () => lineAt(running, 'schedule: 2026-11-28T11:00:00Z every-minute: 1 objects'),
      '11:00',
    );
    expect(running.logs).toContain(
      'schedule: no tick from 2026-11-28T10:24:00Z to 2026-11-28T10:59:00Z (36 minutes): the timer did not fire, as when the engine is down (the process was suspended or the clock jumped); those minutes are not caught up',
    );

    // The clock steps back ten minutes: those minutes had their ticks, and are not run again.
    clock = new Date('2026-11-28T10:50:00Z');
    await eventually(() => lineAt(running, 'schedule: the clock went back'), 'the step back');
    clock = new Date('2026-11-28T11:01:00Z');
    await eventually(
      () => lineAt(running, 'schedule: 2026-11-28T11:01:00Z every-minute: 1 objects'),
      '11:01',
    );
    expect(running.logs.filter((line) => line.startsWith('schedule: the clock went back'))).toEqual(
      [
        'schedule: the clock went back to 2026-11-28T10:50:00Z, before the last tick 2026-11-28T11:00:00Z; the minutes up to that tick are not run again',
      ],
    );
    expect(await ticksActed(running, 'every-minute')).toEqual([
      '2026-11-28T10:20:00Z',
      '2026-11-28T10:21:00Z',
      '2026-11-28T10:22:00Z',
      '2026-11-28T10:23:00Z',
      '2026-11-28T11:00:00Z',
      '2026-11-28T11:01:00Z',
    ]);
  });

  it('queues a minute behind a sweep that runs past it, then runs it, saying it starts late', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const hook = await startReceiver({ answer: () => ({ status: 200, until: held }) });
    receiver = hook;
    rules = writeRules({
      'incident/call-out-at-twenty.yaml': `on: {type: incident, schedule: "20 10 * * *"}
then:
  - http: {url: "${hook.url}", body: {cat: ["tick for ", {var: object.id}]}}
`,
      'incident/note-at-twenty-one.yaml': `on: {type: incident, schedule: "21 10 * * *"}
then:
  - log: {message: {cat: ["tick for ", {var: object.id}]}}
`,
    });
    let clock = new Date('2026-11-28T10:19:00Z');
    // Counts the timer's fires: while a first run is in hand, nothing else reads this clock.
    let reads = 0;
    engine = await startTestEngine({
      rulesDir: rules.dir,
      httpAllow: [new URL(hook.url).host],
      schedules: true,
      scheduleTimer: {
        pattern: '* * * * * *',
        now: () => {
          reads++;
          return clock;
        },
      },
    });
    const running = engine;
    await create(running, 'incidents', { priority: 'low' });
    await runsRecorded(running, 1, 'the add drained');

    // 10:20's sweep calls out and is held there; the timer fires at 10:21 and 10:22:30 meanwhile.
    clock = new Date('2026-11-28T10:20:00Z');
    await hook.waitFor(1);
    for (const at of ['2026-11-28T10:21:00Z', '2026-11-28T10:22:30Z']) {
      clock = new Date(at);
      const before = reads;
      await eventually(() => reads > before, `the timer to fire at ${at} during the sweep`);
    }
    expect(running.logs.filter((line) => line.startsWith('schedule: 2026-11-28T10:21'))).toEqual(
      [],
    );

    release();
    await eventually(
      () => lineAt(running, 'schedule: 2026-11-28T10:21:00Z note-at-twenty-one: 1 objects'),
      '10:21 after 10:20',
    );
    expect(running.logs.filter((line) => line.startsWith('schedule: 2026-11-28T10:2'))).toEqual([
      'schedule: 2026-11-28T10:20:00Z call-out-at-twenty: 1 objects in 1 accounts (1 acted on)',
      'schedule: 2026-11-28T10:21:00Z starts 90 s late: the ticks before it ran long',
      'schedule: 2026-11-28T10:21:00Z note-at-twenty-one: 1 objects in 1 accounts (1 acted on)',
    ]);
    expect(hook.requests).toHaveLength(1);
  });

  it('gives up a retry waiting when the engine closes, and starts nothing after', async () => {
    rules = writeRules(RULES);
    engine = await startTestEngine({
      rulesDir: rules.dir,
      faults: {},
      scheduleRetryMs: 3_600_000,
    });
    const running = engine;
    await create(running, 'incidents', { priority: 'low' });
    await runsRecorded(running, 1, 'the add drained');
    failIncidentLists(running);
    const tick = running.runDueSchedules(new Date('2026-11-28T10:15:00Z'));
    await eventually(
      () => lineAt(running, 'schedule: running 2026-11-28T10:15:00Z again in 3600 s'),
      'the retry waiting',
    );

    // Closing does not wait the hour out: the tick ends with what its one run did.
    await running.close();
    const summary = await tick;
    expect(summary?.objects).toBe(0);
    expect(summary?.errors).toHaveLength(1);
    const logged = running.logs.length;
    expect(await running.runDueSchedules(new Date('2026-11-28T10:16:00Z'))).toBeNull();
    expect(running.logs.slice(logged)).toEqual([]);
  });
});
