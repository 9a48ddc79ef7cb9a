// The OpenAPI documents served at /openapi.json, fetched over real HTTP from the servers users run
// (`itsm-rules itsm-server`, `itsm-rules serve` all-in-one and with --api-url): their (method,
// path) pairs must equal the routes the real Hono apps register, in both directions, so a route
// added without its documentation (or documentation of a route that does not exist) fails here.
// The documents must also be valid: every path parameter declared, every $ref resolvable, and
// the schemas true of real answers (checked with zod's own JSON Schema reader).
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isConsolePath } from '../../src/console/console.js';
import { COLLECTION_PATHS } from '../../src/itsm/fields.js';
import { isTableApiPath } from '../../src/server/table-api.js';
import { callHttp, startTestItsm, type TestItsm } from '../helpers/itsm.js';
import { EXAMPLE_RULES_DIR } from '../helpers/rules.js';
import {
  type CliProcess,
  spawnItsmServer,
  spawnServe,
  startTestEngine,
  TEST_API_KEY,
  type TestEngine,
} from '../helpers/serve.js';

const TIMEOUT = 30_000;
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

// biome-ignore lint/suspicious/noExplicitAny: OpenAPI documents are walked as plain JSON.
type Doc = any;

/** `/v1/accounts/:account/itsm/:id{[0-9]+}` as `/v1/accounts/{}/itsm/{}`. */
const normalise = (path: string) =>
  path.replace(/:[A-Za-z_]+(\{[^}]*\})?/g, '{}').replace(/\{[A-Za-z_]+\}/g, '{}');

/**
 * The routes this document describes: every one but the ServiceNow Table API face
 * (`/api/now/...`, `/oauth_token.do`), which speaks ServiceNow's own API, documented by
 * ServiceNow and in docs/servicenow.md, and the operator console's HTML pages (docs/console.md).
 */
const kloudlessRoute = (path: string) => !isTableApiPath(path) && !isConsolePath(path);

/** "GET /path" for every route an app registers; the generic collection route per collection. */
function routesOf(app: Hono, include: (path: string) => boolean = kloudlessRoute): string[] {
  const out = new Set<string>();
  for (const route of app.routes) {
    if (!METHODS.has(route.method) || !include(route.path)) continue;
    const paths = route.path.includes(':collection')
      ? Object.values(COLLECTION_PATHS).map((p) => route.path.replace(':collection', p.plural))
      : [route.path];
    for (const path of paths) out.add(`${route.method} ${normalise(path)}`);
  }
  return [...out].sort();
}

function operationsOf(doc: Doc): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) {
    for (const method of Object.keys(item)) out.push(`${method.toUpperCase()} ${normalise(path)}`);
  }
  return out.sort();
}

async function fetchDocument(base: string): Promise<Doc> {
  const answer = await callHttp(base, 'GET', '/openapi.json', { auth: null });
  expect(answer.status).toBe(200);
  expect(answer.headers.get('Content-Type')).toMatch(/^application\/json/);
  return answer.json;
}

/** The document with every `#/components/schemas/X` reference replaced by X (none is recursive). */
function resolve(doc: Doc, node: unknown = doc, depth = 0): unknown {
  if (depth > 50) throw new Error('a $ref cycle in the document');
  if (Array.isArray(node)) return node.map((item) => resolve(doc, item, depth + 1));
  if (node === null || typeof node !== 'object') return node;
  const ref = (node as { $ref?: unknown }).$ref;
  if (typeof ref === 'string') {
    const name = ref.replace('#/components/schemas/', '');
    const target = doc.components.schemas[name];
    if (!ref.startsWith('#/components/schemas/') || !target) throw new Error(`unresolved ${ref}`);
    return resolve(doc, target, depth + 1);
  }
  return Object.fromEntries(
    Object.entries(node).map(([key, value]) => [key, resolve(doc, value, depth + 1)]),
  );
}

/** Every problem of the document that makes it invalid; [] when it is sound. */
function problemsOf(doc: Doc): string[] {
  const problems: string[] = [];
  if (doc.openapi !== '3.1.0') problems.push(`openapi is ${doc.openapi}`);
  if (!doc.info?.title || !doc.info?.version) problems.push('info lacks title or version');
  try {
    resolve(doc);
  } catch (error) {
    problems.push((error as Error).message);
  }
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, Doc>)) {
    const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    for (const [method, operation] of Object.entries(item as Record<string, Doc>)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!METHODS.has(method.toUpperCase())) problems.push(`${where}: not an HTTP method`);
      if (operationIds.has(operation.operationId)) problems.push(`${where}: duplicate operationId`);
      operationIds.add(operation.operationId);
      const params = (operation.parameters ?? []) as Doc[];
      const declared = params.filter((p) => p.in === 'path');
      if (JSON.stringify(declared.map((p) => p.name).sort()) !== JSON.stringify(inPath)) {
        problems.push(`${where}: path parameters ${JSON.stringify(declared.map((p) => p.name))}`);
      }
      if (declared.some((p) => p.required !== true)) problems.push(`${where}: optional path param`);
      for (const param of params) {
        if (!['path', 'query', 'header'].includes(param.in) || !param.schema) {
          problems.push(`${where}: parameter ${param.name} lacks in or schema`);
        }
      }
      const responses = Object.entries((operation.responses ?? {}) as Record<string, Doc>);
      if (!responses.some(([status]) => /^2\d\d$/.test(status))) {
        problems.push(`${where}: no success response`);
      }
      for (const [status, response] of responses) {
        if (!/^[1-5]\d\d$/.test(status) || typeof response.description !== 'string') {
          problems.push(`${where} ${status}: a response needs a status and a description`);
        }
        const schema = response.content?.['application/json']?.schema;
        if (schema) {
          try {
            z.fromJSONSchema(resolve(doc, schema) as never);
          } catch (error) {
            problems.push(`${where} ${status}: schema unreadable: ${(error as Error).message}`);
          }
        }
      }
    }
  }
  return problems;
}

/** Parses `value` with the JSON schema the document gives for that answer. */
function conforms(doc: Doc, path: string, method: string, status: number, value: unknown) {
  const schema = doc.paths[path][method].responses[status].content['application/json'].schema;
  const result = z.fromJSONSchema(resolve(doc, schema) as never).safeParse(value);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const running: CliProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((cli) => cli.stop('SIGTERM')));
});

describe('GET /openapi.json of itsm-rules itsm-server', () => {
  let api: TestItsm;
  let served: Doc;
  beforeAll(async () => {
    const cli = await spawnItsmServer(['--port', '0', '--db', ':memory:']);
    running.push(cli);
    served = await fetchDocument(cli.url);
    api = await startTestItsm();
  }, TIMEOUT);
  afterAll(() => api?.close());

  it('documents exactly the routes the embedded API registers', () => {
    expect(operationsOf(served)).toEqual(routesOf(api.itsm.app as unknown as Hono));
  });

  it('is a valid OpenAPI 3.1 document', () => {
    expect(problemsOf(served)).toEqual([]);
  });

  it('describes real answers: an incident, a page of incidents, an event page, an error', async () => {
    const created = await api.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { description: 'VPN down', impact: 'high', urgency: 'high', priority: 'medium' },
    });
    expect(created.status).toBe(201);
    const incidents = '/v1/accounts/{account}/itsm/incidents';
    expect(conforms(served, incidents, 'post', 201, created.json)).toEqual([]);
    const list = await api.call('GET', '/v1/accounts/1/itsm/incidents');
    expect(conforms(served, incidents, 'get', 200, list.json)).toEqual([]);
    const events = await api.call('GET', '/v1/accounts/1/events');
    expect(conforms(served, '/v1/accounts/{account}/events', 'get', 200, events.json)).toEqual([]);
    const refused = await api.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { impact: 'urgent' },
    });
    expect(refused.status).toBe(400);
    expect(conforms(served, incidents, 'post', 400, refused.json)).toEqual([]);
    // The check can fail: an incident is not a page of incidents.
    expect(conforms(served, incidents, 'get', 200, created.json)).not.toEqual([]);
  });

  it('documents GET /_faults when fault injection is on, as the app then registers it', async () => {
    const faulty = await startTestItsm({ faults: {} });
    try {
      const doc = await fetchDocument(faulty.url);
      expect(operationsOf(doc)).toContain('GET /_faults');
      expect(operationsOf(doc)).toEqual(routesOf(faulty.itsm.app as unknown as Hono));
    } finally {
      await faulty.close();
    }
  });
});

describe('GET /openapi.json of itsm-rules serve', () => {
  let engine: TestEngine;
  let served: Doc;
  beforeAll(async () => {
    const cli = await spawnServe([
      ...['--port', '0', '--db', ':memory:', '--no-schedules'],
      ...['--rules', EXAMPLE_RULES_DIR],
    ]);
    running.push(cli);
    served = await fetchDocument(cli.url);
    engine = await startTestEngine();
  }, TIMEOUT);
  afterAll(() => engine?.close());

  it("all-in-one: documents exactly the engine's routes and the embedded API's /v1 routes", () => {
    const itsm = engine.itsm?.app as unknown as Hono;
    const embedded = routesOf(itsm, (path) => path.startsWith('/v1'));
    expect(embedded.length).toBeGreaterThan(0);
    expect(operationsOf(served)).toEqual([...routesOf(engine.app), ...embedded].sort());
  });

  it('is a valid OpenAPI 3.1 document', () => {
    expect(problemsOf(served)).toEqual([]);
  });

  it('describes real answers: health, a page of runs, a run, an error', async () => {
    const health = await engine.call('GET', '/healthz', { auth: null });
    expect(conforms(served, '/healthz', 'get', 200, health.json)).toEqual([]);
    await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { impact: 'high', urgency: 'high', priority: 'low' },
    });
    await engine.notify(JSON.stringify({ account: 1, subscription: 1 }));
    await engine.idle();
    const runs = await engine.call('GET', '/runs');
    expect(runs.json.objects.length).toBeGreaterThan(0);
    expect(conforms(served, '/runs', 'get', 200, runs.json)).toEqual([]);
    const one = await engine.call('GET', `/runs/${runs.json.objects[0].id}`);
    expect(conforms(served, '/runs/{id}', 'get', 200, one.json)).toEqual([]);
    const refused = await engine.call('GET', '/runs?outcome=maybe');
    expect(refused.status).toBe(400);
    expect(conforms(served, '/runs', 'get', 400, refused.json)).toEqual([]);
  });

  it("with --api-url: documents exactly the engine's own routes", async () => {
    const api = await startTestItsm();
    const remote = await startTestEngine({ apiUrl: `${api.url}/v1` });
    try {
      const doc = await fetchDocument(remote.url);
      expect(operationsOf(doc)).toEqual(routesOf(remote.app));
      expect(operationsOf(doc).some((operation) => operation.includes(' /v1/'))).toBe(false);
      expect(problemsOf(doc)).toEqual([]);
    } finally {
      await remote.close();
      await api.close();
    }
  });

  it('needs no credentials, while the admin routes beside it do', async () => {
    expect((await engine.call('GET', '/openapi.json', { auth: null })).status).toBe(200);
    expect((await engine.call('GET', '/runs', { auth: null })).status).toBe(401);
    expect((await engine.call('GET', '/runs', { auth: `APIKey ${TEST_API_KEY}` })).status).toBe(
      200,
    );
  });
});
