// The connector when its instance misbehaves, each fault with its outcome and log line. The
// instance is the Table API face on 127.0.0.1 over real HTTP, in the test process this time so
// that the test can script its faults (the next 429, 500, slow answer...) and move its OAuth
// clock: a 429 with Retry-After and a 5xx are retried, a timeout is retried, an expired OAuth
// token is renewed and the call repeated once, an instance that is down is a 503 naming the
// cause, and a record deleted between the push and the read comes out as its delete.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServiceNowClient, ServiceNowError } from '../../src/servicenow/client.js';
import { callHttp, startTestItsm, type TestItsm } from '../helpers/itsm.js';

const PUSH_SECRET = 'push-secret-0123456789';
let face: TestItsm;
let clock = Date.now();
let connector: TestItsm | undefined;

beforeEach(async () => {
  clock = Date.now();
  face = await startTestItsm({
    faults: {},
    tableApi: {
      users: [
        { name: 'integration', password: 's3cret', account: 1 },
        { name: 'ann', password: 'pw', account: 1 },
      ],
      oauthClients: [{ id: 'client', secret: 'client-secret' }],
      now: () => clock,
    },
  });
});

afterEach(async () => {
  await connector?.close();
  connector = undefined;
  await face.close();
});

async function startConnector(auth: 'basic' | 'oauth' = 'basic', timeoutMs?: number) {
  connector = await startTestItsm({
    servicenow: {
      instanceUrl: face.url,
      auth:
        auth === 'basic'
          ? { kind: 'basic', username: 'integration', password: 's3cret' }
          : {
              kind: 'oauth',
              clientId: 'client',
              clientSecret: 'client-secret',
              username: 'integration',
              password: 's3cret',
            },
      pollIntervalMs: 0,
      pushSecret: PUSH_SECRET,
      retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
      ...(timeoutMs !== undefined && { timeoutMs }),
    },
  });
  return connector;
}

describe('the connector when the instance fails', () => {
  it('retries a 429 after its Retry-After and answers as if nothing happened', async () => {
    const c = await startConnector();
    face.itsm.faults?.inject({ status: 429, retryAfter: 0, times: 1, path: /^\/api\/now\// });
    const listed = await c.call('GET', '/v1/accounts/1/itsm/incidents');
    expect(listed.status).toBe(200);
    expect(face.itsm.faults?.pending()).toBe(0);
    expect(c.logs.join('\n')).toMatch(
      /GET \/api\/now\/table\/incident failed \(429, Retry-After 0 s\); retry 2 of 3/,
    );
  });

  it('retries a 500 on a read', async () => {
    const c = await startConnector();
    face.itsm.faults?.inject({ status: 500, times: 2, path: /^\/api\/now\// });
    expect((await c.call('GET', '/v1/accounts/1/itsm/problems')).status).toBe(200);
    expect(c.logs.filter((l) => l.includes('failed (500)'))).toHaveLength(2);
  });

  it('answers 503 naming the cause when the instance keeps failing, and stores nothing', async () => {
    const c = await startConnector();
    face.itsm.faults?.inject({ status: 503, times: 10, path: /^\/api\/now\// });
    const failed = await c.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { description: 'x' },
    });
    // A create is not repeated after a 5xx (it may have been applied); the caller retries.
    expect(failed.status).toBe(503);
    expect(failed.json.error_code).toBe('service_unavailable');
    expect(failed.headers.get('Retry-After')).toBe('5');
    expect(c.logs.join('\n')).toMatch(
      /answered 503: ServiceNow POST \/api\/now\/table\/incident answered 503/,
    );
    const events = await c.call('GET', '/v1/accounts/1/events?cursor=0');
    const incidents = events.json.objects.filter(
      (e: { metadata: { type: string } }) => e.metadata.type === 'incident',
    );
    expect(incidents).toEqual([]);
  });

  it('retries a call that times out', async () => {
    const c = await startConnector('basic', 300);
    face.itsm.faults?.inject({ latencyMs: 1_000, times: 1, method: 'GET', path: /^\/api\/now\// });
    expect((await c.call('GET', '/v1/accounts/1/itsm/changes')).status).toBe(200);
    expect(c.logs.join('\n')).toMatch(/failed \(SN_TIMEOUT\); retry 2 of 3/);
  });

  it('answers 503 when the instance is down, and says so in the log', async () => {
    const c = await startConnector();
    await face.close();
    const down = await c.call('GET', '/v1/accounts/1/itsm/incidents');
    expect(down.status).toBe(503);
    expect(c.logs.join('\n')).toMatch(/ServiceNow at http:\/\/127\.0\.0\.1:\d+ is unreachable/);
    // Restarted for afterEach to close.
    face = await startTestItsm();
  });

  it('renews an expired OAuth token and repeats the call once', async () => {
    const c = await startConnector('oauth');
    // Past the face's token lifetime (1800 s) and its own margin: the next call gets a 401.
    clock += 1_801_000;
    const listed = await c.call('GET', '/v1/accounts/1/itsm/incidents');
    expect(listed.status).toBe(200);
    expect(c.logs.join('\n')).toMatch(/answered 401; renewing the OAuth token and retrying/);
  });

  it('reports a pushed record deleted before it was read as its delete', async () => {
    const c = await startConnector();
    const made = await callHttp(face.url, 'POST', '/api/now/table/incident', {
      auth: `Basic ${btoa('ann:pw')}`,
      body: { short_description: 'short-lived' },
    });
    const sysId = made.json.result.sys_id as string;
    await callHttp(face.url, 'DELETE', `/api/now/table/incident/${sysId}`, {
      auth: `Basic ${btoa('ann:pw')}`,
    });
    const pushed = await c.call('POST', '/servicenow/push', {
      auth: `Bearer ${PUSH_SECRET}`,
      body: { table: 'incident', sys_id: sysId },
    });
    expect(pushed.json.events).toBe(1);
    expect(c.logs.join('\n')).toMatch(`incident ${sysId} is gone (deleted before it was read)`);
    const events = await c.call('GET', '/v1/accounts/1/events?cursor=0');
    expect(events.json.objects.at(-1)).toMatchObject({
      type: 'delete',
      metadata: { id: `incident.${sysId}` },
    });
  });
});

describe('the Table API client', () => {
  it('never shows the password in its errors', async () => {
    const client = createServiceNowClient({
      instanceUrl: face.url,
      auth: { kind: 'basic', username: 'integration', password: 'wrong-password-xyz' },
      maxAttempts: 1,
    });
    const error = await client.list('incident').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceNowError);
    expect((error as ServiceNowError).code).toBe('SN_UNAUTHENTICATED');
    expect((error as Error).message).toMatch(/check the ServiceNow user name and password/);
    expect(JSON.stringify({ m: (error as Error).message, s: (error as Error).stack })).not.toMatch(
      'wrong-password-xyz',
    );
  });

  it('refuses an instance URL over plain http beyond loopback', () => {
    expect(() =>
      createServiceNowClient({
        instanceUrl: 'http://dev12345.service-now.com',
        auth: { kind: 'basic', username: 'u', password: 'p' },
      }),
    ).toThrow(/must use https/);
  });

  it('returns null for a record the instance does not have, and false for a second delete', async () => {
    const client = createServiceNowClient({
      instanceUrl: face.url,
      auth: { kind: 'basic', username: 'integration', password: 's3cret' },
    });
    expect(await client.get('incident', '0'.repeat(32))).toBeNull();
    const made = await client.create('incident', { short_description: 'x' });
    expect(await client.delete('incident', made.sys_id ?? '')).toBe(true);
    expect(await client.delete('incident', made.sys_id ?? '')).toBe(false);
  });
});
