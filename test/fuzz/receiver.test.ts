// Fuzzing the webhook receiver (`POST /webhooks/kloudless`) of the engine as `itsm-rules serve`
// runs it (startEngine: Node's HTTP server, the node:crypto verifier, the real queue and store),
// over real HTTP on 127.0.0.1: random and mutated bodies, content types, signatures (valid over
// mutated bytes, valid then the body changed, truncated, other keys, Base64 junk), and, over raw
// sockets, chunked bodies, lying or doubled Content-Length headers and bodies past the limit.
// Invariants: every case is answered or closed within a deadline (no hang); every answer the
// engine gives is a 200 or a 4xx with the JSON error body; only validly signed bodies are
// accepted, and the engine counts and stores exactly the notifications the test accepted; the
// engine still serves after the run. Seed and size: FUZZ_SEED, FUZZ_CASES (see random.ts).
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../src/itsm/signature.js';
import { DEFAULT_RECEIVER_MAX_BODY } from '../../src/webhook/receiver.js';
import { startTestEngine, TEST_API_KEY, TEST_APP_ID, type TestEngine } from '../helpers/serve.js';
import { fuzzCases, fuzzSeed, mutateBytes, Random, replayHint } from './random.js';

const SEED = fuzzSeed();
const CASES = fuzzCases(5_000);
console.log(replayHint('receiver', SEED, CASES));

const PREVIOUS_KEY = 'previous-api-key';
const OTHER_KEY = 'not-the-api-key';
const DEADLINE_MS = 10_000;
const encoder = new TextEncoder();

interface Case {
  body: Uint8Array;
  contentType: string | null;
  signature: string | null;
  /** Whether the signature is a valid one over exactly `body` under an accepted key. */
  signed: boolean;
  /** A well-formed notification, signed: it must be accepted. */
  mustAccept: boolean;
  transport: 'fetch' | 'chunked' | 'raw';
  /** For 'raw': the Content-Length header(s) to send instead of the true one, and half-close. */
  declared?: string[];
  halfClose?: boolean;
  /** For 'raw' with a shorter declared length: the bytes the parser reads as the body. */
  readPrefix?: Uint8Array;
  /** For 'chunked': a Content-Length header as well. */
  bothLengths?: boolean;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
  /** Answered by Node's HTTP parser itself (malformed HTTP), not by the engine. */
  fromParser: boolean;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function notificationBody(random: Random): { text: string; contentType: string } {
  const account = random.int(1, 4);
  const roll = random.float();
  if (roll < 0.6) {
    const subscription = random.chance(0.8) ? random.int(1, 9) : null;
    const json = random.chance(0.3)
      ? { subscription: String(subscription ?? 1), account: String(account) }
      : { account, subscription };
    return {
      text: JSON.stringify(json),
      contentType: random.pick([
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
      ]),
    };
  }
  return { text: `account=${account}`, contentType: 'application/x-www-form-urlencoded' };
}

function randomBody(random: Random): Uint8Array {
  const roll = random.float();
  if (roll < 0.3) return random.bytes(200);
  if (roll < 0.6) return encoder.encode(JSON.stringify(random.json(3)) ?? '');
  if (roll < 0.75)
    return encoder.encode(
      random.pick([
        '',
        ' ',
        '{}',
        '[]',
        'null',
        '{"account": 0}',
        '{"account": -1}',
        '{"account": 1e400}',
        '{"account": "0x1"}',
        '{"__proto__": {"account": 1}}',
        'account=1&account=2',
        '{"account": 9007199254740993}',
      ]),
    );
  return encoder.encode(random.string(100));
}

/**
 * The oracle: whether `signature` is, character for character once trimmed, the signature of
 * `body` under an accepted key. A "junk" edit can leave a signature unchanged (no "+" to
 * replace), so the oracle never trusts how a signature was made.
 */
async function isValid(body: Uint8Array, signature: string | null): Promise<boolean> {
  if (signature === null) return false;
  const given = signature.trim();
  return (
    given === (await signBody(body, TEST_API_KEY)) || given === (await signBody(body, PREVIOUS_KEY))
  );
}

async function junkSignature(random: Random, body: Uint8Array): Promise<string> {
  const valid = await signBody(body, TEST_API_KEY);
  return random.pick<() => string>([
    () => valid.slice(0, random.int(0, valid.length - 1)),
    () => `${valid}${random.pick(['=', 'A', '==', 'AAAA'])}`,
    () =>
      valid.replace(/[A-Za-z]/, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())),
    () => Buffer.from(valid, 'base64').toString('hex'),
    () => valid.replaceAll('+', '-').replaceAll('/', '_'),
    () => Buffer.from(random.bytes(48)).toString('base64'),
    () => random.string(44).replace(/[^\x21-\x7e]/g, 'x'),
    () => `${'A'.repeat(43)}=`,
    () => `sha256=${valid}`,
    () => ' ',
  ])();
}

async function makeCase(random: Random): Promise<Case> {
  const roll = random.float();
  const transport: Case['transport'] = random.chance(0.12)
    ? 'chunked'
    : random.chance(0.1)
      ? 'raw'
      : 'fetch';
  if (roll < 0.3) {
    // A well-formed notification, signed with the key or the previous one.
    const { text, contentType } = notificationBody(random);
    const body = encoder.encode(text);
    const key = random.chance(0.8) ? TEST_API_KEY : PREVIOUS_KEY;
    const signature = await signBody(body, key);
    return {
      body,
      contentType,
      signature: random.chance(0.1) ? ` ${signature} ` : signature,
      signed: true,
      mustAccept: transport !== 'raw',
      transport,
    };
  }
  if (roll < 0.45) {
    // Mutated bytes, signed after the mutation: signed, possibly not a notification.
    const { text, contentType } = notificationBody(random);
    const body = mutateBytes(random, encoder.encode(text));
    return {
      body,
      contentType: random.chance(0.8) ? contentType : null,
      signature: await signBody(body, TEST_API_KEY),
      signed: true,
      mustAccept: false,
      transport,
    };
  }
  if (roll < 0.6) {
    // Signed, then the body changed: never accepted.
    const { text, contentType } = notificationBody(random);
    const original = encoder.encode(text);
    const body = mutateBytes(random, original);
    const signature = await signBody(original, TEST_API_KEY);
    return {
      body,
      contentType,
      signature,
      signed: bytesEqual(body, original),
      mustAccept: false,
      transport,
    };
  }
  if (roll < 0.7) {
    // A notification with a bad signature: other key, junk, or none.
    const { text, contentType } = notificationBody(random);
    const body = encoder.encode(text);
    const kind = random.int(0, 2);
    const signature =
      kind === 0
        ? await signBody(body, OTHER_KEY)
        : kind === 1
          ? await junkSignature(random, body)
          : null;
    return {
      body,
      contentType,
      signature,
      signed: await isValid(body, signature),
      mustAccept: false,
      transport,
    };
  }
  if (roll < 0.75) {
    // Past the size limit, signed or not.
    const size = DEFAULT_RECEIVER_MAX_BODY + random.int(1, 3 * DEFAULT_RECEIVER_MAX_BODY);
    const body = new Uint8Array(size).fill(0x20);
    body.set(encoder.encode('{"account": 1}'));
    const signature = random.chance(0.5) ? await signBody(body, TEST_API_KEY) : null;
    return {
      body,
      contentType: 'application/json',
      signature,
      signed: signature !== null,
      mustAccept: false,
      transport,
    };
  }
  // Random bytes, signed or not, with a random content type.
  const body = randomBody(random);
  const signature = random.chance(0.6)
    ? await signBody(body, TEST_API_KEY)
    : random.chance(0.5)
      ? await junkSignature(random, body)
      : null;
  return {
    body,
    contentType: random.pick([
      null,
      'application/json',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=x',
      random.string(20).replace(/[^\x20-\x7e]/g, ''),
    ]),
    signature,
    signed: await isValid(body, signature),
    mustAccept: false,
    transport,
  };
}

/**
 * Turns a well-formed raw case into one with lying, doubled or malformed length headers. When the
 * header declares no more bytes than are sent, Node's parser reads that prefix as the body (and the
 * rest as the start of a next request): the case is signed when the signature is valid over
 * exactly that prefix, which the engine is then right to accept.
 */
async function distortLength(random: Random, c: Case): Promise<Case> {
  const length = c.body.length;
  const declared = random.pick<() => string[]>([
    () => [String(Math.max(0, length - random.int(1, 10)))],
    () => [String(length + random.int(1, 10))],
    () => [String(length), String(length)],
    () => [String(length), String(length + 1)],
    () => ['abc'],
    () => ['-1'],
    () => [' 0x10'],
    () => ['99999999999999999999'],
  ])();
  const first = declared[0] ?? '';
  const read =
    /^\d+$/.test(first) && declared.every((value) => value === first) ? Number(first) : null;
  const prefix = read !== null && read <= length ? c.body.subarray(0, read) : null;
  // A body cut short or padded is not the body that was signed: acceptance is asserted no further
  // than "never unsigned", which for a prefix means a valid signature over the prefix.
  return {
    ...c,
    declared,
    halfClose: true,
    mustAccept: false,
    signed: prefix !== null ? await isValid(prefix, c.signature) : false,
    readPrefix: prefix ?? undefined,
  };
}

async function sendFetch(url: string, c: Case): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (c.contentType !== null) headers['Content-Type'] = c.contentType;
  if (c.signature !== null) headers['X-Kloudless-Signature'] = c.signature;
  const response = await fetch(`${url}/webhooks/kloudless`, {
    method: 'POST',
    headers,
    body: c.body,
    signal: AbortSignal.timeout(DEADLINE_MS),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    text: await response.text(),
    fromParser: false,
  };
}

function chunkedBody(random: Random, body: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < body.length) {
    const size = Math.min(body.length - offset, random.int(1, 4096));
    parts.push(
      Buffer.from(`${size.toString(16)}\r\n`),
      Buffer.from(body.subarray(offset, offset + size)),
      Buffer.from('\r\n'),
    );
    offset += size;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** One request over its own socket, exactly as written; resolves with the answer or the close. */
function sendRaw(
  port: number,
  head: string,
  body: Buffer,
  halfClose: boolean,
): Promise<Answer | 'closed'> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and no close within ${DEADLINE_MS} ms (a hang)`));
    }, DEADLINE_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      if (raw === '') return resolve('closed');
      resolve(parseRawResponse(raw));
    });
    socket.write(head);
    socket.write(body);
    if (halfClose) socket.end();
  });
}

function parseRawResponse(raw: string): Answer {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  let body = end === -1 ? '' : raw.slice(end + 4);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const header = (name: string) =>
    new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
  if (/chunked/i.test(header('transfer-encoding'))) {
    let decoded = '';
    let rest = body;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      const size = Number.parseInt(rest.slice(0, lineEnd), 16);
      if (!(size > 0)) break;
      decoded += rest.slice(lineEnd + 2, lineEnd + 2 + size);
      rest = rest.slice(lineEnd + 4 + size);
    }
    body = decoded;
  } else if (header('content-length') !== '') {
    body = body.slice(0, Number(header('content-length')));
  }
  // Node's own answer to malformed HTTP: no Content-Type, no body from the engine.
  const fromParser = header('content-type') === '' && body === '' && status === 400;
  return {
    status,
    contentType: header('content-type'),
    text: Buffer.from(body, 'latin1').toString('utf8'),
    fromParser,
  };
}

async function send(engine: TestEngine, random: Random, c: Case): Promise<Answer | 'closed'> {
  if (c.transport === 'fetch') return sendFetch(engine.url, c);
  const lines = [
    `POST /webhooks/kloudless HTTP/1.1`,
    `Host: 127.0.0.1:${engine.port}`,
    'Connection: close',
  ];
  if (c.contentType !== null) lines.push(`Content-Type: ${c.contentType}`);
  if (c.signature !== null) lines.push(`X-Kloudless-Signature: ${c.signature}`);
  let body: Buffer;
  if (c.transport === 'chunked') {
    lines.push('Transfer-Encoding: chunked');
    // Both headers: a request-smuggling shape, which Node's parser refuses outright (its own 400).
    if (c.bothLengths) lines.push(`Content-Length: ${c.body.length}`);
    body = chunkedBody(random, c.body);
  } else {
    for (const value of c.declared ?? [String(c.body.length)])
      lines.push(`Content-Length: ${value}`);
    body = Buffer.from(c.body);
  }
  return sendRaw(engine.port, `${lines.join('\r\n')}\r\n\r\n`, body, c.halfClose ?? false);
}

/** Checks the shape of one answer; returns the accepted account, if any. */
function checkAnswer(answer: Answer, c: Case, where: () => string): number | null {
  const fail = (what: string) => {
    throw new Error(
      `${what}: ${answer.status} ${answer.contentType} ${answer.text.slice(0, 300)}\n${where()}`,
    );
  };
  if (answer.fromParser) {
    if (c.transport === 'fetch') fail("a well-formed request got the HTTP parser's own 400");
    return null;
  }
  if (answer.status === 200) {
    if (answer.contentType.startsWith('text/plain')) {
      if (answer.text !== TEST_APP_ID) fail('a 200 text answer that is not the handshake');
      if (!c.signed) fail('answered the handshake of an unsigned body');
      return null;
    }
    const json = JSON.parse(answer.text) as { accepted?: unknown; account?: unknown };
    if (json.accepted !== true || typeof json.account !== 'number')
      fail('a 200 that is neither a handshake nor an acceptance');
    if (!c.signed) fail('accepted a body without a valid signature');
    return json.account as number;
  }
  if (![400, 401, 413].includes(answer.status)) fail('an answer other than 200, 400, 401 or 413');
  if (answer.contentType !== 'application/json') fail('an error without the JSON content type');
  let error: { error_code?: unknown; message?: unknown; status_code?: unknown };
  try {
    error = JSON.parse(answer.text);
  } catch {
    return fail('an error body that is not JSON');
  }
  if (
    typeof error.error_code !== 'string' ||
    typeof error.message !== 'string' ||
    error.status_code !== answer.status
  ) {
    fail('an error body without error_code, message and status_code');
  }
  if (answer.status === 401 && c.signed && c.transport !== 'raw') fail('refused a valid signature');
  return null;
}

function acceptedCounter(engine: TestEngine): number {
  const match = /^itsm_rules_webhooks_accepted_total (\d+)/m.exec(engine.metrics.render());
  return Number(match?.[1] ?? 0);
}

let engine: TestEngine;
const figures: string[] = [];

beforeAll(async () => {
  engine = await startTestEngine({
    previousKeys: [PREVIOUS_KEY],
    drainRetry: { baseMs: 1_000, maxMs: 5_000 },
  });
});

afterAll(async () => {
  await engine?.close();
  for (const line of figures) console.log(line);
});

describe(`receiver fuzz (seed ${SEED}, ${CASES} cases)`, () => {
  it(
    'answers every random request with a 200 or a JSON 4xx, accepts only validly signed bodies, and still serves',
    async () => {
      const random = new Random(SEED);
      const acceptedBefore = acceptedCounter(engine);
      const acceptedAccounts = new Set<number>();
      const byStatus = new Map<string, number>();
      let accepted = 0;
      let unseen = 0;
      const unseenAccounts = new Set<number>();
      const noteUnseen = (prefix: Uint8Array) => {
        unseen++;
        const text = Buffer.from(prefix).toString('latin1');
        const named = /account"?\s*[:=]\s*"?(\d+)/.exec(text);
        if (named) unseenAccounts.add(Number(named[1]));
      };
      let closed = 0;
      const started = performance.now();
      for (let index = 0; index < CASES; index++) {
        const caseRandom = random.fork();
        let c = await makeCase(caseRandom);
        if (c.transport === 'raw' && caseRandom.chance(0.7)) c = await distortLength(caseRandom, c);
        if (c.transport === 'chunked' && caseRandom.chance(0.1))
          c = { ...c, bothLengths: true, mustAccept: false };
        const where = () =>
          `${replayHint('receiver', SEED, CASES, index)}\ncase: ${JSON.stringify({ ...c, body: Buffer.from(c.body.subarray(0, 300)).toString('latin1'), bodyLength: c.body.length })}`;
        let answer: Answer | 'closed';
        try {
          answer = await send(engine, caseRandom, c);
        } catch (error) {
          throw new Error(`${String(error)}\n${where()}`);
        }
        if (answer === 'closed') {
          // Only a request the test itself cut short may end without an answer.
          if (!c.halfClose) throw new Error(`the connection closed without an answer\n${where()}`);
          closed++;
          if (c.readPrefix !== undefined && c.signed) noteUnseen(c.readPrefix);
          continue;
        }
        const label = answer.fromParser ? '400 (HTTP parser)' : String(answer.status);
        byStatus.set(label, (byStatus.get(label) ?? 0) + 1);
        const account = checkAnswer(answer, c, where);
        if (account !== null) {
          accepted++;
          acceptedAccounts.add(account);
        } else if (c.readPrefix !== undefined && c.signed) {
          // A signed prefix followed by bytes the parser refuses as a next request: Node may
          // answer that refusal and close before the engine's 200 for the prefix is written, so
          // the engine may have accepted a notification the test never saw accepted.
          noteUnseen(c.readPrefix);
        } else if (c.mustAccept) {
          throw new Error(
            `a validly signed notification was not accepted: ${answer.status} ${answer.text}\n${where()}`,
          );
        }
      }
      const elapsed = Math.round(performance.now() - started);

      // What reached the queue and the store is exactly what was accepted.
      // (Up to `unseen` more: signed prefixes whose 200 was overtaken by the parser's refusal.)
      const counted = acceptedCounter(engine) - acceptedBefore;
      expect(counted).toBeGreaterThanOrEqual(accepted);
      expect(counted).toBeLessThanOrEqual(accepted + unseen);
      const noted = new Set(
        (await engine.pipelineStore.listAccounts())
          .filter((a) => a.notifiedAt !== null)
          .map((a) => a.account),
      );
      for (const account of acceptedAccounts) expect(noted).toContain(account);
      for (const account of noted)
        expect(acceptedAccounts.has(account) || unseenAccounts.has(account)).toBe(true);

      // And the engine still serves.
      const health = await engine.call('GET', '/healthz', { auth: null });
      expect(health.status).toBe(200);
      const last = await engine.notify(JSON.stringify({ account: 1, subscription: 1 }));
      expect(last.status).toBe(200);

      figures.push(
        `receiver fuzz: ${CASES} requests in ${elapsed} ms (seed ${SEED}); ${accepted} accepted, ${closed} cut short by the test; answers ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}`,
      );
    },
    Math.max(30_000, CASES * 30),
  );
});
