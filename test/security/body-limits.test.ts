// Security: every route that reads a body stops at a limit, whether the length is declared or
// the body comes chunked with no Content-Length: the receiver (64 KiB), the embedded ITSM API
// (1 MiB by default) and the engine's admin routes (64 KiB), all on the engine as
// `itsm-rules serve` runs it, over real HTTP on 127.0.0.1. A body just under each limit is still
// read, so the limits are where they are said to be.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../src/itsm/signature.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/server/app.js';
import { MAX_ADMIN_BODY_BYTES } from '../../src/webhook/app.js';
import { DEFAULT_RECEIVER_MAX_BODY } from '../../src/webhook/receiver.js';
import { startTestEngine, TEST_API_KEY, type TestEngine } from '../helpers/serve.js';

let engine: TestEngine;

beforeAll(async () => {
  engine = await startTestEngine();
});

afterAll(async () => {
  await engine?.close();
});

interface Sent {
  status: number;
  json: { error_code?: string; message?: string } | undefined;
}

/** A JSON document of exactly `size` bytes: `prefix`, spaces, then `suffix`. */
function padded(prefix: string, suffix: string, size: number): Buffer {
  const body = Buffer.alloc(size, 0x20);
  body.write(prefix, 0);
  body.write(suffix, size - suffix.length);
  return body;
}

/**
 * Sends `body` with node:http, with its Content-Length or, `chunked`, in 16 KiB chunks without
 * one. The server may answer before the upload ends and close the socket: that is an answer.
 */
function send(
  path: string,
  body: Buffer,
  headers: Record<string, string>,
  chunked: boolean,
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${engine.url}${path}`,
      {
        method: 'POST',
        headers: chunked ? headers : { ...headers, 'Content-Length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Sent['json'];
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    if (!chunked) {
      req.end(body);
      return;
    }
    let offset = 0;
    const writeMore = () => {
      while (offset < body.length) {
        const chunk = body.subarray(offset, offset + 16 * 1024);
        offset += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', writeMore);
          return;
        }
      }
      req.end();
    };
    // A server that has answered and closed makes further writes fail: that is expected.
    req.on('error', () => {});
    writeMore();
  });
}

const admin = { Authorization: `APIKey ${TEST_API_KEY}`, 'Content-Type': 'application/json' };

describe.each([
  ['with Content-Length', false],
  ['chunked, without Content-Length', true],
])('body limits, %s', (_how, chunked) => {
  it('the receiver refuses a signed body one byte over 64 KiB with a 413', async () => {
    const body = padded('{"account": 1', '}', DEFAULT_RECEIVER_MAX_BODY + 1);
    const headers = {
      'Content-Type': 'application/json',
      'X-Kloudless-Signature': await signBody(body, TEST_API_KEY),
    };
    const over = await send('/webhooks/kloudless', body, headers, chunked);
    expect([over.status, over.json?.error_code]).toEqual([413, 'payload_too_large']);

    const under = padded('{"account": 1', '}', DEFAULT_RECEIVER_MAX_BODY);
    const accepted = await send(
      '/webhooks/kloudless',
      under,
      { ...headers, 'X-Kloudless-Signature': await signBody(under, TEST_API_KEY) },
      chunked,
    );
    expect(accepted.status).toBe(200);
  });

  it('the embedded ITSM API refuses a body one byte over 1 MiB with a 413', async () => {
    const over = padded('{"description": "x"', '}', DEFAULT_MAX_BODY_BYTES + 1);
    const refused = await send('/v1/accounts/1/itsm/incidents', over, admin, chunked);
    expect([refused.status, refused.json?.error_code]).toEqual([413, 'payload_too_large']);

    const under = padded('{"description": "x"', '}', DEFAULT_MAX_BODY_BYTES);
    const created = await send('/v1/accounts/1/itsm/incidents', under, admin, chunked);
    expect(created.status).toBe(201);
  });

  it('the admin route /admin/schedules/run refuses a body over its limit with a 413', async () => {
    // Valid JSON all the way: without the limit, the route reads and runs it.
    const over = padded('{"rules": []', '}', MAX_ADMIN_BODY_BYTES + 1);
    const refused = await send('/admin/schedules/run', over, admin, chunked);
    expect([refused.status, refused.json?.error_code]).toEqual([413, 'payload_too_large']);

    const under = padded('{"rules": []', '}', MAX_ADMIN_BODY_BYTES);
    const ran = await send('/admin/schedules/run', under, admin, chunked);
    expect(ran.status).toBe(200);
  });
});

it('the engine still answers after the refused uploads', async () => {
  const health = await engine.call('GET', '/healthz', { auth: null });
  expect(health.status).toBe(200);
});
