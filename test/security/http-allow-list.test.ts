// Security: the `http` action calls only hosts on the allow-list (--http-allow). A wildcard
// (`*.example.com`) matches host names only, never an IP address in any spelling the URL parser
// accepts (`127.1`, `2130706433`, `0x7f.0.0.1`, `[::1]`, `0.0.0.0`) nor `localhost`: a private,
// loopback or link-local address is called only when the list names it exactly. Redirects are
// never followed, so an allowed host cannot send the engine on to another one. Tests bind
// 127.0.0.1 and allow it explicitly, as the other tests do.
// Not covered here, and not coverable in runtime-neutral code: a host NAME on the list whose DNS
// answer is a private address (DNS rebinding); see docs/reliability.md.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { executePlan, isAllowedHost } from '../../src/engine/execute.js';
import { loadRules } from '../../src/engine/load.js';
import type { Plan } from '../../src/engine/plan.js';
import { type EngineHarness, startEngineHarness } from '../helpers/engine.js';

describe('isAllowedHost', () => {
  it.each([
    // Wildcards never reach an address, however it is spelled.
    ['http://127.0.0.1/', ['*.1']],
    ['http://127.0.0.1/', ['*.0.0.1']],
    ['http://127.1/', ['*.1']],
    ['http://2130706433/', ['*.1']],
    ['http://0x7f.0.0.1/', ['*.0.1']],
    ['http://0177.0.0.1/', ['*.1']],
    ['http://0.0.0.0/', ['*.0']],
    ['http://10.0.0.1:8080/', ['*.1:8080']],
    ['http://169.254.169.254/latest/meta-data/', ['*.254']],
    ['http://192.168.1.1/', ['*.168.1.1']],
    ['http://[::1]/', ['*.example.com', 'hooks.example.com']],
    ['http://[::ffff:127.0.0.1]/', ['*.example.com']],
    ['http://[fe80::1]/', ['*.example.com']],
    // localhost and the names under it resolve to the loopback address.
    ['http://localhost/', ['*.example.com']],
    ['http://a.localhost/', ['*.localhost']],
    ['http://localhost./', ['*.localhost']],
    // Spellings that only look like an allowed host.
    ['https://hooks.example.com@evil.net/', ['hooks.example.com']],
    ['https://evil.net#@hooks.example.com/', ['hooks.example.com']],
    ['https://evil.net/?hooks.example.com', ['hooks.example.com']],
    ['https://hooks.example.com.evil.net/', ['hooks.example.com', '*.example.com']],
    ['https://hooks.example.com./', ['hooks.example.com']],
    ['http://127.0.0.1:9000/', []],
  ])('refuses %s with the allow-list %j', (url, allow) => {
    expect(isAllowedHost(new URL(url), allow)).toBe(false);
  });

  it.each([
    ['http://127.0.0.1:9000/', ['127.0.0.1:9000']],
    // The same address in another spelling is the address the list names.
    ['http://2130706433:9000/', ['127.0.0.1:9000']],
    ['http://127.1:9000/', ['127.0.0.1:9000']],
    ['http://[::1]:9000/', ['[::1]:9000']],
    ['http://localhost:9000/', ['localhost:9000']],
    ['https://a.hooks.example.com/', ['*.example.com']],
  ])('allows %s with the allow-list %j', (url, allow) => {
    expect(isAllowedHost(new URL(url), allow)).toBe(true);
  });
});

describe('the http executor', () => {
  let harness: EngineHarness | undefined;
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await harness?.close();
    harness = undefined;
  });

  /** A server outside the project on 127.0.0.1 that records requests and answers as told. */
  async function outside(answer: (res: import('node:http').ServerResponse) => void) {
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => answer(res));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, requests };
  }

  function httpPlan(url: string): Plan {
    return {
      key: `e:1:${url}`,
      account: 1,
      event: { id: 'e1', type: 'update', account: 1, at: '2026-01-01T00:00:00Z', user_id: null },
      object: null,
      selfHops: 0,
      rules: ['hook'],
      calls: [
        {
          kind: 'http',
          index: 0,
          ruleId: 'hook',
          action: 0,
          method: 'POST',
          url,
          headers: {},
          body: { hello: 'world' },
          idempotencyKey: 'hook:0',
          summary: `POST ${url}`,
        },
      ],
      notes: [],
    } as unknown as Plan;
  }

  it('does not follow a redirect from an allowed host to another host', async () => {
    harness = await startEngineHarness();
    const elsewhere = await outside((res) => res.writeHead(200).end('ok'));
    const allowed = await outside((res) =>
      res.writeHead(307, { Location: `http://127.0.0.1:${elsewhere.port}/stolen` }).end(),
    );
    const result = await executePlan(httpPlan(`http://127.0.0.1:${allowed.port}/hook`), {
      client: harness.client,
      store: harness.store,
      http: { allowHosts: [`127.0.0.1:${allowed.port}`], maxAttempts: 1 },
    });
    expect(allowed.requests).toEqual(['POST /hook']);
    expect(elsewhere.requests).toEqual([]);
    expect(result.results[0]?.outcome).toBe('failed');
    expect(result.results[0]?.detail).toContain('redirects are not followed');
  });

  it('does not call a loopback address that a wildcard would match', async () => {
    harness = await startEngineHarness();
    const target = await outside((res) => res.writeHead(200).end('ok'));
    const result = await executePlan(httpPlan(`http://127.1:${target.port}/hook`), {
      client: harness.client,
      store: harness.store,
      http: { allowHosts: [`*.1:${target.port}`], maxAttempts: 1 },
    });
    expect(target.requests).toEqual([]);
    expect(result.results[0]?.outcome).toBe('failed');
    expect(result.results[0]?.detail).toContain('not on the allow-list');
  });
});

describe('rule files', () => {
  it('refuses an http URL that carries a password, without repeating it in the problem', () => {
    const result = loadRules([
      {
        path: 'rules/incident/hook.yaml',
        text: 'on: {type: incident}\nthen:\n  - http: {url: "https://user:hunter2@hooks.example.com/x"}\n',
      },
    ]);
    expect(result.ruleSet).toBeNull();
    expect(result.problems.map((p) => [p.pointer, p.code])).toEqual([
      ['/then/0/http/url', 'RULE_INVALID_VALUE'],
    ]);
    expect(JSON.stringify(result.problems)).not.toContain('hunter2');
  });
});
