// Security: secrets never appear in the engine's log lines nor in its run records (`/runs`), in
// error messages included. The secrets: the API key and the previous key, the signatures of
// webhook notifications (valid or not), Authorization headers sent to the admin routes (wrong
// keys included), and what an `http` action carries: its headers (Authorization, API keys) and
// the credentials and query of its URL. The engine runs as `itsm-rules serve` does, all-in-one,
// with a rule that calls a hook on 127.0.0.1 that fails a few times before it answers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../src/itsm/signature.js';
import {
  eventually,
  startTestEngine,
  TEST_API_KEY,
  type TestEngine,
  writeRules,
} from '../helpers/serve.js';

const PREVIOUS_KEY = 'previous-secret-key-0451';
const HEADER_SECRET = 'hook-secret-token-9137';
const HEADER_KEY = 'hook-secret-key-2288';
const QUERY_SECRET = 'url-query-secret-7731';
const URL_PASSWORD = 'url-password-6642';
const WRONG_ADMIN_KEY = 'wrong-admin-key-5519';

let engine: TestEngine;
let hook: Server;
let hookRequests: { url: string; authorization: string | undefined }[];
let rules: { dir: string; remove(): void };
const signatures: string[] = [];

beforeAll(async () => {
  hookRequests = [];
  // A hook outside the project: fails twice with 500, then accepts.
  hook = createServer((req, res) => {
    hookRequests.push({ url: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    req.on('end', () => res.writeHead(hookRequests.length <= 2 ? 500 : 200).end('{}'));
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const port = (hook.address() as AddressInfo).port;
  rules = writeRules({
    'incident/call-hook.yaml': `on: {type: incident, events: [add]}
when: {"==": [{var: object.description}, "hook"]}
then:
  - http:
      url: "http://127.0.0.1:${port}/hook?token=${QUERY_SECRET}"
      headers: {Authorization: "Bearer ${HEADER_SECRET}", X-Api-Key: "${HEADER_KEY}"}
      body: {id: {var: object.id}}
`,
    'incident/call-hook-with-credentials.yaml': `on: {type: incident, events: [add]}
when: {"==": [{var: object.description}, "credentials"]}
then:
  - http:
      url: {cat: ["http://hook-user:", "${URL_PASSWORD}", "@127.0.0.1:${port}/hook"]}
      body: {id: {var: object.id}}
`,
  });
  engine = await startTestEngine({
    rulesDir: rules.dir,
    previousKeys: [PREVIOUS_KEY],
    httpAllow: [`127.0.0.1:${port}`],
  });
});

afterAll(async () => {
  await engine?.close();
  hook?.closeAllConnections();
  await new Promise((resolve) => hook?.close(resolve));
  rules?.remove();
});

describe('secrets in logs and run records', () => {
  it('never shows a key, a signature, an admin credential or an http action secret', async () => {
    // Signed notifications (current and previous key), and refused ones.
    for (const [body, key] of [
      ['{"account": 1}', TEST_API_KEY],
      ['{"account": 1}', PREVIOUS_KEY],
      ['{"account": 1}', 'some-other-key'],
      ['{"account": "x"}', TEST_API_KEY],
    ] as const) {
      const signature = await signBody(body, key);
      signatures.push(signature);
      await engine.call('POST', '/webhooks/kloudless', {
        body,
        headers: { 'X-Kloudless-Signature': signature, 'Content-Type': 'application/json' },
        auth: null,
      });
    }
    // Admin routes with wrong credentials, in both schemes.
    for (const auth of [`APIKey ${WRONG_ADMIN_KEY}`, `Bearer ${WRONG_ADMIN_KEY}`]) {
      expect((await engine.call('GET', '/runs', { auth })).status).toBe(401);
      expect((await engine.call('POST', '/admin/schedules/run', { auth, body: '{}' })).status).toBe(
        401,
      );
    }
    // Two incidents: one calls the hook (fails twice, then passes), one the hook with credentials.
    const hooked = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { description: 'hook' },
    });
    const credentials = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { description: 'credentials' },
    });
    const hookedId = (hooked.json as { id: string }).id;
    const credentialsId = (credentials.json as { id: string }).id;

    const runs = await eventually(
      async () => {
        const list = await engine.call('GET', '/runs?page_size=100');
        const objects = (
          list.json as { objects: { object: { id: string } | null; outcome: string }[] }
        ).objects;
        const done = (id: string) =>
          objects.some((r) => r.object?.id === id && r.outcome !== 'no_match');
        return done(hookedId) && done(credentialsId) ? list.text : undefined;
      },
      'the run records of both incidents',
      15_000,
    );
    expect(hookRequests.length).toBeGreaterThanOrEqual(3);
    expect(hookRequests[0]?.authorization).toBe(`Bearer ${HEADER_SECRET}`);

    const records = [runs];
    for (const id of [hookedId, credentialsId]) {
      records.push((await engine.call('GET', `/runs?object_id=${id}`)).text);
    }
    const everything = [...engine.logs, ...records].join('\n');
    for (const secret of [
      TEST_API_KEY,
      PREVIOUS_KEY,
      ...signatures,
      WRONG_ADMIN_KEY,
      HEADER_SECRET,
      HEADER_KEY,
      QUERY_SECRET,
      URL_PASSWORD,
    ]) {
      expect(everything, `found ${secret}`).not.toContain(secret);
    }
    // The records still say what happened, without the secrets.
    const port = (hook.address() as AddressInfo).port;
    expect(runs).toContain(`http://127.0.0.1:${port}/hook?...`);
    expect(runs).toContain(`http://***@127.0.0.1:${port}/hook`);
    expect(runs).toContain('carries a user name or password');
  });
});
