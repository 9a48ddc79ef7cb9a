// Security: no input reaches or replaces a prototype. Rule expressions (`var` paths through
// `__proto__`, `constructor`, `prototype`), rule files (`__proto__` keys, YAML merge keys, http
// bodies and headers), API bodies (object create and update, `raw.object`, generic objects) and
// webhook bodies: Object.prototype is untouched after each, and what is stored or sent carries
// such a key, if at all, as plain data, never as an inherited effect.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createContext } from '../../src/engine/context.js';
import { compileExpression } from '../../src/engine/expression.js';
import { loadRules } from '../../src/engine/load.js';
import { planRule } from '../../src/engine/plan.js';
import { watchPrototypes } from '../fuzz/random.js';
import { startTestEngine, TEST_API_KEY, type TestEngine } from '../helpers/serve.js';

// Every test runs watched: what it changes on a built-in prototype fails it.
let prototypesChanged: () => string[];
beforeEach(() => {
  prototypesChanged = watchPrototypes();
});
afterEach(() => {
  expect(prototypesChanged()).toEqual([]);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

function contextWith(object: Record<string, unknown>) {
  return createContext({
    event: {
      id: 'e1',
      type: 'update',
      account: 1,
      at: '2026-01-01T00:00:00Z',
      user_id: null,
    },
    object,
    previous: null,
    now: new Date('2026-01-02T00:00:00Z'),
  });
}

describe('rule expressions', () => {
  // JSON.parse makes "__proto__" an own key, as the API's objects arrive.
  const object = JSON.parse(
    '{"id": "F1", "priority": "low", "__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}}',
  ) as Record<string, unknown>;

  it.each([
    'object.__proto__.polluted',
    'object.__proto__',
    'object.constructor.prototype.polluted',
    'object.constructor',
    '__proto__',
    'constructor.prototype',
    'object.priority.constructor',
  ])('var %s reads null, not the own key nor the prototype chain', (path) => {
    const context = contextWith(object);
    expect(compileExpression({ var: path })(context)).toBeNull();
    expect(compileExpression({ var: [path, 'fallback'] })(context)).toBeNull();
  });

  it('reads an inherited name such as object.toString as not found, never the function', () => {
    const context = contextWith(object);
    expect(compileExpression({ var: 'object.toString' })(context)).toBeNull();
    expect(compileExpression({ var: ['object.toString', 'fallback'] })(context)).toBe('fallback');
  });

  it('still reads ordinary paths of the same object', () => {
    const context = contextWith(object);
    expect(compileExpression({ var: 'object.priority' })(context)).toBe('low');
  });
});

describe('rule files', () => {
  it.each([
    [
      'a top-level __proto__ key (YAML)',
      'rules/incident/p.yaml',
      'on: {type: incident}\n__proto__: {enabled: false}\nthen: [{log: {message: x}}]\n',
    ],
    [
      'a top-level __proto__ key (JSON)',
      'rules/incident/p.json',
      '{"on": {"type": "incident"}, "__proto__": {"enabled": false}, "then": [{"log": {"message": "x"}}]}',
    ],
    [
      'a YAML merge key',
      'rules/incident/p.yaml',
      'base: &base {enabled: false}\non: {type: incident}\n<<: *base\nthen: [{log: {message: x}}]\n',
    ],
    [
      'a __proto__ key in a trigger',
      'rules/incident/p.yaml',
      'on: {type: incident, __proto__: {self: true}}\nthen: [{log: {message: x}}]\n',
    ],
  ])('refuses %s as an unknown key', (_name, path, text) => {
    const result = loadRules([{ path, text }]);
    expect(result.ruleSet).toBeNull();
    expect(result.problems.map((p) => p.code)).toContain('RULE_UNKNOWN_KEY');
  });

  it('refuses an http header named __proto__ instead of dropping it', () => {
    const result = loadRules([
      {
        path: 'rules/incident/hook.yaml',
        text: `on: {type: incident}
then:
  - http:
      url: https://hooks.example.com/x
      headers: {__proto__: "x", X-Token: {var: object.id}}
`,
      },
    ]);
    expect(result.ruleSet).toBeNull();
    expect(result.problems).toEqual([
      expect.objectContaining({
        pointer: '/then/0/http/headers/__proto__',
        code: 'RULE_INVALID_VALUE',
        message: '"__proto__" cannot be sent as a header name',
      }),
    ]);
  });

  it('sends a __proto__ key of an http body as data, and leaves the body a plain object', () => {
    const result = loadRules([
      {
        path: 'rules/incident/hook.yaml',
        text: `on: {type: incident}
then:
  - http:
      url: https://hooks.example.com/x
      headers: {X-Token: {var: object.id}}
      body:
        __proto__: {admin: true}
        id: {var: object.id}
`,
      },
    ]);
    expect(result.problems).toEqual([]);
    const rule = result.ruleSet?.rules[0];
    if (!rule) throw new Error('the rule did not load');
    const context = contextWith({ id: 'F1' });
    const plan = {
      key: 'k',
      account: 1,
      event: context.event,
      object: null,
      selfHops: 0,
      rules: [],
      calls: [],
      notes: [],
    };
    planRule({ rule, context, plan: plan as never, objectType: 'incident', correlated: [] });
    const call = plan.calls[0] as unknown as {
      body: Record<string, unknown>;
      headers: Record<string, string>;
    };
    expect(Object.getPrototypeOf(call.body)).toBe(Object.prototype);
    expect((call.body as { admin?: unknown }).admin).toBeUndefined();
    expect(JSON.stringify(call.body)).toBe('{"__proto__":{"admin":true},"id":"F1"}');
    expect(Object.getPrototypeOf(call.headers)).toBe(Object.prototype);
    expect(call.headers['X-Token']).toBe('F1');
  });
});

describe('API bodies and webhook bodies', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine();
  });
  afterAll(async () => {
    await engine?.close();
  });

  const hostile =
    '"__proto__": {"priority": "critical", "polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}';

  it('an incident created with __proto__ and constructor keys is refused or stored without them', async () => {
    const created = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: `{"description": "x", ${hostile}}`,
    });
    expect(prototypesChanged()).toEqual([]);
    if (created.status === 400) return;
    expect(created.status).toBe(201);
    const id = (created.json as { id: string }).id;
    const read = await engine.call('GET', `/v1/accounts/1/itsm/incidents/${id}`, {
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });
    const object = read.json as Record<string, unknown>;
    expect(object.priority).not.toBe('critical');
    expect(read.text).not.toContain('polluted');
  });

  it('an update with __proto__ and constructor keys is refused or changes nothing through them', async () => {
    const created = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: { description: 'y', priority: 'low' },
    });
    const id = (created.json as { id: string }).id;
    const updated = await engine.call('PATCH', `/v1/accounts/1/itsm/incidents/${id}`, {
      body: `{"description": "z", ${hostile}}`,
    });
    expect(prototypesChanged()).toEqual([]);
    expect([200, 400]).toContain(updated.status);
    const read = await engine.call('GET', `/v1/accounts/1/itsm/incidents/${id}`);
    expect((read.json as Record<string, unknown>).priority).toBe('low');
    expect(read.text).not.toContain('polluted');
  });

  it('raw.object with a __proto__ key is refused rather than silently dropped', async () => {
    const created = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: `{"description": "x", "raw": {"object": {"u_note": "n", ${hostile}}}}`,
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });
    expect(prototypesChanged()).toEqual([]);
    expect(created.status).toBe(400);
    expect((created.json as { message: string }).message).toContain('__proto__');
  });

  it('raw.object with a constructor key stores it as plain data', async () => {
    const created = await engine.call('POST', '/v1/accounts/1/itsm/incidents', {
      body: '{"description": "x", "raw": {"object": {"u_note": "n", "constructor": {"prototype": {"polluted": "yes"}}}}}',
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });
    expect(created.status).toBe(201);
    const raw = (created.json as { raw: Record<string, unknown> }).raw;
    expect(Object.getPrototypeOf(raw)).toBe(Object.prototype);
    expect(raw.u_note).toBe('n');
    expect(typeof raw.constructor).toBe('string');
  });

  it('a generic object with a __proto__ key is refused', async () => {
    const created = await engine.call('POST', '/v1/accounts/1/itsm/objects?raw_type=u_thing', {
      body: `{"name": "x", ${hostile}}`,
    });
    expect(created.status).toBe(400);
  });

  it('a webhook body whose account sits behind __proto__ is refused, not a notification', async () => {
    const answer = await engine.notify('{"__proto__": {"account": 1}}');
    // A 400 naming the key it has, not {"accepted": true}: nothing was enqueued.
    expect(answer.status).toBe(400);
    expect(answer.json.message).toContain('the body has no "account" (it has "__proto__")');
  });

  it('an admin body with __proto__ keys is refused as unknown fields', async () => {
    const answer = await engine.call('POST', '/admin/schedules/run', {
      body: '{"__proto__": {"rules": ["x"]}}',
      auth: `APIKey ${TEST_API_KEY}`,
    });
    expect(answer.status).toBe(400);
  });
});
