// The engine over a ServiceNow instance, as users run it: the instance is the Table API face
// (`itsm-rules itsm-server --sn-user ...`) in its own process, and `itsm-rules serve
// --servicenow URL` runs the engine all-in-one over it in another (the connector in process as the
// embedded /v1 API's object store, its change feed polling). Incidents are created on the
// instance by a ServiceNow user through the Table API; what the engine does is read back there
// (the record and sys_journal_field). Rules: test/fixtures/servicenow-engine-rules, or a folder
// written by the test where an action must reach a test receiver.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { callHttp } from '../helpers/itsm.js';
import { type Cleanups, killedByCleanups, runCleanups } from '../helpers/pipeline.js';
import { startReceiver } from '../helpers/receiver.js';
import {
  type CliProcess,
  eventually,
  spawnCli,
  spawnItsmServer,
  spawnServe,
  writeRules,
} from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const TIMEOUT = 60_000;
const RULES = 'test/fixtures/servicenow-engine-rules';
const ENGINE_KEY = 'engine-key';
const INTEGRATION = { ITSM_SN_USERNAME: 'integration', ITSM_SN_PASSWORD: 'in7egration-pw' };
const NOTE = 'Triaged by itsm-rules: the category is network.';

let face: CliProcess & { url: string };
let dir: string;
const cleanups: Cleanups = [];

beforeAll(async () => {
  face = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    '--api-key=face-key',
    `--sn-user=integration:${INTEGRATION.ITSM_SN_PASSWORD}`,
    '--sn-user=ann:pw',
  ]);
  dir = mkdtempSync(join(tmpdir(), 'itsm-rules-sn-engine-'));
}, TIMEOUT);

afterEach(() => runCleanups(cleanups));

afterAll(async () => {
  await face?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A Table API call on the instance as ann, a ServiceNow user. */
async function onInstance(method: string, path: string, body?: unknown): Promise<Json> {
  const response = await callHttp(face.url, method, `/api/now/table/${path}`, {
    auth: `Basic ${btoa('ann:pw')}`,
    ...(body !== undefined && { body }),
  });
  expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(300);
  return response.json;
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

function serve(db: string, rules = RULES, extra: string[] = []) {
  return spawnServe(
    [
      '--port=0',
      `--db=${db}`,
      `--rules=${rules}`,
      `--api-key=${ENGINE_KEY}`,
      `--servicenow=${face.url}`,
      '--poll-interval=100',
      '--no-schedules',
      '--reload-interval=0',
      ...extra,
    ],
    INTEGRATION,
  );
}

const track = killedByCleanups(cleanups);

/** The engine's embedded /v1 event log of one record, oldest first. */
async function eventsOf(engineUrl: string, sysId: string): Promise<Json[]> {
  const page = await callHttp(engineUrl, 'GET', '/v1/accounts/1/events?page_size=1000', {
    auth: `APIKey ${ENGINE_KEY}`,
  });
  expect(page.status).toBe(200);
  return page.json.objects.filter((e: Json) => String(e.metadata.id).endsWith(`.${sysId}`));
}

describe('itsm-rules serve --servicenow URL', () => {
  it(
    'acts on an incident created on the instance exactly once, and its own write does not trigger it again',
    async () => {
      const engine = track(await serve(join(dir, 'once.db')));
      await engine.waitForStdout(new RegExp(`objects in ServiceNow ${face.url} as account 1`));
      await eventually(
        () => engine.stderr().includes(`serving ServiceNow ${face.url} as account 1`),
        'the feed to be announced',
      );
      const health = await callHttp(engine.url, 'GET', '/healthz', { auth: null });
      expect(health.json).toMatchObject({
        ok: true,
        api: 'embedded',
        servicenow: { instance: face.url, account: 1 },
      });
      // The credentials are never printed.
      expect(engine.stdout() + engine.stderr()).not.toContain(INTEGRATION.ITSM_SN_PASSWORD);

      const made = (
        await onInstance('POST', 'incident', {
          short_description: 'core switch down',
          category: 'network',
        })
      ).result;
      const triaged = await eventually(
        async () => {
          const record = (await onInstance('GET', `incident/${made.sys_id}`)).result;
          return record.u_triaged === 'yes' && (await workNotes(made.sys_id)).length > 0 && record;
        },
        'the rule to act on the incident',
        20_000,
      );
      expect(triaged.sys_updated_by).toBe('integration');

      // A second incident, created after the first one was acted on: once it is acted on too,
      // the feed has polled past the engine's writes on the first, and any echo of them would
      // have been drained before it (events are drained in order).
      const later = (
        await onInstance('POST', 'incident', {
          short_description: 'router down',
          category: 'network',
        })
      ).result;
      await eventually(
        async () => (await workNotes(later.sys_id)).length > 0,
        'the rule to act on the second incident',
        20_000,
      );

      const notes = await workNotes(made.sys_id);
      expect(notes).toEqual([
        expect.objectContaining({ value: NOTE, sys_created_by: 'integration' }),
      ]);
      // The instance saw the insert and exactly two writes of the engine (the update, the note).
      expect((await onInstance('GET', `incident/${made.sys_id}`)).result.sys_mod_count).toBe('2');
      // The log: ann's add, then the engine's two writes as its own user, and nothing the feed
      // read back of them (echo suppression needs the writer; the feed must not re-report them
      // as the integration user's).
      const events = await eventsOf(engine.url, made.sys_id);
      expect(events.map((e: Json) => [e.type, e.user_id === 'itsm-rules'])).toEqual([
        ['add', false],
        ['update', true],
        ['update', true],
      ]);
      const runs = await callHttp(engine.url, 'GET', '/runs', { auth: `APIKey ${ENGINE_KEY}` });
      expect(runs.status).toBe(200);
      expect(JSON.stringify(runs.json)).toContain(made.sys_id);

      // A clean stop: exit 0.
      expect(await engine.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    },
    TIMEOUT,
  );

  it(
    'serves the push of a Business Rule: with polling off, a pushed record is acted on at once',
    async () => {
      const secret = 'push-secret-of-the-test';
      const engine = track(
        await serve(join(dir, 'push.db'), RULES, [
          '--poll-interval=0',
          `--sn-push-secret=${secret}`,
        ]),
      );
      await eventually(
        () => engine.stderr().includes('change feed polls on push only'),
        'the feed to be announced',
      );
      const made = (
        await onInstance('POST', 'incident', { short_description: 'vpn down', category: 'network' })
      ).result;
      const push = (auth: string) =>
        callHttp(engine.url, 'POST', '/servicenow/push', {
          auth,
          body: { table: 'incident', sys_id: made.sys_id },
        });
      expect((await push('Bearer not-the-secret')).status).toBe(401);
      const pushed = await push(`Bearer ${secret}`);
      expect(pushed.status, pushed.text).toBe(200);
      expect(pushed.json).toEqual({ table: 'incident', sys_id: made.sys_id, events: 1 });
      await eventually(
        async () => (await workNotes(made.sys_id)).length === 1,
        'the rule to act on the pushed incident',
        20_000,
      );
    },
    TIMEOUT,
  );

  it(
    'acts exactly once when SIGKILLed between the change and the end of its actions',
    async () => {
      // The note first, then a call that hangs on the first attempt (the engine is killed while
      // it waits), then the update: after the restart the plan resumes where it stopped.
      let held = 0;
      const pager = await startReceiver({
        answer: () => (held++ === 0 ? { status: 200, delayMs: 60_000 } : { status: 200 }),
      });
      cleanups.push(() => pager.close());
      const rules = writeRules({
        'incident/triage.yaml': [
          'description: note, page, mark',
          'on: {type: incident, events: [add]}',
          // Not network: the first feed poll of a new engine reports the records changed in the
          // second it started in (docs/servicenow.md), which may be earlier tests' incidents.
          'when: {"==": [{var: object.category}, database]}',
          'then:',
          `  - note: {text: "${NOTE}"}`,
          `  - http: {url: "${pager.url}", method: POST, body: {incident: {var: object.id}}}`,
          '  - update: {raw: {u_triaged: "yes"}}',
        ].join('\n'),
      });
      cleanups.push(() => rules.remove());
      const db = join(dir, 'kill.db');
      const allow = [`--http-allow=127.0.0.1:${new URL(pager.url).port}`];
      const first = track(await serve(db, rules.dir, allow));

      const made = (
        await onInstance('POST', 'incident', {
          short_description: 'replica lagging',
          category: 'database',
        })
      ).result;
      const [paged] = await pager.waitFor(1, 20_000);
      expect(JSON.parse(String(paged?.body))).toEqual({ incident: `incident.${made.sys_id}` });
      // The note is written and the page is on its way: kill now.
      expect(await workNotes(made.sys_id)).toHaveLength(1);
      expect(await first.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      expect((await onInstance('GET', `incident/${made.sys_id}`)).result.u_triaged ?? '').toBe('');

      const second = track(await serve(db, rules.dir, allow));
      await eventually(
        async () => (await onInstance('GET', `incident/${made.sys_id}`)).result.u_triaged === 'yes',
        'the restarted engine to finish the plan',
        20_000,
      );
      expect(await workNotes(made.sys_id)).toEqual([expect.objectContaining({ value: NOTE })]);
      // The page was sent again (its answer never came), with the same idempotency key.
      expect(pager.requests).toHaveLength(2);
      const keys = pager.requests.map((r) => r.headers['idempotency-key']);
      expect(keys[0]).toBe(keys[1]);
      expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    },
    TIMEOUT,
  );

  it(
    'exits 1 with a clear message when the instance is down or refuses the user',
    async () => {
      const down = spawnCli(
        [
          'serve',
          '--port=0',
          '--db=:memory:',
          `--rules=${RULES}`,
          // Port 9 (discard): nobody listens there on a test machine.
          '--servicenow=http://127.0.0.1:9',
        ],
        INTEGRATION,
      );
      expect((await down.exited).code).toBe(1);
      expect(down.stderr()).toMatch(
        /^itsm-rules serve: .*ServiceNow at http:\/\/127\.0\.0\.1:9 .*unreachable/m,
      );
      expect(down.stdout() + down.stderr()).not.toContain(INTEGRATION.ITSM_SN_PASSWORD);

      const refused = spawnCli(
        ['serve', '--port=0', '--db=:memory:', `--rules=${RULES}`, `--servicenow=${face.url}`],
        { ITSM_SN_USERNAME: 'integration', ITSM_SN_PASSWORD: 'wrong-password' },
      );
      expect((await refused.exited).code).toBe(1);
      expect(refused.stderr()).toContain(
        `itsm-rules serve: cannot use the ServiceNow instance at ${face.url}: the instance refused the user`,
      );
      expect(refused.stdout() + refused.stderr()).not.toContain('wrong-password');
    },
    TIMEOUT,
  );

  it(
    'refuses --servicenow with --api-url, and --sn-user with --servicenow (usage, exit 2)',
    async () => {
      const both = spawnCli(
        [
          'serve',
          '--servicenow=http://127.0.0.1:9',
          '--api-url=http://127.0.0.1:9/v1',
          '--api-key=K',
        ],
        INTEGRATION,
      );
      expect((await both.exited).code).toBe(2);
      expect(both.stderr()).toContain(
        'itsm-rules serve: --servicenow runs the API over the instance inside the engine (all-in-one); with --api-url the engine acts through another API, so give --servicenow to that itsm-server instead',
      );
      const face = spawnCli(
        ['serve', '--servicenow=http://127.0.0.1:9', '--sn-user=ann:pw'],
        INTEGRATION,
      );
      expect((await face.exited).code).toBe(2);
      expect(face.stderr()).toContain('with --servicenow the instance is the real one');
      const credentials = spawnCli(['serve', '--servicenow=http://127.0.0.1:9']);
      expect((await credentials.exited).code).toBe(2);
      expect(credentials.stderr()).toContain('--servicenow needs the integration user');
    },
    TIMEOUT,
  );
});
