// The webhook receiver: every failure mode through `app.request()` (signature, handshake, body
// forms, size limits, methods, an unavailable queue), then end to end over real HTTP against the
// embedded ITSM API, whose own handshake and signed notifications must pass. Signatures are
// computed here with node:crypto, independently of src/itsm/signature.ts.
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestItsm, TEST_API_KEY, TEST_APP_ID } from '../../test/helpers/itsm.js';
import { ACCOUNT_ID_RULE } from '../itsm/account-id.js';
import { closeServer, listen, verifySignatureNode } from '../runtime/node.js';
import { createEngineMetrics } from './metrics.js';
import {
  createReceiver,
  DEFAULT_RECEIVER_MAX_BODY,
  type Notification,
  parseNotification,
  type ReceiverOptions,
  registerReceiver,
} from './receiver.js';

const KEY = 'engine-current-key';
const OLD_KEY = 'engine-previous-key';
const APP_ID = 'app-under-test';
const PATH = '/webhooks/kloudless';
const URL_ = `http://engine.test${PATH}`;

const sign = (body: string | Uint8Array, key = KEY) =>
  createHmac('sha256', key).update(body).digest('base64');

function setup(overrides: Partial<ReceiverOptions> = {}) {
  const enqueued: Notification[] = [];
  const logs: string[] = [];
  const metrics = createEngineMetrics();
  const app = new Hono();
  registerReceiver(
    app,
    createReceiver({
      keys: () => [KEY, OLD_KEY],
      appId: APP_ID,
      enqueue: (notification) => {
        enqueued.push(notification);
      },
      metrics,
      log: (line) => logs.push(line),
      ...overrides,
    }),
  );
  return { app, enqueued, logs, metrics };
}

interface Send {
  body: string | Uint8Array;
  contentType?: string | null;
  /** The signature header; default: signed with KEY over `body`. null sends none. */
  signature?: string | null;
  headers?: Record<string, string>;
}

function send(app: Hono, { body, contentType = 'application/json', signature, headers }: Send) {
  const all: Record<string, string> = { ...headers };
  if (contentType !== null) all['Content-Type'] = contentType;
  const signed = signature === undefined ? sign(body) : signature;
  if (signed !== null) all['X-Kloudless-Signature'] = signed;
  return app.request(URL_, { method: 'POST', body, headers: all });
}

const rejectedCounts = (metrics: ReturnType<typeof createEngineMetrics>) =>
  Object.fromEntries(
    ['signature', 'body', 'too_large', 'unavailable'].map((reason) => [
      reason,
      metrics.webhooksRejected.value({ reason }),
    ]),
  );

describe('accepting notifications', () => {
  it.each<[string, Send, Notification]>([
    [
      'a JSON body {account, subscription}',
      { body: '{"account":5,"subscription":2}' },
      { account: 5, subscription: 2 },
    ],
    [
      'a JSON body with the account and subscription as strings of digits',
      { body: '{"account":"42","subscription":"7"}' },
      { account: 42, subscription: 7 },
    ],
    [
      'a JSON body without a subscription',
      { body: '{"account":9}' },
      { account: 9, subscription: null },
    ],
    [
      'a JSON body with a null subscription',
      { body: '{"account":9,"subscription":null}' },
      { account: 9, subscription: null },
    ],
    [
      'a JSON body with fields it does not know',
      { body: '{"account":3,"subscription":1,"hint":"x"}' },
      { account: 3, subscription: 1 },
    ],
    [
      'JSON labelled application/json with a charset',
      { body: '{"account":11}', contentType: 'application/json; charset=utf-8' },
      { account: 11, subscription: null },
    ],
    [
      'JSON labelled text/plain',
      { body: '{"account":12,"subscription":4}', contentType: 'text/plain' },
      { account: 12, subscription: 4 },
    ],
    [
      'JSON with no Content-Type',
      { body: '{"account":13}', contentType: null },
      { account: 13, subscription: null },
    ],
    [
      'the legacy form body account=<id>',
      { body: 'account=21', contentType: 'application/x-www-form-urlencoded' },
      { account: 21, subscription: null },
    ],
    [
      'a form body with a subscription, labelled in capitals with a charset',
      {
        body: 'account=22&subscription=6',
        contentType: 'Application/X-WWW-Form-Urlencoded; charset=UTF-8',
      },
      { account: 22, subscription: 6 },
    ],
    [
      'a body signed with an older key during a rotation',
      {
        body: '{"account":31,"subscription":1}',
        signature: sign('{"account":31,"subscription":1}', OLD_KEY),
      },
      { account: 31, subscription: 1 },
    ],
  ])('enqueues and acknowledges %s', async (_name, request, expected) => {
    const { app, enqueued, metrics } = setup();

    const response = await send(app, request);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ accepted: true, account: expected.account });
    expect(enqueued).toEqual([expected]);
    expect(metrics.webhooksAccepted.value()).toBe(1);
    expect(rejectedCounts(metrics)).toEqual({
      signature: 0,
      body: 0,
      too_large: 0,
      unavailable: 0,
    });
  });

  it('waits for an asynchronous enqueue before acknowledging', async () => {
    const order: string[] = [];
    const { app } = setup({
      enqueue: async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        order.push('enqueued');
      },
    });

    const response = await send(app, { body: '{"account":1}' });
    order.push('answered');

    expect(response.status).toBe(200);
    expect(order).toEqual(['enqueued', 'answered']);
  });

  it('answers at once when the signature check and the queue answer at once, and later when either waits', async () => {
    const body = new TextEncoder().encode('{"account":5}');
    const base = { keys: () => [KEY], appId: APP_ID, enqueue: () => {} };
    const judge = (options: ReceiverOptions) =>
      createReceiver(options).receive(body, sign(body), 'application/json');
    const accepted = {
      status: 200,
      headers: { 'Content-Type': 'application/json' },
      body: '{"accepted":true,"account":5}',
    };

    const atOnce = judge({ ...base, verify: verifySignatureNode });
    expect(atOnce).not.toBeInstanceOf(Promise);
    expect(atOnce).toEqual(accepted);
    // WebCrypto (the default check) answers later, as does a queue that has to wait.
    const webCrypto = judge(base);
    expect(webCrypto).toBeInstanceOf(Promise);
    expect(await webCrypto).toEqual(accepted);
    const slowQueue = judge({
      ...base,
      verify: verifySignatureNode,
      enqueue: () => new Promise((resolve) => setTimeout(resolve, 5)),
    });
    expect(slowQueue).toBeInstanceOf(Promise);
    expect(await slowQueue).toEqual(accepted);
  });

  it('reads the keys on every request, so a reload changes them without a new route', async () => {
    let keys = ['first-key'];
    const { app, enqueued } = setup({ keys: () => keys });
    const body = '{"account":1}';

    const before = await send(app, { body, signature: sign(body, 'second-key') });
    keys = ['second-key', 'first-key'];
    const after = await send(app, { body, signature: sign(body, 'second-key') });

    expect([before.status, after.status]).toEqual([401, 200]);
    expect(enqueued).toEqual([{ account: 1, subscription: null }]);
  });

  it('also answers on the path with a trailing slash when the app is not strict', async () => {
    const enqueued: Notification[] = [];
    const app = new Hono({ strict: false });
    registerReceiver(
      app,
      createReceiver({
        keys: () => [KEY],
        appId: APP_ID,
        enqueue: (n) => void enqueued.push(n),
      }),
    );
    const body = '{"account":8}';

    const response = await app.request(`${URL_}/`, {
      method: 'POST',
      body,
      headers: { 'Content-Type': 'application/json', 'X-Kloudless-Signature': sign(body) },
    });

    expect(response.status).toBe(200);
    expect(enqueued).toEqual([{ account: 8, subscription: null }]);
  });
});

describe('the registration handshake', () => {
  it.each<[string, Send]>([
    ['an empty body with no Content-Type', { body: '', contentType: null }],
    ['an empty body labelled text/plain', { body: '', contentType: 'text/plain;charset=UTF-8' }],
    ['a blank body', { body: ' \r\n ' }],
    ['an empty JSON object', { body: '{}' }],
    ['a handshake signed with an older key', { body: '', signature: sign('', OLD_KEY) }],
  ])('answers %s with 200 and the application id, enqueuing nothing', async (_name, request) => {
    const { app, enqueued, metrics } = setup();

    const response = await send(app, request);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await response.text()).toBe(APP_ID);
    expect(enqueued).toEqual([]);
    expect(metrics.webhooksAccepted.value()).toBe(0);
  });
});

const otherKeySignature = sign('{"account":5}', 'somebody-elses-key');

describe('refusing unsigned requests', () => {
  it.each<[string, Send, string]>([
    ['a notification with no signature', { body: '{"account":5}', signature: null }, 'is missing'],
    [
      'a notification with an empty signature',
      { body: '{"account":5}', signature: '' },
      'is missing',
    ],
    [
      'a signature that is not Base64',
      { body: '{"account":5}', signature: 'not a signature!' },
      'does not match the body',
    ],
    [
      'a signature made with a key the engine does not hold',
      { body: '{"account":5}', signature: otherKeySignature },
      'does not match the body',
    ],
    [
      'a signature over the same object serialised differently',
      { body: '{"account":5}', signature: sign('{ "account": 5 }') },
      'does not match the body',
    ],
    [
      'a signature of another body',
      { body: '{"account":6}', signature: sign('{"account":5}') },
      'does not match the body',
    ],
    [
      'a hex signature instead of Base64',
      {
        body: '{"account":5}',
        signature: createHmac('sha256', KEY).update('{"account":5}').digest('hex'),
      },
      'does not match the body',
    ],
    [
      'an unsigned malformed JSON body (401 comes before any parsing)',
      { body: '{"account":', signature: null },
      'is missing',
    ],
    [
      'a malformed JSON body with a wrong signature',
      { body: '{"account":', signature: otherKeySignature },
      'does not match the body',
    ],
    ['an unsigned handshake', { body: '', signature: null }, 'is missing'],
  ])('answers 401 to %s and enqueues nothing', async (_name, request, problem) => {
    const { app, enqueued, logs, metrics } = setup();

    const response = await send(app, request);

    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      error_code: 'unauthorized',
      message: `X-Kloudless-Signature ${problem}: it must be the Base64 HMAC-SHA256 of the exact body, keyed with the API key`,
      status_code: 401,
    });
    expect(enqueued).toEqual([]);
    expect(rejectedCounts(metrics)).toEqual({
      signature: 1,
      body: 0,
      too_large: 0,
      unavailable: 0,
    });
    expect(logs).toEqual([
      `webhook: refused a notification whose X-Kloudless-Signature ${problem}`,
    ]);
  });

  it('refuses every signature when no key is configured', async () => {
    const { app, enqueued } = setup({ keys: () => [] });

    const response = await send(app, { body: '{"account":5}' });

    expect(response.status).toBe(401);
    expect(enqueued).toEqual([]);
  });

  it('never writes a key or a signature to the log', async () => {
    const { app, logs } = setup();
    const body = '{"account":5}';
    const wrong = sign(body, 'wrong-key');

    await send(app, { body, signature: wrong });
    await send(app, { body: '[1]' });
    await send(app, { body });

    expect(logs).toHaveLength(2);
    for (const secret of [KEY, OLD_KEY, wrong, sign(body), sign('[1]')]) {
      for (const line of logs) expect(line).not.toContain(secret);
    }
  });
});

const FORM = 'application/x-www-form-urlencoded';
const positive = (field: string, got: string) =>
  `${field} must be ${ACCOUNT_ID_RULE}, got ${got} (a JSON number or a string of digits)`;

describe('refusing signed bodies without a usable account', () => {
  it.each<[string, string, string | null, string | RegExp]>([
    [
      'malformed JSON',
      '{"account":',
      'application/json',
      /^the body is not valid JSON \(.+\); send/,
    ],
    [
      'a form body labelled as JSON',
      'account=5',
      'application/json',
      /^the body is not valid JSON/,
    ],
    [
      'text that is neither JSON nor a labelled form',
      'account=5',
      null,
      /^the body is not valid JSON/,
    ],
    [
      'an array',
      '[{"account":1}]',
      'application/json',
      'the body must be a JSON object {"account", "subscription"}, got an array',
    ],
    [
      'null',
      'null',
      'application/json',
      'the body must be a JSON object {"account", "subscription"}, got null',
    ],
    [
      'a bare number',
      '5',
      'application/json',
      'the body must be a JSON object {"account", "subscription"}, got 5',
    ],
    [
      'a bare number labelled as a form',
      '5',
      FORM,
      'the body must be a JSON object {"account", "subscription"}, got 5',
    ],
    ['account 0', '{"account":0}', 'application/json', positive('account', '0')],
    ['a negative account', '{"account":-3}', 'application/json', positive('account', '-3')],
    ['a fractional account', '{"account":1.5}', 'application/json', positive('account', '1.5')],
    [
      'an account beyond safe integers',
      '{"account":9007199254740993}',
      'application/json',
      positive('account', '9007199254740992'),
    ],
    ['an account of "0"', '{"account":"0"}', 'application/json', positive('account', '"0"')],
    [
      'an account string with letters',
      '{"account":"12a"}',
      'application/json',
      positive('account', '"12a"'),
    ],
    [
      'an account string with spaces',
      '{"account":" 12"}',
      'application/json',
      positive('account', '" 12"'),
    ],
    ['an empty account string', '{"account":""}', 'application/json', positive('account', '""')],
    ['a null account', '{"account":null}', 'application/json', positive('account', 'null')],
    ['a boolean account', '{"account":true}', 'application/json', positive('account', 'true')],
    [
      'an account in an array',
      '{"account":[1]}',
      'application/json',
      positive('account', 'an array'),
    ],
    [
      'an account object',
      '{"account":{"id":1}}',
      'application/json',
      positive('account', 'an object'),
    ],
    [
      'a subscription that is not a number',
      '{"account":1,"subscription":"abc"}',
      'application/json',
      positive('subscription', '"abc"'),
    ],
    ['a form account that is not a number', 'account=abc', FORM, positive('account', '"abc"')],
    ['an empty form account', 'account=', FORM, positive('account', '""')],
    [
      'a form account given twice',
      'account=1&account=2',
      FORM,
      'the form body gives account 2 times',
    ],
    ['a form subscription of 0', 'account=1&subscription=0', FORM, positive('subscription', '"0"')],
    [
      'an account with a leading zero',
      '{"account":"000123"}',
      'application/json',
      positive('account', '"000123"'),
    ],
    ['a form account with a leading zero', 'account=01', FORM, positive('account', '"01"')],
    [
      'a JSON object with a subscription but no account key',
      '{"subscription":3}',
      'application/json',
      'the body has no "account" (it has "subscription"): a notification is {"account", "subscription"}; only an empty body is the registration handshake',
    ],
    [
      'a misspelt account key',
      '{"acount":1,"subscription":1}',
      'application/json',
      'the body has no "account" (it has "acount", "subscription"): a notification is {"account", "subscription"}; only an empty body is the registration handshake',
    ],
    [
      'a form body with no account key',
      'hello=world',
      FORM,
      'the form body has no account: a notification is account=<id>; only an empty body is the registration handshake',
    ],
    [
      'text labelled as a form that holds no account',
      '{bad',
      FORM,
      'the form body has no account: a notification is account=<id>; only an empty body is the registration handshake',
    ],
  ])('answers 400 to %s and enqueues nothing', async (_name, body, contentType, message) => {
    const { app, enqueued, logs, metrics } = setup();

    const response = await send(app, { body, contentType });

    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/json');
    const json = (await response.json()) as { message: string };
    expect(json).toEqual({
      error_code: 'invalid_parameters',
      message: typeof message === 'string' ? message : expect.stringMatching(message),
      status_code: 400,
    });
    expect(enqueued).toEqual([]);
    expect(rejectedCounts(metrics)).toEqual({
      signature: 0,
      body: 1,
      too_large: 0,
      unavailable: 0,
    });
    expect(logs).toEqual([`webhook: refused a signed notification: ${json.message}`]);
  });

  it('answers 400 to a body that is not UTF-8', async () => {
    const { app, enqueued } = setup();
    const body = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);

    const response = await send(app, { body });

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error_code: 'invalid_parameters',
      message: 'the body is not valid UTF-8',
      status_code: 400,
    });
    expect(enqueued).toEqual([]);
  });
});

/** A body stream that yields `chunk` forever, recording whether the reader cancelled it. */
function endlessStream(chunk: Uint8Array) {
  const state = { pulls: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulls++;
      controller.enqueue(chunk);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

function postStream(
  app: Hono,
  stream: ReadableStream<Uint8Array>,
  headers: Record<string, string>,
) {
  return app.request(
    new Request(URL_, { method: 'POST', body: stream, duplex: 'half', headers } as RequestInit),
  );
}

const TOO_LARGE = (max: number) => ({
  error_code: 'payload_too_large',
  message: `the body is larger than the limit of ${max} bytes for a webhook notification`,
  status_code: 413,
});

describe('the body size limit', () => {
  it('answers 413 from the Content-Length alone, before the signature and without reading', async () => {
    const { app, enqueued, metrics } = setup({ maxBodyBytes: 100 });
    const { stream, state } = endlessStream(new Uint8Array(10));

    const response = await postStream(app, stream, { 'Content-Length': '101' });

    expect(response.status).toBe(413);
    expect(await response.json()).toEqual(TOO_LARGE(100));
    expect(state.pulls).toBeLessThanOrEqual(1);
    expect(enqueued).toEqual([]);
    expect(rejectedCounts(metrics)).toEqual({
      signature: 0,
      body: 0,
      too_large: 1,
      unavailable: 0,
    });
  });

  it('answers 413 to a chunked body once it passes the limit, and stops reading it', async () => {
    const { app, enqueued, metrics } = setup({ maxBodyBytes: 100 });
    const { stream, state } = endlessStream(new TextEncoder().encode('{"account":1}      '));

    const response = await postStream(app, stream, { 'Content-Type': 'application/json' });

    expect(response.status).toBe(413);
    expect(await response.json()).toEqual(TOO_LARGE(100));
    expect(state.cancelled).toBe(true);
    expect(state.pulls).toBeLessThan(10);
    expect(enqueued).toEqual([]);
    expect(rejectedCounts(metrics)).toEqual({
      signature: 0,
      body: 0,
      too_large: 1,
      unavailable: 0,
    });
  });

  it('counts the bytes read even when the Content-Length understates them', async () => {
    const { app, enqueued } = setup({ maxBodyBytes: 100 });
    const { stream } = endlessStream(new Uint8Array(30));

    const response = await postStream(app, stream, { 'Content-Length': '20' });

    expect(response.status).toBe(413);
    expect(enqueued).toEqual([]);
  });

  it(`accepts a body of exactly the default ${DEFAULT_RECEIVER_MAX_BODY} bytes and refuses one byte more`, async () => {
    const { app, enqueued } = setup();
    const exact = '{"account":1}'.padEnd(DEFAULT_RECEIVER_MAX_BODY, ' ');
    const over = `${exact} `;

    const accepted = await send(app, { body: exact });
    const refused = await send(app, { body: over });
    const refusedByLength = await send(app, {
      body: over,
      headers: { 'Content-Length': String(over.length) },
    });

    expect([accepted.status, refused.status, refusedByLength.status]).toEqual([200, 413, 413]);
    expect(await refused.json()).toEqual(TOO_LARGE(DEFAULT_RECEIVER_MAX_BODY));
    expect(enqueued).toEqual([{ account: 1, subscription: null }]);
  });

  it('answers 413 to an oversized unsigned body: the size is checked before the signature', async () => {
    const { app, metrics } = setup({ maxBodyBytes: 10 });

    const response = await send(app, { body: '{"account":12345}', signature: null });

    expect(response.status).toBe(413);
    expect(rejectedCounts(metrics)).toEqual({
      signature: 0,
      body: 0,
      too_large: 1,
      unavailable: 0,
    });
  });
});

describe('other methods', () => {
  it.each(['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])(
    'answers %s with 405 and Allow: POST',
    async (method) => {
      const { app, enqueued } = setup();

      const response = await app.request(URL_, { method });

      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(await response.json()).toEqual({
        error_code: 'method_not_allowed',
        message: '/webhooks/kloudless accepts only POST (signed webhook notifications)',
        status_code: 405,
      });
      expect(enqueued).toEqual([]);
    },
  );

  it('answers HEAD with 405 and Allow: POST', async () => {
    const { app } = setup();

    const response = await app.request(URL_, { method: 'HEAD' });

    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });
});

describe('an unavailable queue', () => {
  it.each<[string, ReceiverOptions['enqueue']]>([
    [
      'throws',
      () => {
        throw new Error('queue is full');
      },
    ],
    ['rejects', () => Promise.reject(new Error('queue is full'))],
  ])('answers 503 when enqueue %s, so the sender retries, and logs why', async (_name, enqueue) => {
    const { app, logs, metrics } = setup({ enqueue });

    const response = await send(app, { body: '{"account":77,"subscription":2}' });

    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      error_code: 'unavailable',
      message: 'the notification could not be queued; retry later',
      status_code: 503,
    });
    expect(logs).toEqual([
      'webhook: could not enqueue the notification of account 77 (queue is full); answered 503 so the sender retries',
    ]);
    expect(metrics.webhooksAccepted.value()).toBe(0);
    expect(rejectedCounts(metrics)).toEqual({
      signature: 0,
      body: 0,
      too_large: 0,
      unavailable: 1,
    });
  });
});

describe('parseNotification', () => {
  const bytes = (text: string) => new TextEncoder().encode(text);

  it.each<[string, string | null, Notification | 'handshake']>([
    ['', null, 'handshake'],
    ['{}', 'application/json', 'handshake'],
    ['{"account":1,"subscription":2}', 'application/json', { account: 1, subscription: 2 }],
    ['{"account":"123"}', null, { account: 123, subscription: null }],
    [
      'account=4',
      'application/x-www-form-urlencoded;charset=utf-8',
      { account: 4, subscription: null },
    ],
    ['account=4&other=x', 'application/x-www-form-urlencoded', { account: 4, subscription: null }],
    ['\uFEFF{"account":5}', 'application/json', { account: 5, subscription: null }],
  ])('reads %j (%s) as %j', (body, contentType, expected) => {
    expect(parseNotification(bytes(body), contentType)).toEqual(expected);
  });

  it('throws an EngineHttpError 400 naming the field', () => {
    expect(() => parseNotification(bytes('{"account":-1}'), 'application/json')).toThrow(
      expect.objectContaining({
        name: 'EngineHttpError',
        status: 400,
        errorCode: 'invalid_parameters',
        message: positive('account', '-1'),
      }),
    );
  });
});

describe('over real HTTP with the embedded ITSM API', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) await cleanup();
  });

  async function serveReceiver(options: Partial<ReceiverOptions> = {}) {
    const enqueued: Notification[] = [];
    const logs: string[] = [];
    const app = new Hono();
    registerReceiver(
      app,
      createReceiver({
        keys: () => [TEST_API_KEY],
        appId: TEST_APP_ID,
        enqueue: (notification) => {
          enqueued.push(notification);
        },
        log: (line) => logs.push(line),
        ...options,
      }),
    );
    const server = createAdaptorServer({ fetch: app.fetch });
    const address = await listen(server, 0, '127.0.0.1');
    cleanups.push(() => closeServer(server));
    return { url: `http://127.0.0.1:${address.port}${PATH}`, enqueued, logs };
  }

  async function itsm() {
    const server = await startTestItsm({ delivery: { attempts: 2, baseDelayMs: 20 } });
    cleanups.push(() => server.close());
    return server;
  }

  it("passes the API's registration handshake and enqueues its signed notification of a new incident", async () => {
    const receiver = await serveReceiver();
    const api = await itsm();

    const registered = await api.call('POST', `/v1/applications/${TEST_APP_ID}/webhooks`, {
      body: { url: receiver.url },
    });
    expect(registered.status, registered.text).toBe(201);
    expect(receiver.enqueued).toEqual([]);

    const created = await api.call('POST', '/v1/accounts/4242/itsm/incidents', {
      body: { description: 'mail is down' },
    });
    expect(created.status, created.text).toBe(201);

    await vi.waitFor(() => expect(receiver.enqueued.length).toBeGreaterThan(0), { timeout: 5_000 });
    await api.itsm.notifier.idle();
    expect(receiver.enqueued[0]).toEqual({ account: 4242, subscription: registered.json.id });
    expect(new Set(receiver.enqueued.map((n) => JSON.stringify(n)))).toEqual(
      new Set([JSON.stringify({ account: 4242, subscription: registered.json.id })]),
    );
    expect(api.itsm.notifier.stats).toMatchObject({ abandoned: 0, failedAttempts: 0 });
    expect(receiver.logs).toEqual([]);
  });

  it('answers 413 over real HTTP to a chunked upload that never ends, without waiting for its end', async () => {
    const receiver = await serveReceiver({ maxBodyBytes: 1_000 });
    const { port } = new URL(receiver.url);

    const { status, body } = await new Promise<{ status: number; body: string }>(
      (resolve, reject) => {
        const upload = request(
          { host: '127.0.0.1', port, method: 'POST', path: PATH },
          (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => {
              text += chunk.toString();
            });
            response.on('end', () => {
              clearInterval(writer);
              upload.destroy();
              resolve({ status: response.statusCode ?? 0, body: text });
            });
          },
        );
        upload.on('error', reject);
        const writer = setInterval(() => upload.write(Buffer.alloc(500, 0x20)), 1);
      },
    );

    expect(status).toBe(413);
    expect(JSON.parse(body)).toEqual(TOO_LARGE(1_000));
    expect(receiver.enqueued).toEqual([]);
  });

  it.each<[string, Partial<ReceiverOptions>, string]>([
    [
      'it answers with another application id',
      { appId: 'another-app' },
      `answered the handshake with "another-app" instead of the application id`,
    ],
    [
      'it holds another key (the handshake signature does not verify)',
      { keys: () => ['not-the-api-key'] },
      'answered the handshake with status 401',
    ],
  ])('is not registered by the API when %s', async (_name, options, reason) => {
    const receiver = await serveReceiver(options);
    const api = await itsm();

    const registered = await api.call('POST', `/v1/applications/${TEST_APP_ID}/webhooks`, {
      body: { url: receiver.url },
    });

    expect(registered.status).toBe(400);
    expect(registered.json.message).toBe(`webhook not registered: ${receiver.url} ${reason}`);
    expect(receiver.enqueued).toEqual([]);
  });
});
