// Bad input over real HTTP (shared/spec/itsm-api.md §2-§4, DESIGN.md "bad input gets a clear 4xx
// and changes nothing"): enums, unknown fields, dangling references, dates, value types, malformed
// and oversized bodies, read-only fields and paging parameters. Every refused write is checked
// for partial effects: no object stored, no object changed, no event appended.
import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SEED_INCIDENT_CREATE, SEED_USERS } from '../fixtures/seed-examples.js';
import { type CallResult, startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';

const ACCOUNT_PATH = '/v1/accounts/123';
const ITSM = `${ACCOUNT_PATH}/itsm`;

type Body = Record<string, unknown>;

function expectError(response: CallResult, status: number, code: string): void {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/json');
  expect(response.json).toEqual({
    error_code: code,
    message: expect.any(String),
    id: expect.any(String),
    status_code: status,
  });
}

async function create(itsm: TestItsm, plural: string, body: Body): Promise<Body> {
  const response = await itsm.call('POST', `${ITSM}/${plural}`, { body });
  expect(response.status, response.text).toBe(201);
  return response.json;
}

/** Ids of every event of the account, oldest first. */
async function eventIds(itsm: TestItsm): Promise<string[]> {
  const response = await itsm.call('GET', `${ACCOUNT_PATH}/events?page_size=1000`);
  expect(response.status, response.text).toBe(200);
  return (response.json.objects as { id: string }[]).map((event) => event.id);
}

/** Puts a valid field beside the bad ones of an object body: it must not be stored either. */
function withValidField(value: unknown, description: string): unknown {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? { description, ...value }
    : value;
}

async function expectEmpty(itsm: TestItsm, plural: string): Promise<void> {
  const list = await itsm.call('GET', `${ITSM}/${plural}`);
  expect(list.status, list.text).toBe(200);
  expect(list.json).toMatchObject({ total: 0, count: 0, objects: [] });
}

interface BadBodyRow {
  name: string;
  plural: string;
  /**
   * A JSON value, or raw request text when a string. May create the objects it points at; the
   * test takes its baseline of events after this.
   */
  body: (itsm: TestItsm) => unknown;
  /** A word the message must contain (the field at fault), or null when there is none. */
  names: string | null;
}

const BAD_BODIES: BadBodyRow[] = [
  {
    name: 'impact "urgent"',
    plural: 'incidents',
    body: () => ({ impact: 'urgent' }),
    names: 'impact',
  },
  {
    name: 'urgency "asap"',
    plural: 'incidents',
    body: () => ({ urgency: 'asap' }),
    names: 'urgency',
  },
  {
    name: 'priority "p1"',
    plural: 'incidents',
    body: () => ({ priority: 'p1' }),
    names: 'priority',
  },
  {
    name: 'an unknown field',
    plural: 'incidents',
    body: () => ({ colour: 'red' }),
    names: 'colour',
  },
  {
    name: 'a field of another type',
    plural: 'incidents',
    body: () => ({ quantity: 1 }),
    names: 'quantity',
  },
  {
    name: 'a problem id that does not exist',
    plural: 'incidents',
    body: () => ({ problem: 'F3iGnrn9YFNJ7sqGfh2ofTsF1Hv6WCFdQs8UAZKZC5f0xIRY81hy872UNWxPncRFT' }),
    names: 'problem',
  },
  {
    name: 'a problem id that names a change',
    plural: 'incidents',
    body: async (itsm) => ({
      problem: (await create(itsm, 'changes', { description: 'not a problem' })).id,
    }),
    names: 'problem',
  },
  {
    name: 'due_date "2017-02-30T00:00:00Z"',
    plural: 'incidents',
    body: () => ({ due_date: '2017-02-30T00:00:00Z' }),
    names: 'due_date',
  },
  {
    name: 'due_date "yesterday"',
    plural: 'incidents',
    body: () => ({ due_date: 'yesterday' }),
    names: 'due_date',
  },
  {
    name: 'escalation -1',
    plural: 'incidents',
    body: () => ({ escalation: -1 }),
    names: 'escalation',
  },
  {
    name: 'escalation 1.5',
    plural: 'incidents',
    body: () => ({ escalation: 1.5 }),
    names: 'escalation',
  },
  {
    name: 'escalation "2"',
    plural: 'incidents',
    body: () => ({ escalation: '2' }),
    names: 'escalation',
  },
  { name: 'active "yes"', plural: 'incidents', body: () => ({ active: 'yes' }), names: 'active' },
  { name: 'assignee 42', plural: 'incidents', body: () => ({ assignee: 42 }), names: 'assignee' },
  { name: 'status true', plural: 'incidents', body: () => ({ status: true }), names: 'status' },
  {
    name: 'a mapped column in raw.object',
    plural: 'incidents',
    body: () => ({ raw: { object: { impact: '1' } } }),
    names: 'impact',
  },
  {
    name: 'quantity "one"',
    plural: 'assets',
    body: () => ({ quantity: 'one' }),
    names: 'quantity',
  },
  { name: 'quantity -3', plural: 'assets', body: () => ({ quantity: -3 }), names: 'quantity' },
  { name: 'rating "five"', plural: 'articles', body: () => ({ rating: 'five' }), names: 'rating' },
  {
    name: 'start_date "soon"',
    plural: 'changes',
    body: () => ({ start_date: 'soon' }),
    names: 'start_date',
  },
  {
    name: 'risk "medium" (a level word, not a risk)',
    plural: 'changes',
    body: () => ({ risk: 'medium' }),
    names: 'risk must be one of low, moderate, high, very high',
  },
  {
    name: 'risk "3" (the ServiceNow code)',
    plural: 'changes',
    body: () => ({ risk: '3' }),
    names: 'risk must be one of low, moderate, high, very high',
  },
  { name: 'risk 2', plural: 'changes', body: () => ({ risk: 2 }), names: 'risk' },
  { name: 'malformed JSON', plural: 'incidents', body: () => '{"impact": "high",', names: null },
  { name: 'an empty body', plural: 'incidents', body: () => '', names: null },
  { name: 'a JSON array', plural: 'incidents', body: () => [{ impact: 'high' }], names: null },
  { name: 'JSON null', plural: 'incidents', body: () => 'null', names: null },
  { name: 'a JSON string', plural: 'incidents', body: () => '"impact"', names: null },
];

describe('refused creates', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
  });
  afterEach(async () => {
    await itsm.close();
  });

  it.each(BAD_BODIES)(
    'refuses a create with $name: 400, nothing stored, no event',
    async ({ plural, body, names }) => {
      const sent = withValidField(await body(itsm), 'must not be stored');
      const eventsBefore = await eventIds(itsm);
      const response = await itsm.call('POST', `${ITSM}/${plural}`, { body: sent });
      expectError(response, 400, 'invalid_parameters');
      if (names !== null) expect(response.json.message).toContain(names);
      await expectEmpty(itsm, plural);
      expect(await eventIds(itsm)).toEqual(eventsBefore);
    },
  );

  it('refuses a create with several bad fields and names each of them', async () => {
    const eventsBefore = await eventIds(itsm);
    const response = await itsm.call('POST', `${ITSM}/incidents`, {
      body: { impact: 'urgent', priority: 'p1', colour: 'red' },
    });
    expectError(response, 400, 'invalid_parameters');
    for (const field of ['impact', 'priority', 'colour'])
      expect(response.json.message).toContain(field);
    await expectEmpty(itsm, 'incidents');
    expect(await eventIds(itsm)).toEqual(eventsBefore);
  });

  it('refuses the seed incident body while its problem id names no problem here', async () => {
    const eventsBefore = await eventIds(itsm);
    const response = await itsm.call('POST', `${ITSM}/incidents`, { body: SEED_INCIDENT_CREATE });
    expectError(response, 400, 'invalid_parameters');
    expect(response.json.message).toContain('problem');
    expect(response.json.message).toContain(SEED_INCIDENT_CREATE.problem);
    await expectEmpty(itsm, 'incidents');
    expect(await eventIds(itsm)).toEqual(eventsBefore);
  });
});

describe('refused updates', () => {
  let itsm: TestItsm;
  let incident: Body;
  beforeEach(async () => {
    itsm = await startTestItsm({ users: SEED_USERS });
    incident = await create(itsm, 'incidents', { description: 'original', impact: 'low' });
  });
  afterEach(async () => {
    await itsm.close();
  });

  const INCIDENT_ROWS = BAD_BODIES.filter((row) => row.plural === 'incidents');

  it.each(INCIDENT_ROWS)(
    'refuses a PATCH with $name: 400, object unchanged, no event',
    async ({ body, names }) => {
      const sent = withValidField(await body(itsm), 'must not stick');
      const eventsBefore = await eventIds(itsm);
      const path = `${ITSM}/incidents/${String(incident.id)}`;
      const response = await itsm.call('PATCH', path, { body: sent });
      expectError(response, 400, 'invalid_parameters');
      if (names !== null) expect(response.json.message).toContain(names);
      const read = await itsm.call('GET', path);
      expect(read.json).toEqual(incident);
      expect(await eventIds(itsm)).toEqual(eventsBefore);
    },
  );

  it.each([
    ['assets', { quantity: 'one' }, 'quantity'],
    ['articles', { rating: 'five' }, 'rating'],
    ['changes', { end_date: '2017-13-01T00:00:00Z' }, 'end_date'],
    ['changes', { risk: 'Moderate' }, 'risk must be one of low, moderate, high, very high'],
  ])('refuses a PATCH of %s with %j and leaves it unchanged', async (plural, bad, field) => {
    const object = await create(itsm, plural, { description: 'original' });
    const baseline = await eventIds(itsm);
    const path = `${ITSM}/${plural}/${String(object.id)}`;
    const response = await itsm.call('PATCH', path, {
      body: { description: 'must not stick', ...bad },
    });
    expectError(response, 400, 'invalid_parameters');
    expect(response.json.message).toContain(field);
    expect((await itsm.call('GET', path)).json).toEqual(object);
    expect(await eventIds(itsm)).toEqual(baseline);
  });
});

describe('dates', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm();
  });
  afterEach(async () => {
    await itsm.close();
  });

  it.each([
    ['2017-10-04T22:15:37+02:00', '2017-10-04T20:15:37Z'],
    ['2017-10-04T15:15:37-05:00', '2017-10-04T20:15:37Z'],
    ['2017-10-04T20:15:37.000Z', '2017-10-04T20:15:37Z'],
    ['2017-10-05T01:45:37+05:30', '2017-10-04T20:15:37Z'],
    ['2017-10-04T20:15:37Z', '2017-10-04T20:15:37Z'],
  ])('reads due_date %s back as %s', async (written, canonical) => {
    const incident = await create(itsm, 'incidents', { due_date: written });
    expect(incident.due_date).toBe(canonical);
    const read = await itsm.call('GET', `${ITSM}/incidents/${String(incident.id)}`);
    expect(read.json.due_date).toBe(canonical);
  });

  it('normalises an offset date written by PATCH and on a change', async () => {
    const change = await create(itsm, 'changes', { start_date: '2017-12-01T16:10:00+01:00' });
    expect(change.start_date).toBe('2017-12-01T15:10:00Z');
    const patched = await itsm.call('PATCH', `${ITSM}/changes/${String(change.id)}`, {
      body: { end_date: '2017-12-01T10:20:00-05:00' },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.end_date).toBe('2017-12-01T15:20:00Z');
  });
});

describe('read-only fields in a body', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm();
  });
  afterEach(async () => {
    await itsm.close();
  });

  const READ_ONLY: Body = {
    id: 'Fchosen-by-the-client',
    type: 'problem',
    api: 'other',
    created: '2000-01-01T00:00:00Z',
    modified: '2000-01-01T00:00:00Z',
    href: 'https://evil.example.com/x',
  };

  it.each(Object.entries(READ_ONLY))('ignores %s on create', async (field, value) => {
    const incident = await create(itsm, 'incidents', { description: 'x', [field]: value });
    expect(incident[field]).not.toEqual(value);
    expect(incident).toMatchObject({ type: 'incident', api: 'itsm', description: 'x' });
    expect(incident.id).not.toBe('Fchosen-by-the-client');
    expect(incident.created).not.toBe('2000-01-01T00:00:00Z');
    const read = await itsm.call('GET', `${ITSM}/incidents/${String(incident.id)}`);
    expect(read.json).toEqual(incident);
  });

  it('ignores id, created and type on PATCH and applies the rest', async () => {
    const incident = await create(itsm, 'incidents', { description: 'x' });
    const path = `${ITSM}/incidents/${String(incident.id)}`;
    const response = await itsm.call('PATCH', path, {
      body: { id: 'Fother', created: '2000-01-01T00:00:00Z', type: 'problem', description: 'y' },
    });
    expect(response.status, response.text).toBe(200);
    expect(response.json).toMatchObject({
      id: incident.id,
      created: incident.created,
      type: 'incident',
      description: 'y',
    });
    expectError(await itsm.call('GET', `${ITSM}/incidents/Fother`), 404, 'not_found');
  });
});

describe('request body size', () => {
  let itsm: TestItsm | undefined;
  afterEach(async () => {
    await itsm?.close();
    itsm = undefined;
  });

  // The oversized requests ask for `Connection: close` so that the reads after them never ride on
  // a socket the server refused mid-body; how the server treats that socket is its own test below.
  const CLOSE = { Connection: 'close' };

  it('refuses a 2 KB body with 413 payload_too_large when the limit is 1024 bytes, storing nothing', async () => {
    itsm = await startTestItsm({ maxBodyBytes: 1024 });
    const before = await eventIds(itsm);
    const response = await itsm.call('POST', `${ITSM}/incidents`, {
      body: { description: 'x'.repeat(2048) },
      headers: CLOSE,
    });
    expectError(response, 413, 'payload_too_large');
    await expectEmpty(itsm, 'incidents');
    expect(await eventIds(itsm)).toEqual(before);
  });

  it('refuses an oversized PATCH with 413 and leaves the object unchanged', async () => {
    itsm = await startTestItsm({ maxBodyBytes: 1024 });
    const incident = await create(itsm, 'incidents', { description: 'small' });
    const before = await eventIds(itsm);
    const path = `${ITSM}/incidents/${String(incident.id)}`;
    const response = await itsm.call('PATCH', path, {
      body: { description: 'x'.repeat(2048) },
      headers: CLOSE,
    });
    expectError(response, 413, 'payload_too_large');
    expect((await itsm.call('GET', path)).json).toEqual(incident);
    expect(await eventIds(itsm)).toEqual(before);
  });

  it('accepts a body under the limit', async () => {
    itsm = await startTestItsm({ maxBodyBytes: 1024 });
    await create(itsm, 'incidents', { description: 'x'.repeat(500) });
  });

  it('refuses a body over 1 MiB on a server with the default limit', async () => {
    itsm = await startTestItsm();
    const before = await eventIds(itsm);
    const response = await itsm.call('POST', `${ITSM}/incidents`, {
      body: { description: 'x'.repeat(1024 * 1024 + 16) },
      headers: CLOSE,
    });
    expectError(response, 413, 'payload_too_large');
    await expectEmpty(itsm, 'incidents');
    expect(await eventIds(itsm)).toEqual(before);
  });

  it('accepts a body just under 1 MiB on a server with the default limit', async () => {
    itsm = await startTestItsm();
    const incident = await create(itsm, 'incidents', { description: 'x'.repeat(1024 * 1024 - 64) });
    expect(String(incident.description)).toHaveLength(1024 * 1024 - 64);
  });

  it('does not drop a connection it kept alive after a 413 (it either closes it at once or serves the next request)', async () => {
    const server = await startTestItsm();
    itsm = server;
    const url = new URL(server.url);
    const body = JSON.stringify({ description: 'x'.repeat(1024 * 1024 + 16) });
    const connection = await openConnection(Number(url.port), url.hostname);
    try {
      connection.socket.write(
        `POST ${ITSM}/incidents HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: APIKey ${TEST_API_KEY}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
      );
      connection.socket.write(body);
      const refused = await connection.nextResponse();
      expect(refused.head).toMatch(/^HTTP\/1\.1 413 /);
      if (/^connection:\s*close\s*$/im.test(refused.head)) return;
      // The server said keep-alive: the connection must still serve a request a while later.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      connection.socket.write(
        `GET ${ITSM}/incidents HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: APIKey ${TEST_API_KEY}\r\n\r\n`,
      );
      const next = await connection.nextResponse();
      expect(next.head).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      connection.socket.destroy();
    }
  });
});

/** A raw HTTP/1.1 connection: write requests on it, read complete responses one by one. */
async function openConnection(
  port: number,
  host: string,
): Promise<{ socket: Socket; nextResponse: () => Promise<{ head: string; body: string }> }> {
  const socket = connect(port, host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffered = '';
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const waiter of waiters.splice(0)) waiter();
  };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    wake();
  });
  socket.on('close', () => {
    closed = true;
    wake();
  });
  socket.on('error', () => {});
  const nextResponse = async (): Promise<{ head: string; body: string }> => {
    for (;;) {
      const headEnd = buffered.indexOf('\r\n\r\n');
      if (headEnd >= 0) {
        const head = buffered.slice(0, headEnd);
        const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
        if (buffered.length >= headEnd + 4 + length) {
          const body = buffered.slice(headEnd + 4, headEnd + 4 + length);
          buffered = buffered.slice(headEnd + 4 + length);
          return { head, body };
        }
      }
      if (closed)
        return {
          head: `connection closed by the server${buffered ? ` after ${JSON.stringify(buffered)}` : ''}`,
          body: '',
        };
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { socket, nextResponse };
}

describe('paging parameters', () => {
  let itsm: TestItsm;
  beforeEach(async () => {
    itsm = await startTestItsm();
  });
  afterEach(async () => {
    await itsm.close();
  });

  it.each([
    ['page_size=0'],
    ['page_size=1001'],
    ['page_size=abc'],
    ['page_size=2.5'],
    ['page_size=-1'],
    ['page=0'],
    ['page=-1'],
    ['page=abc'],
  ])('refuses %s with a 400', async (query) => {
    const response = await itsm.call('GET', `${ITSM}/incidents?${query}`);
    expectError(response, 400, 'invalid_parameters');
    const [name] = query.split('=');
    expect(response.json.message).toContain(name);
  });

  it.each([['page_size=1'], ['page_size=1000'], ['page=1'], ['page=2']])(
    'accepts %s',
    async (query) => {
      const response = await itsm.call('GET', `${ITSM}/incidents?${query}`);
      expect(response.status, response.text).toBe(200);
      expect(response.json.type).toBe('object_list');
    },
  );
});
