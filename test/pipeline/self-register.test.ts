// The engine registering its own receiver with a separate ITSM API (`serve --api-url`), as users
// run it: `itsm-rules itsm-server` and `itsm-rules serve --api-url` each in their own process on
// 127.0.0.1. At start the receiver is registered as the application's webhook (no manual step),
// events flow, and a clean shutdown removes it; `--no-register-webhook` keeps the manual way;
// `--public-url` names the URL the API reaches the engine by; a registration the API refuses is
// logged and retried while the engine serves.
import { afterEach, describe, expect, it } from 'vitest';
import { callHttp } from '../helpers/itsm.js';
import { type Cleanups, killedByCleanups, runCleanups } from '../helpers/pipeline.js';
import { startReceiver } from '../helpers/receiver.js';
import { eventually, spawnItsmServer, spawnServe, writeRules } from '../helpers/serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

const TIMEOUT = 60_000;
const KEY = 'self-register-key';
const APP = 'self-register-app';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));

const track = killedByCleanups(cleanups);

/** One rule: every new incident gets a work note. */
function noteRules(): string {
  const rules = writeRules({
    'incident/acknowledge.yaml': [
      'description: every new incident is acknowledged',
      'on: {type: incident, events: [add]}',
      'then:',
      '  - note: {text: acknowledged}',
    ].join('\n'),
  });
  cleanups.push(() => rules.remove());
  return rules.dir;
}

async function startApi() {
  return track(
    await spawnItsmServer(['--port=0', '--db=:memory:', `--api-key=${KEY}`, `--app-id=${APP}`]),
  );
}

function startEngine(apiUrl: string, extra: string[] = [], key = KEY) {
  return spawnServe([
    '--port=0',
    '--db=:memory:',
    `--rules=${noteRules()}`,
    `--api-url=${apiUrl}/v1`,
    `--api-key=${key}`,
    `--app-id=${APP}`,
    '--no-schedules',
    '--reload-interval=0',
    ...extra,
  ]);
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<Json> {
  const response = await callHttp(base, method, path, {
    auth: `APIKey ${KEY}`,
    ...(body !== undefined && { body }),
  });
  expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(300);
  return response.json;
}

const webhookUrls = async (api: string): Promise<string[]> =>
  (await call(api, 'GET', `/v1/applications/${APP}/webhooks`)).objects.map((w: Json) => w.url);

/** Creates an incident on the API and waits for the engine's note on it. */
async function noteArrives(api: string): Promise<void> {
  const incident = await call(api, 'POST', '/v1/accounts/1/itsm/incidents', {
    description: 'printer on fire',
    impact: 'low',
  });
  await eventually(
    async () => {
      const read = await callHttp(api, 'GET', `/v1/accounts/1/itsm/incidents/${incident.id}`, {
        auth: `APIKey ${KEY}`,
        headers: { 'X-Kloudless-Raw-Data': 'true' },
      });
      return String(read.json?.raw?.work_notes ?? '').includes('acknowledged');
    },
    'the engine to note the new incident',
    20_000,
  );
}

describe('serve --api-url registers its own receiver', () => {
  it(
    'registers at start, events flow with no manual step, and a clean shutdown removes it',
    async () => {
      const api = await startApi();
      const engine = track(await startEngine(api.url));
      const receiver = `${engine.url}/webhooks/kloudless`;
      await engine.waitForStdout(/^itsm-api: /m);
      expect(engine.stdout()).toContain(
        `registering ${receiver} as the application's webhook (removed at shutdown)`,
      );
      await eventually(
        async () => (await webhookUrls(api.url)).includes(receiver),
        'the receiver to be registered',
      );
      expect(await webhookUrls(api.url)).toEqual([receiver]);
      await eventually(
        () => engine.stderr().includes(`registered with the API as webhook`),
        'the registration to be logged',
      );

      await noteArrives(api.url);

      expect(await engine.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(engine.stderr()).toMatch(/webhook: removed webhook \d+ \(.*\) from the API/);
      expect(await webhookUrls(api.url)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'reuses a registration of the same URL left by an earlier run',
    async () => {
      const api = await startApi();
      const engine = track(await startEngine(api.url));
      const receiver = `${engine.url}/webhooks/kloudless`;
      await eventually(
        async () => (await webhookUrls(api.url)).includes(receiver),
        'the receiver to be registered',
      );
      // Killed: no clean shutdown, the registration stays.
      await engine.stop('SIGKILL');
      expect(await webhookUrls(api.url)).toEqual([receiver]);

      // The same port again (a fixed --port, as in production): the registration is reused.
      const again = track(await startEngine(api.url, [`--port=${engine.port}`]));
      await eventually(
        () => again.stderr().includes('already registered with the API'),
        'the existing registration to be reused',
      );
      expect(await webhookUrls(api.url)).toEqual([receiver]);
      await noteArrives(api.url);
      expect(await again.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(await webhookUrls(api.url)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    '--no-register-webhook leaves registration to the user, and a shutdown leaves it in place',
    async () => {
      const api = await startApi();
      const engine = track(await startEngine(api.url, ['--no-register-webhook']));
      const receiver = `${engine.url}/webhooks/kloudless`;
      await engine.waitForStdout(/^itsm-api: /m);
      expect(engine.stdout()).toContain(`register ${receiver} as the application's webhook`);
      expect(engine.stdout()).not.toContain('registering');
      const manual = await call(api.url, 'POST', `/v1/applications/${APP}/webhooks`, {
        url: receiver,
      });
      await noteArrives(api.url);
      expect(await engine.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      // Not the engine's to remove.
      expect((await call(api.url, 'GET', `/v1/applications/${APP}/webhooks`)).objects).toEqual([
        expect.objectContaining({ id: manual.id, url: receiver }),
      ]);
      expect(engine.stderr()).not.toContain('webhook: ');
    },
    TIMEOUT,
  );

  it(
    '--public-url names the receiver the API reaches (behind a proxy)',
    async () => {
      const api = await startApi();
      // Stands for the proxy in front of the engine: it answers the API's handshake.
      const proxy = await startReceiver({ appId: APP });
      cleanups.push(() => proxy.close());
      const base = new URL(proxy.url).origin;
      const engine = track(await startEngine(api.url, [`--public-url=${base}/itsm-rules/`]));
      const registered = `${base}/itsm-rules/webhooks/kloudless`;
      await engine.waitForStdout(/^itsm-api: /m);
      expect(engine.stdout()).toContain(`registering ${registered} as the application's webhook`);
      await eventually(
        async () => (await webhookUrls(api.url)).includes(registered),
        'the public receiver URL to be registered',
      );
      expect(await webhookUrls(api.url)).toEqual([registered]);
      // The API's handshake reached the proxy's path.
      expect(proxy.requests.map((r) => r.url)).toContain('/itsm-rules/webhooks/kloudless');
      expect(await engine.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(await webhookUrls(api.url)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'a registration the API refuses is logged and retried; the engine serves meanwhile',
    async () => {
      const api = await startApi();
      const engine = track(await startEngine(api.url, [], 'not-the-key'));
      await eventually(
        () =>
          /webhook: registering .* with the API failed \(attempt 2\): the API refused the application key \(401: .*\); check --api-key; retrying in 2\.0 s/.test(
            engine.stderr(),
          ),
        'two failed attempts to be logged',
      );
      const health = await callHttp(engine.url, 'GET', '/healthz', { auth: null });
      expect(health.status).toBe(200);
      expect(await webhookUrls(api.url)).toEqual([]);
      // The key never appears in the log.
      expect(engine.stderr()).not.toContain('not-the-key');
      expect(await engine.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    },
    TIMEOUT,
  );

  it(
    'an API that is down at start is retried, not a crash, and registered once it is up',
    async () => {
      // A port the API will listen on later: taken by a first API, then freed.
      const probe = await startApi();
      const port = probe.port;
      await probe.stop('SIGTERM');
      const apiUrl = `http://127.0.0.1:${port}`;
      const engine = track(await startEngine(apiUrl));
      await eventually(
        () =>
          /webhook: registering .* with the API failed \(attempt 1\): .*retrying in 1\.0 s/.test(
            engine.stderr(),
          ),
        'the failed attempt to be logged',
      );
      expect((await callHttp(engine.url, 'GET', '/healthz', { auth: null })).status).toBe(200);

      track(
        await spawnItsmServer([
          `--port=${port}`,
          '--db=:memory:',
          `--api-key=${KEY}`,
          `--app-id=${APP}`,
        ]),
      );
      const receiver = `${engine.url}/webhooks/kloudless`;
      await eventually(
        async () => (await webhookUrls(apiUrl)).includes(receiver),
        'the retried registration to succeed',
        30_000,
      );
      await noteArrives(apiUrl);
      expect(await engine.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(await webhookUrls(apiUrl)).toEqual([]);
    },
    TIMEOUT,
  );
});
