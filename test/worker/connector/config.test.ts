// The Worker's settings over a ServiceNow instance: the environment twins of `itsm-rules serve
// --servicenow`'s flags, read by the same rules (each missing or invalid one named, with how to
// set it), ITSM_API_URL then not required and refused beside ITSM_SERVICENOW_URL, and a Worker
// so misconfigured answering 500 without ever showing a credential.
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import {
  parseWorkerMessage,
  readWorkerConfig,
  type WorkerEnv,
} from '../../../src/runtime/worker.js';
import { request, workerEnv } from '../helpers.js';
import { mainWorker } from './main.js';

const env = (overrides: Partial<Record<keyof WorkerEnv, unknown>>) =>
  ({ ...workerEnv, ...overrides }) as WorkerEnv;

describe('the settings of the Worker over a ServiceNow instance', () => {
  it('reads the instance, the integration user and the push secret; no ITSM API', () => {
    expect(readWorkerConfig(workerEnv)).toMatchObject({
      apiUrl: null,
      servicenow: {
        instanceUrl: inject('snUrl'),
        auth: {
          kind: 'basic',
          username: workerEnv.ITSM_SN_USERNAME,
          password: workerEnv.ITSM_SN_PASSWORD,
        },
        account: 1,
        pushSecret: workerEnv.ITSM_SN_PUSH_SECRET,
      },
      publicUrl: null,
      eventRetention: 10_000,
    });
  });

  it('takes OAuth with a client id and secret, the account, the public URL and the retention', () => {
    const config = readWorkerConfig(
      env({
        ITSM_SN_CLIENT_ID: 'client',
        ITSM_SN_CLIENT_SECRET: 'client-secret',
        ITSM_SN_ACCOUNT: 7,
        ITSM_PUBLIC_URL: 'https://itsm-rules.example.workers.dev/',
        ITSM_EVENT_RETENTION: '500',
      }),
    );
    expect(config).toMatchObject({
      servicenow: { auth: { kind: 'oauth', clientId: 'client' }, account: 7 },
      publicUrl: 'https://itsm-rules.example.workers.dev',
      eventRetention: 500,
    });
  });

  it.each([
    [
      { ITSM_API_URL: 'https://itsm.example.com/v1' },
      'ITSM_API_URL',
      /ITSM_API_URL and ITSM_SERVICENOW_URL are both set/,
    ],
    [
      { ITSM_SERVICENOW_URL: 'ftp://dev1.service-now.com' },
      'ITSM_SERVICENOW_URL',
      /ITSM_SERVICENOW_URL: .*; set ITSM_SERVICENOW_URL under \[vars\] in wrangler\.toml/,
    ],
    [
      { ITSM_SN_PASSWORD: undefined },
      'ITSM_SN_PASSWORD',
      /ITSM_SERVICENOW_URL needs the integration user: ITSM_SN_USERNAME and ITSM_SN_PASSWORD; set the secret with `npx wrangler secret put ITSM_SN_PASSWORD`/,
    ],
    [
      { ITSM_SN_USERNAME: ' ' },
      'ITSM_SN_USERNAME',
      /needs the integration user.*npx wrangler secret put ITSM_SN_USERNAME/,
    ],
    [
      { ITSM_SN_CLIENT_ID: 'client' },
      'ITSM_SN_CLIENT_SECRET',
      /OAuth needs both ITSM_SN_CLIENT_ID and ITSM_SN_CLIENT_SECRET \(leave both out for Basic auth\)/,
    ],
    [
      { ITSM_SN_PUSH_SECRET: 'short' },
      'ITSM_SN_PUSH_SECRET',
      /ITSM_SN_PUSH_SECRET must be at least 16 characters/,
    ],
    [
      { ITSM_SN_ACCOUNT: '0' },
      'ITSM_SN_ACCOUNT',
      /ITSM_SN_ACCOUNT must be a whole number >= 1, got "0"; set ITSM_SN_ACCOUNT under \[vars\]/,
    ],
    [
      { ITSM_SERVICENOW_URL: undefined, ITSM_API_URL: 'https://itsm.example.com/v1' },
      'ITSM_SN_USERNAME',
      /ITSM_SN_USERNAME, ITSM_SN_PASSWORD, ITSM_SN_PUSH_SECRET only apply with ITSM_SERVICENOW_URL/,
    ],
    [
      {
        ITSM_SERVICENOW_URL: undefined,
        ITSM_SN_USERNAME: undefined,
        ITSM_SN_PASSWORD: undefined,
        ITSM_SN_PUSH_SECRET: undefined,
      },
      'ITSM_API_URL',
      /ITSM_API_URL is not set; .*\(or set ITSM_SERVICENOW_URL/,
    ],
    [{ ITSM_PUBLIC_URL: 'worker' }, 'ITSM_PUBLIC_URL', /ITSM_PUBLIC_URL must be an http\(s\) URL/],
    [
      { ITSM_EVENT_RETENTION: '0' },
      'ITSM_EVENT_RETENTION',
      /ITSM_EVENT_RETENTION must be a whole number from 1/,
    ],
  ])('refuses %o naming %s', (overrides, variable, message) => {
    let thrown: unknown;
    try {
      readWorkerConfig(env(overrides));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'WORKER_CONFIG_INVALID', variable });
    expect((thrown as Error).message).toMatch(message);
  });

  it('answers every request with a 500 naming the problem, never showing a credential', async () => {
    const broken = env({ ITSM_SN_CLIENT_ID: 'client' });
    const response = await request(mainWorker, 'GET', '/v1/accounts/1/itsm/incidents', {
      auth: true,
      env: broken,
    });
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).toMatch(/OAuth needs both ITSM_SN_CLIENT_ID and ITSM_SN_CLIENT_SECRET/);
    expect(text).not.toContain(workerEnv.ITSM_SN_PASSWORD as string);
  });

  it('answers a push with a 404 naming the secret to set when ITSM_SN_PUSH_SECRET is not', async () => {
    const response = await request(mainWorker, 'POST', '/servicenow/push', {
      env: env({ ITSM_SN_PUSH_SECRET: undefined }),
      headers: { Authorization: 'Bearer anything', 'Content-Type': 'application/json' },
      body: JSON.stringify({ table: 'incident', sys_id: 'a'.repeat(32) }),
    });
    expect(response.status).toBe(404);
    const text = await response.text();
    expect(text).toContain(
      '/servicenow/push is off: set the secret ITSM_SN_PUSH_SECRET on the Worker (`npx wrangler secret put ITSM_SN_PUSH_SECRET`, 16 characters at least) to let a Business Rule push changes',
    );
    expect(text).not.toContain('--sn-push-secret');
  });

  it('says in /healthz which instance it serves, as which account', async () => {
    const response = await mainWorker.fetch(
      new Request('http://worker.test/healthz'),
      workerEnv,
      createExecutionContext(),
    );
    expect(await response.json()).toMatchObject({
      ok: true,
      api: 'embedded',
      servicenow: { instance: inject('snUrl'), account: 1 },
      runtime: 'workers',
    });
  });
});

describe('GET /openapi.json over an instance', () => {
  it('lists the /v1 API and the push beside the engine routes, as Node all-in-one does', async () => {
    const response = await request(mainWorker, 'GET', '/openapi.json');
    expect(response.status).toBe(200);
    const paths = Object.keys(((await response.json()) as { paths: object }).paths);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/webhooks/kloudless',
        '/runs',
        '/servicenow/push',
        '/v1/accounts/{account}/events',
      ]),
    );
  });
});

describe('the queue message of a push read later', () => {
  it.each([
    [
      { push: { account: 1, table: 'incident', sysId: 'a'.repeat(32) } },
      { push: { account: 1, table: 'incident', sysId: 'a'.repeat(32) } },
    ],
    [{ push: { account: 0, table: 'incident', sysId: 'x' } }, null],
    [{ push: { account: 1, table: 7, sysId: 'x' } }, null],
    [{ push: { account: 1, table: 'incident' } }, null],
    [{ push: null, account: 3 }, { account: 3 }],
  ])('reads %o as %o', (body, parsed) => {
    expect(parseWorkerMessage(body)).toEqual(parsed);
  });
});
